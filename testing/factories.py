"""Test data for every app, built through the same services the API uses."""

import base64
import itertools
import time

import pyotp
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from payments.models import CreditRequest
from payments.permissions import REVERSE_CHARGE, credit_approvers_group
from payments.services import credit_request_approve, credit_request_create
from sellers.models import Seller
from sellers.services import api_key_create, seller_register

User = get_user_model()
PASSWORD = "correct-horse-battery-staple"
# Each breaks one of Django's password validators, for username "alicealice".
WEAK_PASSWORDS = {
    "too short": "x7!kQ",
    "common": "password123",
    "entirely numeric": "83920174650",
    "like the username": "alicealice",
}
_sequence = itertools.count(1)


def seller_make(*, name: str = "", balance: int = 0) -> Seller:
    number = next(_sequence)
    seller = seller_register(
        username=f"seller{number}", password=PASSWORD, name=name or f"Seller {number}"
    )
    if balance:
        credit_approved_make(seller=seller, amount=balance)
    return seller


def staff_make(*, approver: bool = True, reverser: bool = False) -> User:
    """A staff user; an approver (in the "Credit approvers" group) unless told not,
    and allowed to reverse charges if told so."""
    staff = User.objects.create_user(username=f"staff{next(_sequence)}", password=PASSWORD)
    return staff_powers_give(staff, approver=approver, reverser=reverser)


def staff_powers_give(user: User, *, approver: bool = True, reverser: bool = False) -> User:
    """Make ``user`` staff, in the "Credit approvers" group unless told not, and
    allowed to reverse charges if told so (a seller's user too: what an
    administrator's mistake would do)."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    if approver:
        # A TransactionTestCase's flush drops the group its migration made.
        user.groups.add(credit_approvers_group(Group, Permission))
    if reverser:
        app_label, codename = REVERSE_CHARGE.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def credit_approved_make(*, seller: Seller, amount: int) -> CreditRequest:
    credit_request = credit_request_create(seller=seller, amount=amount)
    approver = User.objects.filter(is_staff=True).first() or staff_make()
    return credit_request_approve(credit_request_id=credit_request.pk, decided_by=approver)


def api_key_make(user, *, second_factor: bool = False) -> str:
    """A new API key for ``user``, as logging in mints one (``second_factor``: with a
    valid code, as staff must to move money where the second factor is required)."""
    return api_key_create(user=user, second_factor=second_factor)[1]


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_make(user)}")
    return client


def authenticator_make(user) -> TOTPDevice:
    """A confirmed authenticator for ``user``, as enrolment leaves one."""
    return TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=True)


def otp_code(device: TOTPDevice) -> str:
    """The code an authenticator app shows for ``device``'s secret (pyotp, as a
    phone computes it), for a time step the device has not accepted yet: each
    code logs in once, so a second login within the same 30 seconds gets the
    next step's code, which the device's tolerance of one step accepts."""
    device.refresh_from_db()
    totp = pyotp.TOTP(base64.b32encode(device.bin_key).decode(), interval=device.step)
    step = max(int(time.time()) // device.step, device.last_t + 1)
    return totp.at(step * device.step)
