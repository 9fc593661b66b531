"""Reversals: a charge undone by a new journal row, never by editing history."""

from collections import Counter
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import TestCase, TransactionTestCase
from django.urls import reverse

from payments.exceptions import AlreadyReversed, InsufficientPhoneBalance
from payments.models import PhoneAccount, PhoneCharge, PhoneChargeReversal, Transaction
from payments.selectors import ledger_check
from payments.services import phone_charge_create, phone_charge_reverse
from sellers.models import Seller
from testing.assertions import ErrorShapeAssertions
from testing.concurrency import run_at_once
from testing.factories import client_for, seller_make, staff_make

PHONE = "+14155550123"
OTHER_PHONE = "+14155550199"


def balances(seller: Seller, phone_number: str = PHONE) -> tuple[int, int]:
    seller.refresh_from_db()
    return seller.balance, PhoneAccount.objects.get(phone_number=phone_number).balance


class ReverseServiceTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.seller = seller_make(balance=1_000)
        cls.charge = phone_charge_create(seller_id=cls.seller.pk, phone_number=PHONE, amount=300)
        cls.reverser = staff_make(reverser=True)

    def reverse(self, **kwargs) -> PhoneChargeReversal:
        return phone_charge_reverse(charge_id=self.charge.pk, reversed_by=self.reverser, **kwargs)

    def test_the_amount_goes_back_from_the_phone_to_the_seller(self):
        self.reverse()
        self.assertEqual(balances(self.seller), (1_000, 0))

    def test_a_journal_row_of_kind_reversal_records_the_seller_balance_after(self):
        reversal = self.reverse()
        row = Transaction.objects.get(reversal=reversal)
        self.assertEqual(
            (row.kind, row.amount, row.balance_after, row.seller_id),
            ("reversal", 300, 1_000, self.seller.pk),
        )

    def test_the_charge_and_its_journal_row_are_left_as_they_were(self):
        before = Transaction.objects.filter(phone_charge=self.charge).values().get()
        self.reverse(reason="Operator refused the top-up")
        self.assertEqual(
            Transaction.objects.filter(phone_charge=self.charge).values().get(), before
        )
        self.assertEqual(PhoneCharge.objects.get(pk=self.charge.pk).amount, 300)

    def test_the_reversal_keeps_who_and_why(self):
        reversal = self.reverse(reason="Operator refused the top-up")
        self.assertEqual(
            (reversal.reversed_by, reversal.reason), (self.reverser, "Operator refused the top-up")
        )

    def test_a_second_reversal_is_refused_and_moves_nothing(self):
        self.reverse()
        with self.assertRaises(AlreadyReversed):
            self.reverse()
        self.assertEqual(balances(self.seller), (1_000, 0))
        self.assertEqual(Transaction.objects.filter(kind="reversal").count(), 1)

    def test_a_phone_that_no_longer_holds_the_amount_refuses_and_nothing_changes(self):
        # Nothing in PayLedger spends a phone's balance yet; stand in for what will.
        PhoneAccount.objects.filter(phone_number=PHONE).update(balance=299)
        with self.assertRaises(InsufficientPhoneBalance):
            self.reverse()
        self.assertEqual(balances(self.seller), (700, 299))
        self.assertFalse(PhoneChargeReversal.objects.exists())

    def test_a_reason_over_500_characters_is_refused(self):
        with self.assertRaises(ValidationError):
            self.reverse(reason="x" * 501)
        self.assertFalse(PhoneChargeReversal.objects.exists())

    def test_a_reason_with_a_null_character_is_refused(self):
        with self.assertRaises(ValidationError) as refused:
            self.reverse(reason="Operator\x00")
        self.assertEqual(
            refused.exception.message_dict, {"reason": ["Null characters are not allowed."]}
        )
        self.assertFalse(PhoneChargeReversal.objects.exists())

    def test_the_books_stay_balanced_after_reversals(self):
        self.reverse()
        phone_charge_create(seller_id=self.seller.pk, phone_number=OTHER_PHONE, amount=450)
        self.assertEqual(ledger_check().problems, [])

    def test_the_ledger_check_names_a_phone_that_kept_reversed_money(self):
        self.reverse()
        PhoneAccount.objects.filter(phone_number=PHONE).update(balance=300)
        self.assertIn(
            f"phone {PHONE}: balance 300 != charges 300 - reversals 300", ledger_check().problems
        )


