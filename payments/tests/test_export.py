import csv
import io
from datetime import UTC, datetime

from django.test import TestCase
from django.urls import reverse

from payments.models import Transaction
from payments.services import phone_charge_create, phone_charge_reverse
from sellers.tests.factories import client_for, seller_make, staff_make


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
        self.assertEqual(opening["created_at"], "2026-11-02 00:00:00+00:00")

    def test_a_reversal_row_names_the_charge_it_gave_back(self):
        (_, reversal) = self.export(self.seller.user, created_after="2026-11-02T00:00:00Z")
        self.assertEqual(reversal["reversed_charge"], str(self.charge.pk))

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
