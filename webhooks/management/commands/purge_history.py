from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments.idempotency import idempotency_keys_purge
from webhooks.retention import events_purge, webhook_deliveries_purge

# A hundred years: any longer is no retention (and past what a date can hold).
MAX_DAYS = 36_500


class Command(BaseCommand):
    help = (
        "Delete what may go once old, in short batches: idempotency keys past their replay"
        " window, delivery attempts older than --deliveries-days, and (only if asked)"
        " delivered events older than --events-days. The journal is never touched."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--deliveries-days",
            type=int,
            default=90,
            help="keep delivery attempts this many days (default 90)",
        )
        parser.add_argument(
            "--events-days",
            type=int,
            help="delete delivered events older than this many days (default: keep them)",
        )

    def handle(self, *args, deliveries_days: int, events_days: int | None, **options):
        for days in (deliveries_days, events_days):
            if days is not None and not 1 <= days <= MAX_DAYS:
                raise CommandError(f"Keep 1 to {MAX_DAYS} days, not {days}.")
        now = timezone.now()
        keys = idempotency_keys_purge()
        deliveries = webhook_deliveries_purge(before=now - timedelta(days=deliveries_days))
        self.stdout.write(f"Deleted {keys} expired idempotency key(s).")
        self.stdout.write(f"Deleted {deliveries} delivery attempt(s).")
        if events_days is not None:
            events = events_purge(before=now - timedelta(days=events_days))
            self.stdout.write(f"Deleted {events} delivered event(s).")
