"""How a delivery is signed: Standard Webhooks (https://www.standardwebhooks.com/).

Each delivery carries

- ``webhook-id``: the event's id, the same on every retry (receivers de-duplicate
  by it);
- ``webhook-timestamp``: when this attempt was signed, in Unix seconds;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``
  for each secret the endpoint has now, space-separated: the current one and,
  during the grace window after a rotation, the previous one.

A secret is ``whsec_`` and the base64 of its key bytes. Secrets issued before
Standard Webhooks are ``whsec_`` and 64 hex digits; hex digits are base64
characters, so they read as a 48-byte key, the way the published libraries read
them, and keep working unchanged.

The signature is computed here rather than by the ``standardwebhooks`` package,
so the tests verify deliveries with an implementation that is not ours.

Until ``LEGACY_HEADERS_END`` deliveries also carry the headers PayLedger sent
before (``PayLedger-Event-Id``, ``PayLedger-Signature: t=<time>,v1=<hex HMAC of
"<time>.<body>">`` keyed with the secret's text), signed with the current secret
only; after that date remove them (CHANGELOG.md, 2026-12-05).
"""

import base64
import hashlib
import hmac
import secrets
from datetime import date, datetime

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64
LEGACY_HEADERS_END = date(2027, 3, 5)


def webhook_secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def webhook_signature(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of the body under ``secret``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def legacy_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """``t=<time>,v1=<hex>``: the deprecated ``PayLedger-Signature`` header."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_headers(
    *, secrets: list[str], message_id: str, timestamp: int, body: bytes, today: date
) -> dict[str, str]:
    """The signature headers of one attempt; ``secrets`` current first."""
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            webhook_signature(secret=secret, message_id=message_id, timestamp=timestamp, body=body)
            for secret in secrets
        ),
    }
    if today < LEGACY_HEADERS_END:
        headers["PayLedger-Event-Id"] = message_id
        headers["PayLedger-Signature"] = legacy_signature(
            secret=secrets[0], timestamp=timestamp, body=body
        )
    return headers


def signing_secrets(
    *, secret: str, previous_secret: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """The secrets an attempt at ``now`` is signed with: the current one, and the
    previous one while its grace window lasts."""
    if previous_secret and previous_until and now < previous_until:
        return [secret, previous_secret]
    return [secret]
