"""What may be deleted once it is old, and how (docs/operations.md, "Retention").

Kept forever: the journal, charges, reversals, credit requests and balances; the
books are proved from them. May go once old: idempotency keys past their replay
window (payments/idempotency.py), delivery attempts (a log of how each post went),
and events every endpoint of their seller has passed. An event feed client whose
cursor is older than the events kept misses the events deleted before it caught up.
"""

from datetime import datetime

from django.db.models import Exists, OuterRef

from payledger_project.batches import in_batches_delete
from payments.models import Event
from webhooks.models import WebhookDelivery, WebhookEndpoint


def webhook_deliveries_purge(*, before: datetime) -> int:
    """Delete delivery attempts made before ``before``, in short batches."""
    return in_batches_delete(WebhookDelivery.objects.filter(created_at__lt=before))


def events_purge(*, before: datetime) -> int:
    """Delete events written before ``before`` that no endpoint of their seller still
    has to deliver and no delivery attempt still names, in short batches."""
    undelivered = WebhookEndpoint.objects.filter(
        seller_id=OuterRef("seller_id"), last_event_id__lt=OuterRef("id")
    )
    attempted = WebhookDelivery.objects.filter(event_id=OuterRef("id"))
    return in_batches_delete(
        Event.objects.filter(created_at__lt=before).exclude(Exists(undelivered) | Exists(attempted))
    )
