from datetime import timedelta
from unittest import mock

import phonenumbers
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import SimpleTestCase, TestCase, TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.exceptions import (
    AlreadyDecided,
    InsufficientBalance,
    OwnSellerForbidden,
    StaffOnly,
)
from payments.models import (
    CreditRequest,
    Event,
    PhoneAccount,
    PhoneChargeReversal,
    Transaction,
)
from payments.permissions import credit_approvers_group
from payments.selectors import ledger_problems
from payments.services import (
    _phone_number_e164,
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
    phone_charge_reverse,
    phone_number_normalize,
)
from testing.assertions import books
from testing.factories import (
    credit_approved_make,
    seller_make,
    staff_make,
    staff_powers_give,
)

User = get_user_model()
PHONE = "+14155550123"


class CreditRequestApproveTests(TestCase):
    def setUp(self):
        self.seller = seller_make()
        self.staff = staff_make()
        self.credit_request = credit_request_create(seller=self.seller, amount=5_000)

    def test_new_credit_request_is_pending_and_moves_no_money(self):
        self.assertEqual(self.credit_request.status, CreditRequest.Status.PENDING)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)
        self.assertFalse(Transaction.objects.exists())

    def test_approval_credits_the_seller_and_journals_it(self):
        credit_request_approve(credit_request_id=self.credit_request.pk, decided_by=self.staff)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 5_000)
        row = Transaction.objects.get()
        self.assertEqual(
            (row.kind, row.amount, row.balance_after, row.credit_request_id),
            (Transaction.Kind.CREDIT, 5_000, 5_000, self.credit_request.pk),
        )

    def test_approval_runs_a_fixed_number_of_queries(self):
        # savepoint, lock the request, credit the seller (one update), record the
        # decision, insert the journal row and the event, release the savepoint
        with self.assertNumQueries(7):
            credit_request_approve(credit_request_id=self.credit_request.pk, decided_by=self.staff)

    def test_approval_records_who_decided_and_when(self):
        approved = credit_request_approve(
            credit_request_id=self.credit_request.pk, decided_by=self.staff
        )
        self.assertEqual(approved.status, CreditRequest.Status.APPROVED)
        self.assertEqual(approved.decided_by, self.staff)
        self.assertIsNotNone(approved.decided_at)

    def test_second_approval_is_refused_and_credits_nothing(self):
        credit_request_approve(credit_request_id=self.credit_request.pk, decided_by=self.staff)
        with self.assertRaises(AlreadyDecided):
            credit_request_approve(credit_request_id=self.credit_request.pk, decided_by=self.staff)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 5_000)
        self.assertEqual(Transaction.objects.count(), 1)

    def test_rejection_moves_no_money(self):
        rejected = credit_request_reject(
            credit_request_id=self.credit_request.pk, decided_by=self.staff
        )
        self.assertEqual(rejected.status, CreditRequest.Status.REJECTED)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)
        self.assertFalse(Transaction.objects.exists())

    def test_rejection_keeps_its_reason(self):
        credit_request_reject(
            credit_request_id=self.credit_request.pk, decided_by=self.staff, reason="Unpaid"
        )
        self.credit_request.refresh_from_db()
        self.assertEqual(self.credit_request.rejection_reason, "Unpaid")

    def test_rejection_with_an_overlong_reason_is_refused_and_decides_nothing(self):
        with self.assertRaises(ValidationError):
            credit_request_reject(
                credit_request_id=self.credit_request.pk, decided_by=self.staff, reason="x" * 501
            )
        self.credit_request.refresh_from_db()
        self.assertEqual(self.credit_request.status, CreditRequest.Status.PENDING)

    def test_rejection_with_a_null_character_in_its_reason_is_refused_and_decides_nothing(self):
        with self.assertRaises(ValidationError) as refused:
            credit_request_reject(
                credit_request_id=self.credit_request.pk, decided_by=self.staff, reason="No\x00"
            )
        self.assertEqual(
            refused.exception.message_dict, {"reason": ["Null characters are not allowed."]}
        )
        self.credit_request.refresh_from_db()
        self.assertEqual(self.credit_request.status, CreditRequest.Status.PENDING)

    def test_the_database_refuses_a_reason_on_a_request_not_rejected(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            CreditRequest.objects.filter(pk=self.credit_request.pk).update(rejection_reason="no")

    def test_approving_a_rejected_request_is_refused(self):
        credit_request_reject(credit_request_id=self.credit_request.pk, decided_by=self.staff)
        with self.assertRaises(AlreadyDecided):
            credit_request_approve(credit_request_id=self.credit_request.pk, decided_by=self.staff)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)

    def test_rejecting_an_approved_request_is_refused(self):
        credit_request_approve(credit_request_id=self.credit_request.pk, decided_by=self.staff)
        with self.assertRaises(AlreadyDecided):
            credit_request_reject(credit_request_id=self.credit_request.pk, decided_by=self.staff)
        self.credit_request.refresh_from_db()
        self.assertEqual(self.credit_request.status, CreditRequest.Status.APPROVED)


