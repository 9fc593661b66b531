"""Webhook endpoints and the delivery of events to them.

Delivery is at least once and in event order per endpoint, and no transaction
or row lock is held while a receiver takes its time. The endpoint row is the
queue, and a delivery is a lease on it:

1. Claim, in one short transaction: lock one endpoint whose next event is due
   with ``SELECT ... FOR UPDATE SKIP LOCKED``, move its cursor past the event
   types it does not want, and push ``next_attempt_at`` to the lease's end (the
   delivery's deadline plus ``LEASE_MARGIN``). Committed, the endpoint is no
   longer due, so no other worker claims it until the lease runs out. The lease
   needs no column of its own: its end is ``next_attempt_at``, so the due index
   (status, next_attempt_at) passes over leased endpoints as over waiting
   retries, and the end is also the lease's token (a claim made after a lease
   ran out ends later).
2. Post the event, outside any transaction.
3. Record, in a second short transaction, with one conditional ``UPDATE``:
   only while ``next_attempt_at`` still equals this lease's end is the lease
   this worker's. Then the attempt is written and the cursor moves (or the
   retry is scheduled). If the endpoint was deleted meanwhile, or the lease ran
   out and another worker re-claimed it (its lease ends later), nothing is
   recorded: that worker delivers the event again, and a late outcome cannot
   move the cursor twice or back.

A worker killed mid-post leaves the lease behind; when it ends, the next worker
delivers the event again. A seller's delete never waits on a delivery.
"""

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from payments.events import event_message, event_payload
from payments.models import Event
from sellers.models import Seller
from webhooks.exceptions import DuplicateUrl, EndpointFailing, EndpointLimit
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.signing import signing_secrets, webhook_headers, webhook_secret_generate
from webhooks.transport import DeliveryFailed, webhook_post
from webhooks.url_safety import webhook_url_check

# Events looked at per claim when skipping the types an endpoint does not want.
EVENT_SCAN = 100
# A lease outlasts the delivery's deadline by this many seconds: time to record the
# outcome, and room for the clocks of the workers' hosts to differ.
LEASE_MARGIN = 5.0

logger = logging.getLogger(__name__)


# What a seller may subscribe to: a test event goes to the endpoint it was sent to.
SUBSCRIBABLE_EVENT_TYPES = [
    value for value in Event.Type.values if value != Event.Type.WEBHOOK_TEST
]


def webhook_event_wanted(endpoint: WebhookEndpoint, event: Event) -> bool:
    """Whether ``event`` is delivered to ``endpoint``: a type it subscribed to, or a
    test event sent to it."""
    if event.type == Event.Type.WEBHOOK_TEST:
        return event.payload == event_payload(Event.Type.WEBHOOK_TEST, endpoint=endpoint.pk)
    return event.type in endpoint.event_types


