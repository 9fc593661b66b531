"""Rate limits, read from settings at request time so tests can override them."""

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class SettingsRateMixin:
    scope: str

    def get_rate(self) -> str | None:
        return settings.PAYLEDGER_THROTTLE_RATES.get(self.scope)


class ChargeRateThrottle(SettingsRateMixin, UserRateThrottle):
    """Per-seller limit on phone charges."""

    scope = "charge"


class AnonymousAuthRateThrottle(SettingsRateMixin, AnonRateThrottle):
    """Per-address limit on logging in and registering, against password guessing."""

    scope = "anon_auth"