class RefusalAssertions:
    def assertRefusedChangingNothing(self, error: type[Exception], move) -> None:
        before = books()
        with self.assertRaises(error):
            move()
        self.assertEqual(books(), before)


class OwnSellerTests(RefusalAssertions, TestCase):
    """A seller's user given staff powers (an administrator's mistake) still cannot
    decide its own credit or reverse its own charges: the services refuse, so the
    API, the admin and commands all do."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        self.credit_request = credit_request_create(seller=self.seller, amount=1_000_000_000)
        self.own_user = staff_powers_give(self.seller.user, reverser=True)

    def test_approving_its_own_request_is_refused_and_changes_nothing(self):
        self.assertRefusedChangingNothing(
            OwnSellerForbidden,
            lambda: credit_request_approve(
                credit_request_id=self.credit_request.pk, decided_by=self.own_user
            ),
        )

    def test_rejecting_its_own_request_is_refused_and_changes_nothing(self):
        self.assertRefusedChangingNothing(
            OwnSellerForbidden,
            lambda: credit_request_reject(
                credit_request_id=self.credit_request.pk, decided_by=self.own_user, reason="No"
            ),
        )

    def test_reversing_its_own_charge_is_refused_and_changes_nothing(self):
        self.assertRefusedChangingNothing(
            OwnSellerForbidden,
            lambda: phone_charge_reverse(charge_id=self.charge.pk, reversed_by=self.own_user),
        )

    def test_other_staff_still_decide_and_reverse_for_the_seller(self):
        staff = staff_make(reverser=True)
        credit_request_approve(credit_request_id=self.credit_request.pk, decided_by=staff)
        phone_charge_reverse(charge_id=self.charge.pk, reversed_by=staff)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 1_000 + 1_000_000_000)


class NonStaffActorTests(RefusalAssertions, TestCase):
    """Only staff decide credit and reverse charges, whatever permissions a user
    holds: a superuser who is not staff, or a seller placed in "Credit approvers"."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        self.credit_request = credit_request_create(seller=self.seller, amount=50)
        self.superuser_not_staff = User.objects.create_user(
            username="root", password="x", is_superuser=True
        )

    def test_approval_by_a_user_who_is_not_staff_is_refused_and_changes_nothing(self):
        self.assertRefusedChangingNothing(
            StaffOnly,
            lambda: credit_request_approve(
                credit_request_id=self.credit_request.pk, decided_by=self.superuser_not_staff
            ),
        )

    def test_rejection_by_a_user_who_is_not_staff_is_refused_and_changes_nothing(self):
        self.assertRefusedChangingNothing(
            StaffOnly,
            lambda: credit_request_reject(
                credit_request_id=self.credit_request.pk, decided_by=self.superuser_not_staff
            ),
        )

    def test_reversal_by_a_user_who_is_not_staff_is_refused_and_changes_nothing(self):
        self.assertRefusedChangingNothing(
            StaffOnly,
            lambda: phone_charge_reverse(
                charge_id=self.charge.pk, reversed_by=self.superuser_not_staff
            ),
        )

    def test_another_seller_in_the_approvers_group_cannot_approve(self):
        other = seller_make().user
        other.groups.add(credit_approvers_group(Group, Permission))
        self.assertRefusedChangingNothing(
            StaffOnly,
            lambda: credit_request_approve(
                credit_request_id=self.credit_request.pk, decided_by=other
            ),
        )


