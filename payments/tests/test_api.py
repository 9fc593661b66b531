import contextlib
import datetime
from unittest import mock

from django.conf import settings
from django.db.models import Max
from django.test import override_settings
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APITestCase

from payments.models import (
    CreditRequest,
    PhoneAccount,
    PhoneCharge,
    PhoneChargeReversal,
    Transaction,
)
from payments.services import credit_request_create, phone_charge_create
from testing.assertions import ErrorShapeAssertions
from testing.factories import client_for, credit_approved_make, seller_make, staff_make

PHONE = "+14155550123"
OTHER_PHONE = "+14155550199"


@contextlib.contextmanager
def _at(moment: datetime.datetime):
    """Stamp rows created inside the block with ``moment``: rows the application
    dates by the mocked clock, and movements afterwards (the database dates a
    charge, credit or reversal once it holds the seller's lock)."""
    before = {model: model.objects.aggregate(last=Max("pk"))["last"] or 0
              for model in (PhoneCharge, PhoneChargeReversal, Transaction)}  # fmt: skip
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield
    for model, last in before.items():
        model.objects.filter(pk__gt=last).update(created_at=moment)


class CreditRequestCreateApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.url = reverse("credit-request-list")
        self.seller = seller_make()

    def assertNoCreditRequestCreated(self):
        self.assertFalse(CreditRequest.objects.exists())
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)

    def test_seller_creates_a_pending_credit_request(self):
        response = client_for(self.seller.user).post(self.url, {"amount": 5_000}, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        credit_request = CreditRequest.objects.get()
        body = response.json()
        self.assertEqual(
            (body["id"], body["seller"], body["amount"], body["status"], body["decided_by"]),
            (credit_request.pk, self.seller.pk, 5_000, "pending", None),
        )

    def test_creating_a_credit_request_moves_no_money(self):
        client_for(self.seller.user).post(self.url, {"amount": 5_000}, format="json")
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)
        self.assertFalse(Transaction.objects.exists())

    def test_staff_cannot_create_a_credit_request(self):
        response = client_for(staff_make()).post(self.url, {"amount": 5_000}, format="json")
        self.assertErrorResponse(response, status.HTTP_403_FORBIDDEN, "permission_denied")
        self.assertNoCreditRequestCreated()

    def test_credit_request_without_a_token_is_refused(self):
        response = self.client.post(self.url, {"amount": 5_000}, format="json")
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "not_authenticated")
        self.assertNoCreditRequestCreated()

    def test_credit_request_with_a_bad_amount_is_refused(self):
        bad_amounts = [10.5, 10.0, "10.5", True, "abc", None, [], {}, 0, -5, 10**30]
        client = client_for(self.seller.user)
        for amount in bad_amounts:
            with self.subTest(amount=amount):
                response = client.post(self.url, {"amount": amount}, format="json")
                self.assertFieldError(response, "amount")
        self.assertNoCreditRequestCreated()

    def test_credit_request_without_an_amount_is_refused(self):
        response = client_for(self.seller.user).post(self.url, {}, format="json")
        self.assertEqual(self.assertFieldError(response, "amount")[0]["code"], "required")
        self.assertNoCreditRequestCreated()


class CreditRequestListApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.url = reverse("credit-request-list")
        self.seller = seller_make()
        self.other_seller = seller_make()
        self.pending = credit_request_create(seller=self.seller, amount=100)
        self.approved = credit_approved_make(seller=self.seller, amount=200)
        self.others = credit_request_create(seller=self.other_seller, amount=300)

    def listed_ids(self, response) -> list[int]:
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        return [row["id"] for row in response.json()["results"]]

    def test_seller_lists_only_its_own_requests(self):
        response = client_for(self.seller.user).get(self.url)
        self.assertEqual(self.listed_ids(response), [self.approved.pk, self.pending.pk])

    def test_staff_lists_every_request(self):
        response = client_for(staff_make()).get(self.url)
        self.assertEqual(
            self.listed_ids(response), [self.others.pk, self.approved.pk, self.pending.pk]
        )

    def test_staff_filters_requests_by_status(self):
        response = client_for(staff_make()).get(self.url, {"status": "pending"})
        self.assertEqual(self.listed_ids(response), [self.others.pk, self.pending.pk])

    def test_seller_filtering_by_status_still_sees_only_its_own(self):
        response = client_for(self.seller.user).get(self.url, {"status": "pending"})
        self.assertEqual(self.listed_ids(response), [self.pending.pk])

    def test_unknown_status_filter_is_refused(self):
        response = client_for(staff_make()).get(self.url, {"status": "paid"})
        self.assertFieldError(response, "status")

    def test_seller_reads_its_own_request(self):
        response = client_for(self.seller.user).get(
            reverse("credit-request-detail", args=[self.pending.pk])
        )
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json()["amount"], 100)

    def test_another_sellers_request_is_not_found(self):
        response = client_for(self.seller.user).get(
            reverse("credit-request-detail", args=[self.others.pk])
        )
        self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")

    def test_list_without_a_token_is_refused(self):
        response = self.client.get(self.url)
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "not_authenticated")


class CreditRequestDecideApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.seller = seller_make()
        self.staff = staff_make()
        self.credit_request = credit_request_create(seller=self.seller, amount=5_000)

    def decide(self, user, verb: str, pk=None):
        url = reverse(f"credit-request-{verb}", args=[pk or self.credit_request.pk])
        return client_for(user).post(url)

    def assertStillPendingAndNothingMoved(self):
        self.credit_request.refresh_from_db()
        self.assertEqual(self.credit_request.status, CreditRequest.Status.PENDING)
        self.assertIsNone(self.credit_request.decided_by)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)
        self.assertFalse(Transaction.objects.exists())

    def test_staff_approval_credits_the_seller(self):
        response = self.decide(self.staff, "approve")
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertEqual(
            (response.json()["status"], response.json()["decided_by"]), ("approved", self.staff.pk)
        )
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 5_000)
        self.assertEqual(Transaction.objects.get().credit_request, self.credit_request)

    def test_staff_rejection_moves_no_money(self):
        response = self.decide(self.staff, "reject")
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertEqual(response.json()["status"], "rejected")
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)
        self.assertFalse(Transaction.objects.exists())

    def test_a_rejection_reason_is_shown_to_the_seller(self):
        client_for(self.staff).post(
            reverse("credit-request-reject", args=[self.credit_request.pk]),
            {"reason": "Unpaid invoice #12"},
            format="json",
        )
        response = client_for(self.seller.user).get(
            reverse("credit-request-detail", args=[self.credit_request.pk])
        )
        self.assertEqual(
            (response.json()["status"], response.json()["rejection_reason"]),
            ("rejected", "Unpaid invoice #12"),
        )

    def test_a_rejection_reason_over_500_characters_is_refused_and_decides_nothing(self):
        response = client_for(self.staff).post(
            reverse("credit-request-reject", args=[self.credit_request.pk]),
            {"reason": "x" * 501},
            format="json",
        )
        self.assertFieldError(response, "reason")
        self.assertStillPendingAndNothingMoved()

    def test_a_rejection_reason_with_a_null_character_is_refused_and_decides_nothing(self):
        response = client_for(self.staff).post(
            reverse("credit-request-reject", args=[self.credit_request.pk]),
            {"reason": "Unpaid\x00"},
            format="json",
        )
        self.assertFieldError(response, "reason")
        self.assertStillPendingAndNothingMoved()

    def test_an_approved_request_has_no_rejection_reason(self):
        response = self.decide(self.staff, "approve")
        self.assertIsNone(response.json()["rejection_reason"])

    def test_seller_cannot_approve_its_own_request(self):
        response = self.decide(self.seller.user, "approve")
        self.assertErrorResponse(response, status.HTTP_403_FORBIDDEN, "permission_denied")
        self.assertStillPendingAndNothingMoved()

    def test_seller_cannot_reject_its_own_request(self):
        response = self.decide(self.seller.user, "reject")
        self.assertErrorResponse(response, status.HTTP_403_FORBIDDEN, "permission_denied")
        self.assertStillPendingAndNothingMoved()

    def test_decision_without_a_token_is_refused(self):
        url = reverse("credit-request-approve", args=[self.credit_request.pk])
        response = self.client.post(url)
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "not_authenticated")
        self.assertStillPendingAndNothingMoved()

    def test_approving_twice_is_a_conflict_and_credits_once(self):
        self.decide(self.staff, "approve")
        response = self.decide(self.staff, "approve")
        self.assertErrorResponse(response, status.HTTP_409_CONFLICT, "already_decided")
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 5_000)
        self.assertEqual(Transaction.objects.count(), 1)

    def test_rejecting_an_approved_request_is_a_conflict(self):
        self.decide(self.staff, "approve")
        response = self.decide(self.staff, "reject")
        self.assertErrorResponse(response, status.HTTP_409_CONFLICT, "already_decided")
        self.credit_request.refresh_from_db()
        self.assertEqual(self.credit_request.status, CreditRequest.Status.APPROVED)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 5_000)

    def test_approving_a_rejected_request_is_a_conflict(self):
        self.decide(self.staff, "reject")
        response = self.decide(self.staff, "approve")
        self.assertErrorResponse(response, status.HTTP_409_CONFLICT, "already_decided")
        self.credit_request.refresh_from_db()
        self.assertEqual(self.credit_request.status, CreditRequest.Status.REJECTED)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)
        self.assertFalse(Transaction.objects.exists())

    def test_deciding_an_unknown_request_is_not_found(self):
        for verb in ("approve", "reject"):
            with self.subTest(verb):
                response = self.decide(self.staff, verb, pk=self.credit_request.pk + 1000)
                self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")
        self.assertStillPendingAndNothingMoved()

    def test_deciding_a_non_numeric_or_out_of_range_id_is_not_found(self):
        base = reverse("credit-request-list")
        for pk in ("abc", "1.5", "-1", "1e3", "99999999999999999999"):
            with self.subTest(pk=pk):
                response = client_for(self.staff).post(f"{base}{pk}/approve/")
                self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")
        self.assertStillPendingAndNothingMoved()

    def test_get_on_approve_is_not_allowed(self):
        url = reverse("credit-request-approve", args=[self.credit_request.pk])
        response = client_for(self.staff).get(url)
        self.assertErrorResponse(response, status.HTTP_405_METHOD_NOT_ALLOWED, "method_not_allowed")
        self.assertStillPendingAndNothingMoved()


class SellerBalanceApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.url = reverse("seller-me")
        self.seller = seller_make(name="Zoë")

    def test_me_returns_the_callers_seller(self):
        response = client_for(self.seller.user).get(self.url)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(
            {key: response.json()[key] for key in ("id", "username", "name", "balance")},
            {
                "id": self.seller.pk,
                "username": self.seller.user.username,
                "name": "Zoë",
                "balance": 0,
            },
        )

    def test_me_shows_the_current_balance(self):
        credit_approved_make(seller=self.seller, amount=700)
        response = client_for(self.seller.user).get(self.url)
        self.assertEqual(response.json()["balance"], 700)

    def test_me_for_staff_without_a_seller_is_not_found(self):
        response = client_for(staff_make()).get(self.url)
        self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")

    def test_me_without_a_token_is_refused(self):
        response = self.client.get(self.url)
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "not_authenticated")


class PhoneChargeApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.url = reverse("phone-charge")
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)
        self.journal_rows = Transaction.objects.count()

    def charge(self, **fields):
        body = {"phone_number": PHONE, "amount": 300} | fields
        return self.client.post(self.url, body, format="json")

    def assertNothingChanged(self):
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 1_000)
        self.assertEqual(Transaction.objects.count(), self.journal_rows)
        self.assertFalse(PhoneCharge.objects.exists())
        self.assertFalse(PhoneAccount.objects.exists())

    def test_charge_returns_the_charge_and_the_new_balance(self):
        response = self.charge()
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        charge = PhoneCharge.objects.get()
        body = response.json()
        self.assertEqual(
            {
                key: body[key]
                for key in ("id", "phone_number", "amount", "transaction_id", "balance")
            },
            {
                "id": charge.pk,
                "phone_number": PHONE,
                "amount": 300,
                "transaction_id": charge.transaction.pk,
                "balance": 700,
            },
        )

    def test_charge_debits_the_seller_credits_the_phone_and_journals_it(self):
        self.charge()
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 700)
        self.assertEqual(PhoneAccount.objects.get(phone_number=PHONE).balance, 300)
        row = Transaction.objects.get(kind=Transaction.Kind.CHARGE)
        self.assertEqual((row.seller, row.amount, row.balance_after), (self.seller, 300, 700))

    def test_phone_number_is_returned_in_e164(self):
        response = self.charge(phone_number="(415) 555-0123")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        self.assertEqual(response.json()["phone_number"], PHONE)

    def test_amount_as_a_string_of_digits_is_refused_and_changes_nothing(self):
        response = self.charge(amount="300")
        self.assertFieldError(response, "amount")
        self.assertNothingChanged()

    @override_settings(PAYLEDGER_MAX_AMOUNT=1_000)
    def test_amount_at_the_configured_maximum_is_accepted(self):
        response = self.charge(amount=1_000)
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        self.assertEqual(response.json()["balance"], 0)

    def test_charge_that_would_overdraw_is_a_conflict_and_changes_nothing(self):
        response = self.charge(amount=1_001)
        self.assertErrorResponse(response, status.HTTP_409_CONFLICT, "insufficient_balance")
        self.assertNothingChanged()

    def test_fractional_amount_is_refused_and_changes_nothing(self):
        for amount in (10.5, 10.0, "10.5", "10.0", 1e3):
            with self.subTest(amount=amount):
                self.assertFieldError(self.charge(amount=amount), "amount")
        self.assertNothingChanged()

    def test_non_numeric_amount_is_refused_and_changes_nothing(self):
        for amount in (True, False, "abc", "", " 10", "+10", "1_000", [], [10], {}, {"v": 10}):
            with self.subTest(amount=amount):
                self.assertFieldError(self.charge(amount=amount), "amount")
        self.assertNothingChanged()

    def test_null_amount_is_refused_and_changes_nothing(self):
        errors = self.assertFieldError(self.charge(amount=None), "amount")
        self.assertEqual(errors[0]["code"], "null")
        self.assertNothingChanged()

    def test_zero_or_negative_amount_is_refused_and_changes_nothing(self):
        for amount in (0, -5, "-5", "0"):
            with self.subTest(amount=amount):
                self.assertFieldError(self.charge(amount=amount), "amount")
        self.assertNothingChanged()

    def test_amount_above_the_maximum_is_refused_and_changes_nothing(self):
        too_big = (settings.PAYLEDGER_MAX_AMOUNT + 1, 10**30, str(10**30), "9" * 5_000)
        for amount in too_big:
            with self.subTest(amount=str(amount)[:20]):
                self.assertFieldError(self.charge(amount=amount), "amount")
        self.assertNothingChanged()

    def test_missing_fields_are_refused_and_change_nothing(self):
        cases = {"amount": {"phone_number": PHONE}, "phone_number": {"amount": 300}}
        for missing, body in cases.items():
            with self.subTest(missing=missing):
                response = self.client.post(self.url, body, format="json")
                self.assertEqual(self.assertFieldError(response, missing)[0]["code"], "required")
        self.assertNothingChanged()

    def test_invalid_phone_number_is_refused_and_changes_nothing(self):
        for phone_number in ("12", "abc", "", "   ", "+1 555 0000 0000", "+999 1234567", "+1" * 20):
            with self.subTest(phone_number=phone_number):
                self.assertFieldError(self.charge(phone_number=phone_number), "phone_number")
        self.assertNothingChanged()

    def test_non_string_phone_number_is_refused_and_changes_nothing(self):
        for phone_number in (4155550123, 14155550123, 4155550123.0, True, None, [PHONE], {}):
            with self.subTest(phone_number=phone_number):
                self.assertFieldError(self.charge(phone_number=phone_number), "phone_number")
        self.assertNothingChanged()

    def test_null_character_in_phone_number_is_refused_and_changes_nothing(self):
        self.assertFieldError(self.charge(phone_number=PHONE + "\x00"), "phone_number")
        self.assertNothingChanged()

    def test_body_that_is_not_an_object_is_refused_and_changes_nothing(self):
        for body in ([PHONE, 300], "charge", 300):
            with self.subTest(body=body):
                response = self.client.post(self.url, body, format="json")
                self.assertFieldError(response, "non_field_errors")
        self.assertNothingChanged()

    def test_a_null_body_says_no_data_was_provided(self):
        response = self.client.generic("POST", self.url, "null", content_type="application/json")
        self.assertFieldError(response, "non_field_errors")
        self.assertIn("No data provided", response.content.decode())
        self.assertNothingChanged()

    def test_malformed_json_is_a_parse_error_and_changes_nothing(self):
        for raw in ('{"phone_number": "+14155550123", "amount": 300', "amount=300", b"\xff\xfe"):
            with self.subTest(raw=raw):
                response = self.client.generic(
                    "POST", self.url, raw, content_type="application/json"
                )
                self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "parse_error")
        self.assertNothingChanged()

    def test_json_constants_outside_the_standard_are_a_parse_error(self):
        for constant in ("NaN", "Infinity", "-Infinity"):
            with self.subTest(constant=constant):
                raw = f'{{"phone_number": "{PHONE}", "amount": {constant}}}'
                response = self.client.generic(
                    "POST", self.url, raw, content_type="application/json"
                )
                self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "parse_error")
        self.assertNothingChanged()

    def test_json_integer_too_long_to_read_is_a_parse_error(self):
        raw = f'{{"phone_number": "{PHONE}", "amount": {"9" * 5_000}}}'
        response = self.client.generic("POST", self.url, raw, content_type="application/json")
        self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "parse_error")
        self.assertNothingChanged()

    def test_deeply_nested_json_is_a_parse_error(self):
        raw = '{"phone_number": ' + "[" * 100_000 + "]" * 100_000 + ', "amount": 300}'
        response = self.client.generic("POST", self.url, raw, content_type="application/json")
        self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "parse_error")
        self.assertNothingChanged()

    def test_non_json_content_type_is_unsupported_and_changes_nothing(self):
        for content_type in ("application/x-www-form-urlencoded", "text/plain", "application/xml"):
            with self.subTest(content_type=content_type):
                response = self.client.generic(
                    "POST", self.url, f"phone_number={PHONE}&amount=300", content_type=content_type
                )
                self.assertErrorResponse(
                    response, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"
                )
        self.assertNothingChanged()

    def test_get_on_phone_charge_is_not_allowed(self):
        response = self.client.get(self.url)
        self.assertErrorResponse(response, status.HTTP_405_METHOD_NOT_ALLOWED, "method_not_allowed")
        self.assertNothingChanged()

    def test_charge_without_a_token_is_refused_and_changes_nothing(self):
        self.client.credentials()
        response = self.charge()
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "not_authenticated")
        self.assertNothingChanged()

    def test_staff_without_a_seller_cannot_charge(self):
        response = client_for(staff_make()).post(
            self.url, {"phone_number": PHONE, "amount": 300}, format="json"
        )
        self.assertErrorResponse(response, status.HTTP_403_FORBIDDEN, "permission_denied")
        self.assertNothingChanged()

    def test_charge_runs_a_fixed_number_of_queries(self):
        self.charge()
        # token + user + seller, savepoint, the charge's one statement, release
        with self.assertNumQueries(4):
            response = self.charge()
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)

    def test_refused_charge_runs_a_fixed_number_of_queries(self):
        # token + user + seller, savepoint, the debit that matches no row, the
        # seller's existence, rollback to and release the savepoint
        with self.assertNumQueries(6):
            response = self.charge(amount=1_001)
        self.assertErrorResponse(response, status.HTTP_409_CONFLICT, "insufficient_balance")
        self.assertNothingChanged()


