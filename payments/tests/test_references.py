"""A charge may carry the client's own reference (its order id), unique per seller."""

import csv
import io

from django.db import IntegrityError
from django.db.transaction import atomic
from django.test import TestCase, TransactionTestCase
from django.urls import reverse

from payments.models import PhoneCharge, Transaction
from payments.services import phone_charge_create
from sellers.models import Seller
from testing.assertions import ErrorShapeAssertions
from testing.concurrency import run_at_once
from testing.factories import client_for, seller_make

PHONE = "+14155550123"


class ChargeReferenceTests(ErrorShapeAssertions, TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)

    def charge(self, reference, amount: int = 100, client=None):
        body = {"phone_number": PHONE, "amount": amount, "reference": reference}
        return (client or self.client).post(reverse("phone-charge"), body, format="json")

    def test_a_charge_answers_with_its_reference(self):
        response = self.charge("order-1042")
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["reference"], "order-1042")

    def test_a_second_charge_with_the_same_reference_names_the_first_and_moves_nothing(self):
        first = self.charge("order-1042").json()
        response = self.charge("order-1042", amount=200)
        body = self.assertErrorResponse(response, 409, "duplicate_reference")
        self.assertEqual(body["charge_id"], first["id"])
        self.assertEqual(Seller.objects.get(pk=self.seller.pk).balance, 900)
        self.assertEqual(PhoneCharge.objects.count(), 1)

    def test_the_database_refuses_a_second_charge_with_one_sellers_reference(self):
        first = phone_charge_create(
            seller_id=self.seller.pk, phone_number=PHONE, amount=1, reference="order-7"
        )
        with self.assertRaises(IntegrityError, msg="one reference, one charge"), atomic():
            PhoneCharge.objects.create(
                seller_id=self.seller.pk,
                phone_account_id=first.phone_account_id,
                amount=1,
                reference="order-7",
            )

    def test_two_sellers_may_use_the_same_reference(self):
        self.charge("order-1042")
        other = client_for(seller_make(balance=1_000).user)
        self.assertEqual(self.charge("order-1042", client=other).status_code, 201)

    def test_charges_without_a_reference_never_collide(self):
        for _ in range(2):
            response = self.client.post(
                reverse("phone-charge"), {"phone_number": PHONE, "amount": 1}, format="json"
            )
            self.assertEqual(response.status_code, 201)
            self.assertIsNone(response.json()["reference"])

    def test_the_journal_filters_by_reference(self):
        self.charge("order-1")
        self.charge("order-2")
        rows = self.client.get(reverse("transaction-list"), {"reference": "order-2"}).json()
        self.assertEqual([row["reference"] for row in rows["results"]], ["order-2"])

    def test_filtering_the_journal_by_a_reference_no_charge_can_have_is_refused(self):
        response = self.client.get(reverse("transaction-list"), {"reference": "caf\u00e9"})
        self.assertFieldError(response, "reference")

    def test_the_csv_export_carries_the_reference(self):
        self.charge("order-1")
        response = self.client.get(reverse("transaction-export"))
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        self.assertEqual([row["reference"] for row in rows], ["", "order-1"])

    def test_a_reference_that_is_not_1_to_64_printable_characters_is_refused(self):
        for reference in ["", "x" * 65, "tab\there", "caf\u00e9", 42]:
            with self.subTest(reference=reference):
                self.assertFieldError(self.charge(reference), "reference")
        self.assertFalse(PhoneCharge.objects.exists())


class ConcurrentReferenceTests(TransactionTestCase):
    def test_simultaneous_charges_with_one_reference_charge_once(self):
        seller = seller_make(balance=1_000)
        outcomes = run_at_once(
            10,
            lambda _: (
                phone_charge_create(
                    seller_id=seller.pk, phone_number=PHONE, amount=10, reference="order-7"
                ).pk
            ),
        )
        charge_ids = [outcome for outcome in outcomes if isinstance(outcome, int)]
        self.assertEqual(len(charge_ids), 1, f"one reference, one charge: {outcomes}")
        self.assertEqual(outcomes.count("duplicate_reference"), 9, outcomes)
        self.assertEqual(Seller.objects.get(pk=seller.pk).balance, 990)
        self.assertEqual(Transaction.objects.filter(kind="charge").count(), 1)
