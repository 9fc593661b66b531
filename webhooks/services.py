"""Webhook endpoints and the delivery of events to them.

Delivery is at least once and in event order per endpoint. The endpoint row
is the queue: a worker claims one endpoint whose next event is due with
``SELECT ... FOR UPDATE SKIP LOCKED``, posts the event while holding that row
lock, and in the same transaction records the attempt and moves the cursor
(or schedules the retry). So two workers never deliver to one endpoint at
once, and a worker that dies mid-delivery rolls back: its event is delivered
again by the next worker. On SQLite the IMMEDIATE transaction serialises
workers instead.
"""

import hashlib
import hmac
import json
import random
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from payments.models import Event
from payments.serializers import EventOutputSerializer
from sellers.models import Seller
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.transport import DeliveryFailed, webhook_post
from webhooks.url_safety import webhook_url_check

SIGNATURE_HEADER = "PayLedger-Signature"
EVENT_ID_HEADER = "PayLedger-Event-Id"
# Events looked at per claim when skipping the types an endpoint does not want.
EVENT_SCAN = 100


def webhook_secret_generate() -> str:
    return "whsec_" + secrets.token_hex(32)


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">``, the signature header."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_endpoint_create(*, seller: Seller, url: str, event_types: list[str]) -> WebhookEndpoint:
    """Register ``url`` for the seller's future events of ``event_types``."""
    webhook_url_check(url)
    unknown = sorted(set(event_types) - set(Event.Type.values))
    if unknown or not event_types:
        raise ValidationError({"event_types": f"Choose from {', '.join(Event.Type.values)}."})
    # Events already written are in the feed; the endpoint gets the ones after.
    newest = Event.objects.filter(seller=seller).aggregate(newest=Max("id"))["newest"]
    return WebhookEndpoint.objects.create(
        seller=seller,
        url=url,
        event_types=sorted(set(event_types)),
        secret=webhook_secret_generate(),
        last_event_id=newest or 0,
    )


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def webhook_retry_delay(failed_attempts: int) -> timedelta:
    """Exponential backoff with jitter: half the doubled delay, plus up to as much again,
    so endpoints that failed together do not retry together."""
    ceiling = min(
        settings.PAYLEDGER_WEBHOOK_RETRY_CAP,
        settings.PAYLEDGER_WEBHOOK_RETRY_BASE * 2 ** (failed_attempts - 1),
    )
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


@dataclass
class _Outcome:
    delivered: bool
    status_code: int | None
    error: str | None
    duration_ms: int


def _event_post(endpoint: WebhookEndpoint, event: Event) -> _Outcome:
    started = time.monotonic()
    body = json.dumps(
        EventOutputSerializer(event).data, cls=DjangoJSONEncoder, separators=(",", ":")
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PayLedger-Webhooks/1",
        EVENT_ID_HEADER: str(event.pk),
        SIGNATURE_HEADER: webhook_signature(
            secret=endpoint.secret, timestamp=int(time.time()), body=body
        ),
    }
    try:
        # Checks the address again (DNS answers change), connects only to what
        # it checked, follows no redirect; only the status is read.
        status_code = webhook_post(
            endpoint.url, body=body, headers=headers, timeout=settings.PAYLEDGER_WEBHOOK_TIMEOUT
        )
    except ValidationError as refused:
        return _Outcome(False, None, f"refused: {refused.messages[0]}"[:200], 0)
    except DeliveryFailed as failed:
        duration_ms = round((time.monotonic() - started) * 1000)
        return _Outcome(False, None, str(failed)[:200], duration_ms)
    duration_ms = round((time.monotonic() - started) * 1000)
    return _Outcome(200 <= status_code < 300, status_code, None, duration_ms)


def _next_wanted_event(endpoint: WebhookEndpoint) -> Event | None:
    """The endpoint's next event, moving its cursor past the types it does not want."""
    for event in Event.objects.filter(
        seller_id=endpoint.seller_id, id__gt=endpoint.last_event_id
    ).order_by("id")[:EVENT_SCAN]:
        if event.type in endpoint.event_types:
            return event
        endpoint.last_event_id = event.pk
    return None


def _outcome_record(endpoint: WebhookEndpoint, event: Event, outcome: _Outcome) -> None:
    now = timezone.now()
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=event,
        attempt=endpoint.failed_attempts + 1,
        delivered=outcome.delivered,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
    )
    if outcome.delivered:
        endpoint.last_event_id = event.pk
        endpoint.failed_attempts = 0
        endpoint.retrying_since = None
        endpoint.next_attempt_at = now
        return
    endpoint.failed_attempts += 1
    endpoint.retrying_since = endpoint.retrying_since or now
    retry_window = timedelta(seconds=settings.PAYLEDGER_WEBHOOK_RETRY_WINDOW)
    if now - endpoint.retrying_since >= retry_window:
        endpoint.status = WebhookEndpoint.Status.FAILING
        endpoint.failing_since = now
    else:
        endpoint.next_attempt_at = now + webhook_retry_delay(endpoint.failed_attempts)


def webhook_deliver_next() -> bool:
    """Deliver the next due event of one endpoint; False when nothing is due."""
    pending = Event.objects.filter(
        seller_id=OuterRef("seller_id"), id__gt=OuterRef("last_event_id")
    )
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookEndpoint.Status.ACTIVE, next_attempt_at__lte=timezone.now())
            .filter(Exists(pending))
            .order_by("next_attempt_at", "id")
            .first()
        )
        if endpoint is None:
            return False
        event = _next_wanted_event(endpoint)
        if event is not None:
            _outcome_record(endpoint, event, _event_post(endpoint, event))
        endpoint.save(
            update_fields=[
                "last_event_id",
                "failed_attempts",
                "retrying_since",
                "next_attempt_at",
                "status",
                "failing_since",
            ]
        )
    return True