class ReversalConstraintTests(TestCase):
    """The database itself refuses what the service never writes."""

    @classmethod
    def setUpTestData(cls):
        cls.seller = seller_make(balance=1_000)
        cls.charge = phone_charge_create(seller_id=cls.seller.pk, phone_number=PHONE, amount=300)
        cls.reverser = staff_make(reverser=True)

    def test_a_charge_cannot_be_reversed_twice_even_by_raw_rows(self):
        PhoneChargeReversal.objects.create(charge=self.charge, reversed_by=self.reverser)
        with self.assertRaises(IntegrityError), transaction.atomic():
            PhoneChargeReversal.objects.create(charge=self.charge, reversed_by=self.reverser)

    def test_a_reversal_row_must_point_at_a_reversal(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            Transaction.objects.create(
                seller=self.seller, kind="reversal", amount=300, balance_after=1_000
            )

    def test_a_credit_or_charge_row_cannot_also_point_at_a_reversal(self):
        reversal = PhoneChargeReversal.objects.create(charge=self.charge, reversed_by=self.reverser)
        charge_row = self.charge.transaction
        with self.assertRaises(IntegrityError), transaction.atomic():
            Transaction.objects.filter(pk=charge_row.pk).update(reversal=reversal)


class ReverseApiTests(ErrorShapeAssertions, TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.seller = seller_make(balance=1_000)
        cls.charge = phone_charge_create(
            seller_id=cls.seller.pk, phone_number=PHONE, amount=300, reference="order-7"
        )
        cls.reverser = staff_make(approver=False, reverser=True)

    def url(self, charge_id: int | None = None) -> str:
        return reverse("phone-charges-reverse", args=[charge_id or self.charge.pk])

    def reverse_as(self, user, body=None, **headers):
        return client_for(user).post(self.url(), body or {}, format="json", headers=headers)

    def test_staff_allowed_to_reverse_get_201_with_the_charge_marked_reversed(self):
        response = self.reverse_as(self.reverser, {"reason": "Operator refused"})
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        reversal = PhoneChargeReversal.objects.get()
        self.assertEqual(
            (body["id"], body["reversed"], body["reversed_at"]),
            (self.charge.pk, True, body["reversal"]["reversed_at"]),
        )
        self.assertEqual(
            body["reversal"],
            {
                "transaction_id": reversal.transaction.pk,
                "reason": "Operator refused",
                "reversed_at": body["reversed_at"],
                "reversed_by": self.reverser.pk,
                "balance_after": 1_000,
            },
        )

    def test_the_seller_cannot_reverse_its_own_charge(self):
        response = self.reverse_as(self.seller.user)
        self.assertErrorResponse(response, 403, "permission_denied")
        self.assertFalse(PhoneChargeReversal.objects.exists())

    def test_staff_without_the_permission_cannot_reverse(self):
        response = self.reverse_as(staff_make())
        self.assertErrorResponse(response, 403, "permission_denied")

    def test_an_unknown_charge_is_404(self):
        response = client_for(self.reverser).post(self.url(10**9), {}, format="json")
        self.assertErrorResponse(response, 404, "not_found")

    def test_a_second_reversal_is_409_already_reversed(self):
        self.reverse_as(self.reverser)
        response = self.reverse_as(self.reverser)
        self.assertErrorResponse(response, 409, "already_reversed")

    def test_a_phone_short_of_the_amount_is_409_insufficient_phone_balance(self):
        PhoneAccount.objects.filter(phone_number=PHONE).update(balance=0)
        response = self.reverse_as(self.reverser)
        self.assertErrorResponse(response, 409, "insufficient_phone_balance")

    def test_a_reason_over_500_characters_is_a_field_error(self):
        response = self.reverse_as(self.reverser, {"reason": "x" * 501})
        self.assertFieldError(response, "reason")

    def test_a_reason_with_a_null_character_is_a_field_error(self):
        response = self.reverse_as(self.reverser, {"reason": "Operator\x00"})
        self.assertFieldError(response, "reason")
        self.assertFalse(PhoneChargeReversal.objects.exists())

    def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer(self):
        first = self.reverse_as(self.reverser, **{"Idempotency-Key": "undo-1"})
        retry = self.reverse_as(self.reverser, **{"Idempotency-Key": "undo-1"})
        self.assertEqual((retry.status_code, retry.json()), (201, first.json()))
        self.assertEqual(retry.headers["Idempotent-Replayed"], "true")
        self.assertEqual(PhoneChargeReversal.objects.count(), 1)

    def test_one_key_sent_by_two_users_belongs_to_each_of_them(self):
        charged = client_for(self.seller.user).post(
            reverse("phone-charge"),
            {"phone_number": PHONE, "amount": 5},
            format="json",
            headers={"Idempotency-Key": "shared"},
        )
        reversed_ = self.reverse_as(self.reverser, **{"Idempotency-Key": "shared"})
        self.assertEqual((charged.status_code, reversed_.status_code), (201, 201))
        self.assertNotIn("Idempotent-Replayed", reversed_.headers)

    def test_the_journal_shows_the_reversal_and_the_charge_it_gave_back(self):
        self.reverse_as(self.reverser)
        newest = client_for(self.seller.user).get(reverse("transaction-list")).json()["results"][0]
        self.assertEqual(
            (newest["kind"], newest["amount"], newest["balance_after"], newest["reversed_charge"]),
            ("reversal", 300, 1_000, self.charge.pk),
        )


class PhoneChargeListApiTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.seller = seller_make(balance=1_000)
        cls.other = seller_make(balance=1_000)
        cls.first = phone_charge_create(seller_id=cls.seller.pk, phone_number=PHONE, amount=100)
        cls.second = phone_charge_create(seller_id=cls.seller.pk, phone_number=PHONE, amount=200)
        cls.others = phone_charge_create(seller_id=cls.other.pk, phone_number=PHONE, amount=50)
        cls.reverser = staff_make(reverser=True)
        phone_charge_reverse(charge_id=cls.first.pk, reversed_by=cls.reverser)

    def listed(self, user, **params) -> list[int]:
        response = client_for(user).get(reverse("phone-charges-list"), params)
        self.assertEqual(response.status_code, 200, response.content)
        return [charge["id"] for charge in response.json()["results"]]

    def test_a_seller_lists_its_own_charges_newest_first(self):
        self.assertEqual(self.listed(self.seller.user), [self.second.pk, self.first.pk])

    def test_staff_who_may_reverse_list_every_sellers_charges(self):
        self.assertEqual(
            self.listed(self.reverser), [self.others.pk, self.second.pk, self.first.pk]
        )

    def test_staff_without_a_charge_permission_list_nothing(self):
        self.assertEqual(self.listed(staff_make(approver=False)), [])

    def test_the_list_filters_by_whether_a_charge_was_reversed(self):
        self.assertEqual(self.listed(self.seller.user, reversed="true"), [self.first.pk])
        self.assertEqual(self.listed(self.seller.user, reversed="false"), [self.second.pk])

    def test_an_unreversed_charge_says_so(self):
        body = (
            client_for(self.seller.user)
            .get(reverse("phone-charges-detail", args=[self.second.pk]))
            .json()
        )
        self.assertEqual(
            (body["reversed"], body["reversed_at"], body["reversal"], body["balance"]),
            (False, None, None, 700),
        )

    def test_a_reversed_charge_says_when(self):
        body = (
            client_for(self.seller.user)
            .get(reverse("phone-charges-detail", args=[self.first.pk]))
            .json()
        )
        reversal = PhoneChargeReversal.objects.get()
        reversed_at = datetime.fromisoformat(body["reversed_at"])
        self.assertEqual((body["reversed"], reversed_at), (True, reversal.created_at))

    def test_a_seller_cannot_read_another_sellers_charge(self):
        response = client_for(self.other.user).get(
            reverse("phone-charges-detail", args=[self.first.pk])
        )
        self.assertEqual(response.status_code, 404)

    def test_a_page_of_charges_costs_three_queries_with_their_reversals(self):
        client = client_for(self.seller.user)
        with self.assertNumQueries(3):  # auth, count, the page joined to journal and reversals
            response = client.get(reverse("phone-charges-list"))
        self.assertEqual(len(response.json()["results"]), 2)


class ConcurrentReversalTests(TransactionTestCase):
    THREADS = 8

    def setUp(self):
        self.seller = seller_make(balance=10_000)
        self.reverser = staff_make(reverser=True)

    def test_racing_reversals_of_one_charge_land_exactly_once(self):
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=400)
        outcomes = run_at_once(
            self.THREADS,
            lambda i: phone_charge_reverse(charge_id=charge.pk, reversed_by=self.reverser).pk,
        )
        kinds = Counter("reversed" if isinstance(o, int) else o for o in outcomes)
        self.assertEqual(kinds, Counter(reversed=1, already_reversed=self.THREADS - 1))
        self.assertEqual(balances(self.seller), (10_000, 0))
        self.assertEqual(ledger_check().problems, [])

    def test_reversals_racing_the_sellers_own_charges_keep_the_books_exact(self):
        charges = [
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=100)
            for _ in range(self.THREADS // 2)
        ]

        def reverse_or_charge(i: int) -> int:
            if i % 2:
                return phone_charge_create(
                    seller_id=self.seller.pk, phone_number=OTHER_PHONE, amount=250
                ).pk
            charge = charges[i // 2]
            return phone_charge_reverse(charge_id=charge.pk, reversed_by=self.reverser).pk

        outcomes = run_at_once(self.THREADS, reverse_or_charge)
        self.assertTrue(all(isinstance(o, int) for o in outcomes), outcomes)
        self.assertEqual(Seller.objects.get(pk=self.seller.pk).balance, 9_000)
        self.assertEqual(balances(self.seller)[1], 0)
        self.assertEqual(ledger_check().problems, [])