class CreditRequestAmountTests(TestCase):
    def setUp(self):
        self.seller = seller_make()

    def test_zero_amount_is_refused(self):
        with self.assertRaises(ValidationError):
            credit_request_create(seller=self.seller, amount=0)
        self.assertFalse(CreditRequest.objects.exists())

    def test_negative_amount_is_refused(self):
        with self.assertRaises(ValidationError):
            credit_request_create(seller=self.seller, amount=-1)
        self.assertFalse(CreditRequest.objects.exists())

    @override_settings(PAYLEDGER_MAX_AMOUNT=1_000)
    def test_amount_above_the_configured_maximum_is_refused(self):
        with self.assertRaises(ValidationError):
            credit_request_create(seller=self.seller, amount=1_001)
        self.assertFalse(CreditRequest.objects.exists())

    @override_settings(PAYLEDGER_MAX_AMOUNT=1_000)
    def test_amount_at_the_configured_maximum_is_accepted(self):
        credit_request = credit_request_create(seller=self.seller, amount=1_000)
        self.assertEqual(credit_request.amount, 1_000)

    def test_float_amount_is_refused(self):
        with self.assertRaises(ValidationError):
            credit_request_create(seller=self.seller, amount=10.0)
        self.assertFalse(CreditRequest.objects.exists())

    def test_boolean_amount_is_refused(self):
        with self.assertRaises(ValidationError):
            credit_request_create(seller=self.seller, amount=True)
        self.assertFalse(CreditRequest.objects.exists())


class PhoneChargeTests(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)

    def test_charge_debits_the_seller(self):
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 700)

    def test_charge_credits_the_phone_account(self):
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=200)
        self.assertEqual(PhoneAccount.objects.get(phone_number=PHONE).balance, 500)

    def test_charge_writes_a_journal_row_with_the_new_balance(self):
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        row = Transaction.objects.get(phone_charge=charge)
        self.assertEqual((row.kind, row.amount, row.balance_after), ("charge", 300, 700))
        self.assertEqual(charge.transaction, row)

    def test_phone_number_is_stored_in_e164(self):
        charge = phone_charge_create(
            seller_id=self.seller.pk, phone_number="(415) 555-0123", amount=1
        )
        self.assertEqual(charge.phone_number, PHONE)

    @override_settings(PAYLEDGER_PHONE_REGION="GB")
    def test_phone_number_without_prefix_is_read_in_the_configured_region(self):
        charge = phone_charge_create(
            seller_id=self.seller.pk, phone_number="07912 345678", amount=1
        )
        self.assertEqual(charge.phone_number, "+447912345678")

    def test_invalid_phone_number_is_refused_and_changes_nothing(self):
        with self.assertRaises(ValidationError) as refused:
            phone_charge_create(seller_id=self.seller.pk, phone_number="12", amount=1)
        self.assertIn("phone_number", refused.exception.message_dict)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 1_000)
        self.assertFalse(PhoneAccount.objects.exists())

    def test_charge_of_the_whole_balance_leaves_zero(self):
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1_000)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)

    def test_charge_that_would_overdraw_changes_nothing(self):
        with self.assertRaises(InsufficientBalance):
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1_001)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 1_000)
        self.assertFalse(PhoneAccount.objects.exists())
        self.assertEqual(Transaction.objects.filter(kind="charge").count(), 0)

    def test_charge_with_zero_amount_is_refused(self):
        with self.assertRaises(ValidationError):
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=0)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 1_000)

    def test_charge_runs_a_fixed_number_of_queries(self):
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)
        # savepoint, the charge's one statement (money, journal row and event), release
        with self.assertNumQueries(3):
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)


class PhoneNumberNormalizeTests(SimpleTestCase):
    def setUp(self):
        _phone_number_e164.cache_clear()

    def test_a_number_read_before_is_not_parsed_again(self):
        with mock.patch("payments.services.phonenumbers.parse", wraps=phonenumbers.parse) as parse:
            first = phone_number_normalize("+1 (415) 555-0177")
            again = phone_number_normalize("+1 (415) 555-0177")
        self.assertEqual((first, again), ("+14155550177", "+14155550177"))
        self.assertEqual(parse.call_count, 1)

    def test_a_number_is_read_in_the_region_configured_when_it_is_read(self):
        with self.assertRaises(ValidationError):
            phone_number_normalize("07912 345670")  # not a number in the US
        with override_settings(PAYLEDGER_PHONE_REGION="GB"):
            self.assertEqual(phone_number_normalize("07912 345670"), "+447912345670")


