"""Deleting many rows without holding locks for long."""

from django.db import transaction
from django.db.models import QuerySet

BATCH_ROWS = 5_000


def in_batches_delete(rows: QuerySet, *, batch: int = BATCH_ROWS) -> int:
    """Delete ``rows`` ``batch`` at a time, oldest id first; return how many went.

    Each batch is its own short transaction that deletes by primary key, so its row
    locks last one batch and the rows still wanted (charges, deliveries in flight)
    are never waited on for long; an interrupted run has deleted whole batches and
    picks up where it stopped when run again."""
    deleted = 0
    while True:
        ids = list(rows.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        with transaction.atomic():
            count, _ = rows.model.objects.filter(pk__in=ids).delete()
        deleted += count
