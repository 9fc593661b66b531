"""Charges sent with an Idempotency-Key, and a crash between a charge and its key record."""

from contextlib import contextmanager
from unittest import mock

from django.urls import reverse

from payments.models import IdempotencyKey

PHONE = "+14155550123"


def charge(client, *, key: str, amount: int = 100, phone: str = PHONE):
    return client.post(
        reverse("phone-charge"),
        {"phone_number": phone, "amount": amount},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


@contextmanager
def crash_while_recording_the_answer(test):
    """The process dies after the charge's work but before its key records the
    answer (the key's second save); ``test`` sees the crash happen."""
    record_save = IdempotencyKey.save

    def save_or_crash(key, *args, **kwargs):
        if kwargs.get("update_fields"):
            raise RuntimeError("crash between the charge and its key record")
        return record_save(key, *args, **kwargs)

    with mock.patch.object(IdempotencyKey, "save", save_or_crash), test.assertRaises(RuntimeError):
        yield