class PhoneChargeOutsideATransactionTests(TransactionTestCase):
    def test_a_charge_is_one_statement_that_commits_itself(self):
        # In autocommit the statement is its own transaction: PostgreSQL releases
        # the seller's row lock as it answers, not when a COMMIT arrives later.
        seller = seller_make(balance=1_000)
        with (
            CaptureQueriesContext(connection) as queries,
            mock.patch.object(connection, "commit", wraps=connection.commit) as commit,
        ):
            phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=1)
        self.assertEqual(len(queries), 1)
        commit.assert_not_called()
        seller.refresh_from_db()
        self.assertEqual(seller.balance, 999)


class JournalDatesTests(TestCase):
    """Every movement is dated by the database's clock once it holds the seller's
    row lock, as a charge is: an application host whose clock is an hour behind
    cannot date a movement before the one it followed."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.staff = staff_make()
        self.charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=400)
        self.credit_request = credit_request_create(seller=self.seller, amount=50)
        an_hour_behind = timezone.now() - timedelta(hours=1)
        self.app_clock_behind = mock.patch("django.utils.timezone.now", return_value=an_hour_behind)

    def journal_kinds_by_date(self) -> list[str]:
        """The seller's journal in date order; the first row is its opening credit."""
        rows = Transaction.objects.filter(seller=self.seller).order_by("created_at", "id")
        return list(rows.values_list("kind", flat=True))

    def test_a_credit_approved_after_a_charge_is_dated_after_it(self):
        with self.app_clock_behind:
            credit_request_approve(credit_request_id=self.credit_request.pk, decided_by=self.staff)
        self.assertEqual(self.journal_kinds_by_date(), ["credit", "charge", "credit"])

    def test_a_reversal_is_dated_after_the_charge_it_reverses(self):
        with self.app_clock_behind:
            phone_charge_reverse(charge_id=self.charge.pk, reversed_by=self.staff)
        self.assertEqual(self.journal_kinds_by_date(), ["credit", "charge", "reversal"])


class MovementDateTests(TestCase):
    """A movement, its journal row and its event carry one date."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.staff = staff_make()

    def event_date(self, event_type: str):
        """The date of the seller's last event of this type."""
        return Event.objects.filter(seller=self.seller, type=event_type).latest("id").created_at

    def test_a_charge_its_journal_row_and_its_event_have_one_date(self):
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=400)
        journal_row = Transaction.objects.get(phone_charge=charge)
        dates = {charge.created_at, journal_row.created_at}
        dates.add(self.event_date(Event.Type.PHONE_CHARGE_CREATED))
        self.assertEqual(len(dates), 1)

    def test_an_approval_its_journal_row_and_its_event_have_one_date(self):
        credit_request = credit_request_create(seller=self.seller, amount=50)
        credit_request_approve(credit_request_id=credit_request.pk, decided_by=self.staff)
        credit_request.refresh_from_db()
        dates = {credit_request.decided_at, credit_request.transaction.created_at}
        dates.add(self.event_date(Event.Type.CREDIT_REQUEST_APPROVED))
        self.assertEqual(len(dates), 1)

    def test_a_reversal_its_journal_row_and_its_event_have_one_date(self):
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=400)
        phone_charge_reverse(charge_id=charge.pk, reversed_by=self.staff)
        reversal = PhoneChargeReversal.objects.select_related("transaction").get()
        dates = {reversal.created_at, reversal.transaction.created_at}
        dates.add(self.event_date(Event.Type.PHONE_CHARGE_REVERSED))
        self.assertEqual(len(dates), 1)


class LedgerTests(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=400)
        credit_approved_make(seller=self.seller, amount=50)

    def test_books_of_normal_activity_balance(self):
        self.assertEqual(ledger_problems(), [])

    def test_seller_balance_changed_outside_the_journal_is_reported(self):
        type(self.seller).objects.filter(pk=self.seller.pk).update(balance=999)
        problems = ledger_problems()
        self.assertTrue(any(f"seller {self.seller.pk}: balance 999" in p for p in problems))

    def test_phone_balance_changed_outside_its_charges_is_reported(self):
        PhoneAccount.objects.filter(phone_number=PHONE).update(balance=1)
        problems = ledger_problems()
        self.assertTrue(any(f"phone {PHONE}" in p for p in problems))
        self.assertTrue(any(p.startswith("books:") for p in problems))

    def test_broken_running_balance_chain_names_the_row(self):
        row = Transaction.objects.filter(kind="charge").get()
        Transaction.objects.filter(pk=row.pk).update(balance_after=601)
        problems = ledger_problems()
        self.assertTrue(any(f"transaction {row.pk} " in p for p in problems))
