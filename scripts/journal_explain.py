"""Show that a journal page costs the same whatever the journal's size.

Fills a seller's journal with N rows (default 1,000,000) straight in SQL,
then as many for a second seller, and prints PostgreSQL's EXPLAIN ANALYZE
for the queries the transactions endpoint runs: the first page, a page deep
in the cursor, and a page with a created_at range. Run it against a scratch PostgreSQL database:

    createdb -h 127.0.0.1 -U postgres payledger_explain
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/payledger_explain \\
        .venv/bin/python scripts/journal_explain.py --rows 1000000
"""

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "payledger_project.settings")
# A developer's measurement on a scratch database, not a production process.
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from payments.pagination import JournalPagination  # noqa: E402
from payments.selectors import transaction_list  # noqa: E402
from sellers.models import Seller  # noqa: E402
from sellers.services import seller_register  # noqa: E402

FILL_SQL = """
WITH requests AS (
    INSERT INTO payments_creditrequest
        (seller_id, amount, status, created_at, decided_at, decided_by_id)
    SELECT %(seller)s, 1, 'approved', %(start)s + n * interval '1 second',
           %(start)s + n * interval '1 second', %(staff)s
    FROM generate_series(1, %(rows)s) AS n
    RETURNING id, created_at
)
INSERT INTO payments_transaction
    (seller_id, kind, amount, balance_after, created_at, credit_request_id)
SELECT %(seller)s, 'credit', 1, row_number() OVER (ORDER BY id), created_at, id FROM requests
"""


def fill(rows: int, name: str) -> Seller:
    seller = seller_register(
        username=f"{name}-{time.time_ns()}", password="explain-Passphrase-1", name=name
    )
    start = timezone.now() - timedelta(seconds=rows + 60)
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            FILL_SQL, {"seller": seller.pk, "staff": seller.user_id, "start": start, "rows": rows}
        )
        cursor.execute("UPDATE sellers_seller SET balance = %s WHERE id = %s", [rows, seller.pk])
        cursor.execute("ANALYZE payments_transaction")
    print(f"filled {rows:,} journal rows for {name} in {time.perf_counter() - began:.1f} s")
    return seller


def show(title: str, queryset) -> None:
    print(f"\n== {title}\n{queryset.query}\n")
    print(queryset.explain(analyze=True, buffers=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    if "DATABASE_URL" not in os.environ:
        sys.exit("Set DATABASE_URL to a scratch PostgreSQL database (see this script's help).")
    call_command("migrate", verbosity=0)
    seller = fill(rows, "measured")
    # Another seller writes as many rows after it, so the newest rows in the
    # table are not the measured seller's: its pages must come from its index.
    fill(rows, "neighbour")
    size = JournalPagination.page_size + 1  # the paginator reads one extra row
    journal = transaction_list(user=seller.user).order_by(*JournalPagination.ordering)
    deep = journal.values_list("created_at", flat=True)[rows * 9 // 10]
    show("first page", journal[:size])
    show(
        f"a page {rows * 9 // 10:,} rows deep (cursor: created_at < {deep})",
        journal.filter(created_at__lt=deep)[:size],
    )
    middle = timezone.now() - timedelta(seconds=rows // 2)
    show(
        "a page within a created_at range",
        journal.filter(created_at__gte=middle - timedelta(hours=1), created_at__lt=middle)[:size],
    )


if __name__ == "__main__":
    main()
