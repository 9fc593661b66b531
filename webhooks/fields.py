"""Webhook signing secrets, encrypted at rest.

The column holds a Fernet token (AES-128-CBC with an HMAC-SHA256, from
``cryptography``); the model's attribute is the plain secret, so signing and the
one answer that shows it read ``endpoint.secret`` as before, and a copy of the
database (a backup, a replica, a dump) cannot sign as any endpoint. The keys are
``PAYLEDGER_WEBHOOK_SECRET_KEYS``, newest first: the newest encrypts, each one
decrypts (``MultiFernet``). To rotate, put a new key first, run ``manage.py
rotate_webhook_secrets``, then remove the old key.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _keys(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def secret_keys() -> MultiFernet:
    return _keys(tuple(settings.PAYLEDGER_WEBHOOK_SECRET_KEYS))


def secret_encrypt(secret: str) -> str:
    return secret_keys().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return secret_keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A webhook secret was encrypted with a key that PAYLEDGER_WEBHOOK_SECRET_KEYS"
            " no longer lists: keep the old key until rotate_webhook_secrets has run."
        ) from None


class EncryptedTextField(models.TextField):
    """Text encrypted with the webhook keys in the database, plain in Python.

    Each write encrypts afresh (a random IV), so the column cannot be searched by
    value; nothing looks a secret up."""

    def from_db_value(self, value: str | None, expression, connection) -> str | None:
        return None if value is None else secret_decrypt(value)

    def get_prep_value(self, value) -> str | None:
        value = super().get_prep_value(value)
        return None if value is None else secret_encrypt(value)
