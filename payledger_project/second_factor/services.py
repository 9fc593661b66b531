"""Enrolling an authenticator and checking codes: the one place that knows
which django-otp devices stand for a staff member's second factor."""

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django_otp import devices_for_user, match_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

AUTHENTICATOR = "Authenticator"
RECOVERY_CODES = "Recovery codes"
RECOVERY_CODE_COUNT = 10


def second_factor_required() -> bool:
    """Read per request, so a test can turn it on and off."""
    return settings.PAYLEDGER_STAFF_OTP_REQUIRED


def second_factor_enrolled(user: AbstractBaseUser) -> bool:
    """Whether ``user`` has a confirmed authenticator (recovery codes alone do not count)."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).exists()


def second_factor_match(user: AbstractBaseUser, code: str) -> Device | None:
    """The confirmed device ``code`` is good for, or None: a code from the
    authenticator (each accepted once), or one of the recovery codes (deleted as
    it is used). Every device counts wrong codes and slows down guesses."""
    code = code.strip().replace(" ", "")
    if not code:
        return None
    return match_token(user, code)


def authenticator_start(user: AbstractBaseUser) -> TOTPDevice:
    """The unconfirmed authenticator ``user`` is enrolling, created on first call:
    reloading the enrolment page shows the same secret."""
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=False)


def authenticator_confirm(*, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm ``device`` with a code it computed, and replace the user's recovery
    codes: returns the new codes (shown to the user once), or None if the code is
    wrong. The user's other authenticators go: one at a time."""
    if device.confirmed or not device.verify_token(code.strip().replace(" ", "")):
        return None
    with transaction.atomic():
        for other in devices_for_user(device.user, confirmed=None):
            if other.pk != device.pk or not isinstance(other, TOTPDevice):
                other.delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        recovery = StaticDevice.objects.create(user=device.user, name=RECOVERY_CODES)
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=recovery, token=c) for c in codes)
    return codes
