import json
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.selectors import audit_event_list
from payledger_project.spreadsheets import SpreadsheetSafeWriter
from payments.management.commands.ledger_report import instant

COLUMNS = ["at", "event", "model", "object_id", "user_id", "username", "remote_addr", "url", "data"]


class Command(BaseCommand):
    help = (
        "The audit trail between two instants as CSV, oldest first: when, what, on which"
        " object, who (user id and name), from which address, through which URL, and the"
        " recorded fields as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="start date (inclusive), YYYY-MM-DD")
        parser.add_argument("--until", help="end date (exclusive); default: now")

    def handle(self, *args, since: str, until: str | None, **options):
        start = instant(since)
        end = instant(until) if until else timezone.now() + timedelta(microseconds=1)
        if end <= start:
            raise CommandError("--until must come after --since.")
        events = list(audit_event_list(since=start, until=end))
        user_ids = {(event.pgh_context or {}).get("user") for event in events} - {None}
        usernames = dict(
            get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username")
        )
        writer = SpreadsheetSafeWriter(self.stdout)
        writer.writerow(COLUMNS)
        for event in events:
            context = event.pgh_context or {}
            writer.writerow(
                [
                    event.pgh_created_at.isoformat(),
                    event.pgh_label,
                    event.pgh_obj_model,
                    event.pgh_obj_id or "",
                    context.get("user") or "",
                    usernames.get(context.get("user"), ""),
                    context.get("remote_addr", ""),
                    context.get("url", ""),
                    json.dumps(event.pgh_data, sort_keys=True),
                ]
            )
