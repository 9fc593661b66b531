from datetime import UTC, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payledger_project.money import money_format
from payledger_project.spreadsheets import SpreadsheetSafeWriter
from payments.selectors import ledger_report

COLUMNS = ["seller", "name", "opening", "credited", "charged", "reversed", "closing", "charges"]
# Shown as money in the table; the CSV, for programs, keeps integers of the smallest unit.
MONEY_COLUMNS = {"opening", "credited", "charged", "reversed", "closing"}


def instant(value: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 date-time with an offset."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"Not a date: {value!r} (use YYYY-MM-DD).") from error
    if len(value) == 10:
        return datetime.combine(parsed.date(), time.min, tzinfo=UTC)
    if parsed.tzinfo is None:
        raise CommandError(f"Give {value!r} an offset, e.g. {value}+00:00.")
    return parsed


class Command(BaseCommand):
    help = (
        "Per seller, between two instants: opening balance, credited, charged, reversed, "
        "closing balance and number of charges, from the journal's running balance."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="start date (inclusive), YYYY-MM-DD")
        parser.add_argument("--until", help="end date (exclusive); default: now")
        parser.add_argument("--format", choices=["table", "csv"], default="table")

    def handle(self, *args, since: str, until: str | None, format: str, **options):
        start = instant(since)
        end = instant(until) if until else timezone.now() + timedelta(microseconds=1)
        if end <= start:
            raise CommandError("--until must come after --since.")
        rows = [
            [seller.pk, seller.name] + [getattr(seller, column) for column in COLUMNS[2:]]
            for seller in ledger_report(since=start, until=end)
        ]
        if format == "csv":
            writer = SpreadsheetSafeWriter(self.stdout)
            writer.writerows([COLUMNS, *rows])
            return
        rows = [
            [
                money_format(cell) if column in MONEY_COLUMNS else cell
                for column, cell in zip(COLUMNS, row, strict=True)
            ]
            for row in rows
        ]
        widths = [
            max(len(str(cell)) for cell in column) for column in zip(COLUMNS, *rows, strict=True)
        ]
        for row in [COLUMNS, *rows]:
            self.stdout.write(
                "  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True))
            )