def webhook_endpoint_create(*, seller: Seller, url: str, event_types: list[str]) -> WebhookEndpoint:
    """Register ``url`` for the seller's future events of ``event_types``; refuse a URL
    the seller already registered (``DuplicateUrl``) and an endpoint past the seller's
    limit (``EndpointLimit``)."""
    webhook_url_check(url)  # resolves the host: before the transaction, not under the lock
    if set(event_types) - set(SUBSCRIBABLE_EVENT_TYPES) or not event_types:
        choices = ", ".join(SUBSCRIBABLE_EVENT_TYPES)
        raise ValidationError({"event_types": f"Choose from {choices}."})
    with transaction.atomic():
        # Under the seller's row lock registrations count and compare one at a
        # time, so concurrent ones cannot pass the limit together.
        Seller.objects.select_for_update().values_list("pk").get(pk=seller.pk)
        endpoints = WebhookEndpoint.objects.filter(seller=seller)
        duplicate = endpoints.filter(url=url).values_list("pk", flat=True).first()
        if duplicate is not None:
            raise DuplicateUrl(endpoint_id=duplicate)
        limit = settings.PAYLEDGER_WEBHOOK_ENDPOINTS_MAX
        if endpoints.count() >= limit:
            raise EndpointLimit(limit=limit)
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
    """Delete the endpoint and its delivery attempts.

    Its row lock first: a worker recording an outcome right now (milliseconds; no
    lock is held while a receiver answers) finishes before the attempts are
    collected, or finds the endpoint gone and records nothing."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
        if locked is not None:
            locked.delete()


def webhook_endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Give the endpoint a new signing secret; return it with the secret, to show once.

    For PAYLEDGER_WEBHOOK_SECRET_GRACE_SECONDS the previous secret signs every
    delivery too, so the receiver can switch without refusing one; after that only
    the new one. Rotating again within the window drops the oldest at once: only
    the secret just replaced is kept."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        grace = timedelta(seconds=settings.PAYLEDGER_WEBHOOK_SECRET_GRACE_SECONDS)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + grace
        locked.secret = webhook_secret_generate()
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return locked


def webhook_endpoint_test_send(*, endpoint: WebhookEndpoint) -> Event:
    """Queue a ``webhook.test`` event for this endpoint alone; return it.

    It is an event like the others (in the seller's feed, delivered in order with
    the endpoint's other events, retried, listed under its deliveries), and moves
    no money. Refused (``EndpointFailing``) for an endpoint whose deliveries stopped."""
    if endpoint.status == WebhookEndpoint.Status.FAILING:
        raise EndpointFailing()
    with transaction.atomic():
        # The seller's row lock, as every event takes, keeps a seller's event ids in
        # commit order, so no endpoint's cursor passes over this one.
        Seller.objects.select_for_update().values_list("pk").get(pk=endpoint.seller_id)
        return Event.objects.create(
            type=Event.Type.WEBHOOK_TEST,
            seller_id=endpoint.seller_id,
            payload=event_payload(Event.Type.WEBHOOK_TEST, endpoint=endpoint.pk),
        )


def webhook_secrets_rotate(*, batch_size: int = 500) -> int:
    """Encrypt every endpoint's secrets again with the newest key; return how many
    endpoints.

    Batch by batch in id order, each in a short transaction of its own, under the
    batch's row locks: a secret rotated meanwhile (``webhook_endpoint_secret_rotate``
    locks the row too) is read after it changed, never written back over (a
    deleted endpoint is simply not updated)."""
    rotated, after = 0, 0
    while True:
        with transaction.atomic():
            batch = list(
                WebhookEndpoint.objects.select_for_update()
                .filter(pk__gt=after)
                .order_by("pk")
                .only("pk", "secret", "previous_secret")[:batch_size]
            )
            if not batch:
                return rotated
            # Loaded with whichever key opens it, written with the newest.
            WebhookEndpoint.objects.bulk_update(batch, ["secret", "previous_secret"])
        rotated += len(batch)
        after = batch[-1].pk


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
    body = json.dumps(event_message(event), separators=(",", ":")).encode()
    now = timezone.now()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PayLedger-Webhooks/1",
        **webhook_headers(
            secrets=signing_secrets(
                secret=endpoint.secret,
                previous_secret=endpoint.previous_secret,
                previous_until=endpoint.previous_secret_expires_at,
                now=now,
            ),
            message_id=str(event.pk),
            timestamp=int(now.timestamp()),
            body=body,
            today=now.date(),
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
        if webhook_event_wanted(endpoint, event):
            return event
        endpoint.last_event_id = event.pk
    return None


def _delivery_claim() -> tuple[WebhookEndpoint, Event | None] | None:
    """Lease one due endpoint with its next wanted event, in one short transaction.

    The lease is ``next_attempt_at`` pushed to its end: no other worker finds the
    endpoint due until then. None when nothing is due; no event when the types
    scanned were all unwanted (the cursor moved past them, the endpoint stays due)."""
    pending = Event.objects.filter(
        seller_id=OuterRef("seller_id"), id__gt=OuterRef("last_event_id")
    )
    now = timezone.now()
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookEndpoint.Status.ACTIVE, next_attempt_at__lte=now)
            .filter(Exists(pending))
            .order_by("next_attempt_at", "id")
            .first()
        )
        if endpoint is None:
            return None
        event = _next_wanted_event(endpoint)
        if event is not None:
            endpoint.next_attempt_at = now + timedelta(
                seconds=settings.PAYLEDGER_WEBHOOK_TIMEOUT + LEASE_MARGIN
            )
        endpoint.save(update_fields=["last_event_id", "next_attempt_at"])
    return endpoint, event


def _outcome_record(endpoint: WebhookEndpoint, event: Event, outcome: _Outcome) -> None:
    """Record the attempt and move the cursor or schedule the retry, in one short
    transaction, if the lease is still this worker's: nobody re-claimed the endpoint
    after the lease ran out (``next_attempt_at`` is still its end) and the seller did
    not delete it. Otherwise record nothing; the event is, or was, delivered again."""
    now = timezone.now()
    attempt = endpoint.failed_attempts + 1
    if outcome.delivered:
        changes = {
            "last_event_id": event.pk,
            "failed_attempts": 0,
            "retrying_since": None,
            "next_attempt_at": now,
        }
    else:
        retrying_since = endpoint.retrying_since or now
        changes = {"failed_attempts": attempt, "retrying_since": retrying_since}
        retry_window = timedelta(seconds=settings.PAYLEDGER_WEBHOOK_RETRY_WINDOW)
        if now - retrying_since >= retry_window:
            changes |= {
                "status": WebhookEndpoint.Status.FAILING,
                "failing_since": now,
                "next_attempt_at": now,
            }
        else:
            changes["next_attempt_at"] = now + webhook_retry_delay(attempt)
    leased = WebhookEndpoint.objects.filter(
        pk=endpoint.pk, next_attempt_at=endpoint.next_attempt_at
    )
    with transaction.atomic():
        if not leased.update(**changes):
            return
        WebhookDelivery.objects.create(
            endpoint_id=endpoint.pk,
            event=event,
            attempt=attempt,
            delivered=outcome.delivered,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    _outcome_log(endpoint.pk, event.pk, attempt, outcome, changes)


def _outcome_log(
    endpoint_id: int, event_id: int, attempt: int, outcome: _Outcome, changes: dict
) -> None:
    """One line per recorded attempt, after its commit: never the URL (its path or
    query may be private), the body or the secret."""
    fields = {
        "webhook_endpoint": endpoint_id,
        "event_id": event_id,
        "attempt": attempt,
        "status_code": outcome.status_code,
        "duration_ms": outcome.duration_ms,
    }
    if outcome.delivered:
        logger.info("webhook endpoint %s: event %s delivered", endpoint_id, event_id, extra=fields)
        return
    fields["error"] = outcome.error
    failure = (
        f"answered {outcome.status_code}" if outcome.status_code is not None else outcome.error
    )
    if changes.get("status") == WebhookEndpoint.Status.FAILING:
        logger.error(
            "webhook endpoint %s failing: event %s, attempt %s %s; deliveries stopped",
            endpoint_id, event_id, attempt, failure, extra=fields,
        )  # fmt: skip
        return
    fields["next_attempt_at"] = changes["next_attempt_at"].isoformat()
    logger.warning(
        "webhook endpoint %s: event %s, attempt %s %s; next attempt at %s",
        endpoint_id, event_id, attempt, failure, fields["next_attempt_at"], extra=fields,
    )  # fmt: skip


def webhook_deliver_next() -> bool:
    """Deliver the next due event of one endpoint; False when nothing is due."""
    claimed = _delivery_claim()
    if claimed is None:
        return False
    endpoint, event = claimed
    if event is not None:
        _outcome_record(endpoint, event, _event_post(endpoint, event))
    return True
