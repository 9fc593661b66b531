import csv
import io

from django.test import TestCase
from django.urls import reverse

from payments.models import Transaction
from payments.services import phone_charge_create
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