class TransactionListApiTests(ErrorShapeAssertions, APITestCase):
    START = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)

    def setUp(self):
        self.url = reverse("transaction-list")
        self.seller = seller_make()
        self.other_seller = seller_make()
        # One row a day, oldest first: credit, charge, charge, credit (another seller).
        with _at(self.START):
            self.credit_request = credit_approved_make(seller=self.seller, amount=1_000)
        with _at(self.START + datetime.timedelta(days=1)):
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=100)
        with _at(self.START + datetime.timedelta(days=2)):
            phone_charge_create(seller_id=self.seller.pk, phone_number=OTHER_PHONE, amount=200)
        with _at(self.START + datetime.timedelta(days=3)):
            credit_approved_make(seller=self.other_seller, amount=50)
        self.credit_row, self.first_charge_row, self.second_charge_row, self.others_row = (
            Transaction.objects.order_by("id")
        )

    def listed_ids(self, response) -> list[int]:
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        return [row["id"] for row in response.json()["results"]]

    def get_as_seller(self, **params):
        return client_for(self.seller.user).get(self.url, params)

    def test_journal_lists_the_callers_rows_newest_first(self):
        self.assertEqual(
            self.listed_ids(self.get_as_seller()),
            [self.second_charge_row.pk, self.first_charge_row.pk, self.credit_row.pk],
        )

    def test_journal_never_shows_another_sellers_rows(self):
        response = client_for(self.other_seller.user).get(self.url)
        self.assertEqual(self.listed_ids(response), [self.others_row.pk])

    def test_charge_row_carries_its_amount_balance_and_phone_number(self):
        row = self.get_as_seller().json()["results"][0]
        self.assertEqual(
            row,
            {
                "id": self.second_charge_row.pk,
                "seller": self.seller.pk,
                "kind": "charge",
                "amount": 200,
                "balance_after": 700,
                "created_at": "2025-01-03T00:00:00Z",
                "credit_request": None,
                "phone_charge": self.second_charge_row.phone_charge_id,
                "phone_number": OTHER_PHONE,
                "reference": None,
                "reversed_charge": None,
            },
        )

    def test_credit_row_carries_its_amount_balance_and_credit_request(self):
        row = self.get_as_seller().json()["results"][-1]
        self.assertEqual(
            row,
            {
                "id": self.credit_row.pk,
                "seller": self.seller.pk,
                "kind": "credit",
                "amount": 1_000,
                "balance_after": 1_000,
                "created_at": "2025-01-01T00:00:00Z",
                "credit_request": self.credit_request.pk,
                "phone_charge": None,
                "phone_number": None,
                "reference": None,
                "reversed_charge": None,
            },
        )

    def test_journal_filters_by_kind(self):
        self.assertEqual(
            self.listed_ids(self.get_as_seller(kind="charge")),
            [self.second_charge_row.pk, self.first_charge_row.pk],
        )

    def test_journal_filters_by_phone_number(self):
        self.assertEqual(
            self.listed_ids(self.get_as_seller(phone_number=PHONE)), [self.first_charge_row.pk]
        )

    def test_created_after_includes_rows_at_that_moment(self):
        response = self.get_as_seller(created_after="2025-01-02T00:00:00Z")
        self.assertEqual(
            self.listed_ids(response), [self.second_charge_row.pk, self.first_charge_row.pk]
        )

    def test_created_before_excludes_rows_at_that_moment(self):
        response = self.get_as_seller(created_before="2025-01-02T00:00:00Z")
        self.assertEqual(self.listed_ids(response), [self.credit_row.pk])

    def test_created_after_and_before_together_select_a_window(self):
        response = self.get_as_seller(
            created_after="2025-01-01T12:00:00Z", created_before="2025-01-02T12:00:00Z"
        )
        self.assertEqual(self.listed_ids(response), [self.first_charge_row.pk])

    def test_unreadable_date_filter_is_refused(self):
        self.assertFieldError(self.get_as_seller(created_after="yesterday"), "created_after")

    def test_unknown_kind_filter_is_refused(self):
        self.assertFieldError(self.get_as_seller(kind="refund"), "kind")

    def test_limit_sets_the_page_size(self):
        response = self.get_as_seller(limit=2)
        self.assertEqual(
            self.listed_ids(response), [self.second_charge_row.pk, self.first_charge_row.pk]
        )
        self.assertIsNotNone(response.json()["next"])
        self.assertIsNone(response.json()["previous"])

    def test_next_page_continues_where_the_last_one_ended(self):
        first = self.get_as_seller(limit=2)
        client = client_for(self.seller.user)
        second = client.get(first.json()["next"])
        self.assertEqual(self.listed_ids(second), [self.credit_row.pk])
        self.assertIsNone(second.json()["next"])

    def test_new_rows_do_not_shift_the_next_page(self):
        first = self.get_as_seller(limit=2)
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)
        second = client_for(self.seller.user).get(first.json()["next"])
        self.assertEqual(self.listed_ids(second), [self.credit_row.pk])

    def test_invalid_cursor_is_refused(self):
        self.assertFieldError(self.get_as_seller(cursor="not-a-cursor"), "cursor")

    def test_staff_sees_every_sellers_rows(self):
        response = client_for(staff_make()).get(self.url)
        self.assertEqual(
            self.listed_ids(response),
            [
                self.others_row.pk,
                self.second_charge_row.pk,
                self.first_charge_row.pk,
                self.credit_row.pk,
            ],
        )

    def test_staff_filters_by_seller(self):
        response = client_for(staff_make()).get(self.url, {"seller": self.other_seller.pk})
        self.assertEqual(self.listed_ids(response), [self.others_row.pk])

    def test_seller_filtering_by_another_seller_sees_nothing(self):
        self.assertEqual(self.listed_ids(self.get_as_seller(seller=self.other_seller.pk)), [])

    def test_journal_without_a_token_is_refused(self):
        response = self.client.get(self.url)
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "not_authenticated")

    def test_journal_page_runs_a_fixed_number_of_queries(self):
        client = client_for(self.seller.user)
        # token + user, one page of rows joined to their charges
        with self.assertNumQueries(2):
            response = client.get(self.url)
        self.assertEqual(len(response.json()["results"]), 3)
