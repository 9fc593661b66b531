import threading
import time
from io import StringIO

from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import TestCase, TransactionTestCase

from payments.exceptions import AlreadyDecided, InsufficientBalance
from payments.models import PhoneAccount, Transaction
from payments.selectors import ledger_problems
from payments.services import (
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
)
from sellers.models import Seller
from testing.assertions import books
from testing.factories import credit_approved_make, seller_make, staff_make

PHONE = "+14155550123"
OTHER_PHONE = "+14155550199"


def verify_ledger(*args: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("verify_ledger", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


class VerifyLedgerTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        # Journal: credit 1000 -> 1000, charge 400 -> 600, credit 50 -> 650.
        cls.seller = seller_make(balance=1_000)
        cls.charge = phone_charge_create(seller_id=cls.seller.pk, phone_number=PHONE, amount=400)
        credit_approved_make(seller=cls.seller, amount=50)

    def assert_fails_naming(self, *offenders: str) -> str:
        """Run the check expecting failure; return stderr after checking each offender is in it."""
        before = books()
        stderr = StringIO()
        with self.assertRaisesMessage(CommandError, "problem(s)"):
            call_command("verify_ledger", stdout=StringIO(), stderr=stderr)
        for offender in offenders:
            self.assertIn(offender, stderr.getvalue())
        self.assertEqual(books(), before)
        return stderr.getvalue()

    def test_consistent_books_print_a_one_line_summary(self):
        stdout, stderr = verify_ledger()
        # one seller (and the approver's none): 2 credits and 1 charge
        self.assertEqual(stdout.strip(), "checked 1 sellers, 3 transactions: ok")
        self.assertEqual(stderr, "")

    def test_one_seller_can_be_checked_alone(self):
        seller_make(balance=10)
        stdout, _ = verify_ledger("--seller", str(self.seller.pk))
        self.assertEqual(stdout.strip(), "checked 1 sellers, 3 transactions: ok")

    def test_checking_one_seller_names_only_its_own_problems(self):
        other = seller_make(balance=10)
        Seller.objects.filter(pk=other.pk).update(balance=11)
        stdout, _ = verify_ledger("--seller", str(self.seller.pk))
        self.assertIn(": ok", stdout)
        stderr = StringIO()
        with self.assertRaisesMessage(CommandError, "checked 1 sellers, 1 transactions: 2"):
            call_command("verify_ledger", "--seller", str(other.pk), stderr=stderr)
        self.assertIn(f"seller {other.pk}: balance 11", stderr.getvalue())

    def test_an_unknown_seller_is_an_error(self):
        with self.assertRaisesMessage(CommandError, "No seller 999999."):
            verify_ledger("--seller", "999999")

    def test_seller_balance_changed_behind_the_journal_fails_naming_the_seller(self):
        Seller.objects.filter(pk=self.seller.pk).update(balance=999)
        self.assert_fails_naming(f"seller {self.seller.pk}: balance 999 != journal total 650")

    def test_seller_balance_changed_behind_the_journal_breaks_the_books_total(self):
        Seller.objects.filter(pk=self.seller.pk).update(balance=999)
        self.assert_fails_naming("books: approved credit 1050 != seller balances 999")

    def test_tampered_phone_balance_fails_naming_the_phone(self):
        PhoneAccount.objects.filter(phone_number=PHONE).update(balance=1)
        self.assert_fails_naming(f"phone {PHONE}: balance 1 != charges 400")

    def test_journal_row_that_breaks_the_chain_fails_naming_the_row(self):
        row = self.charge.transaction
        Transaction.objects.filter(pk=row.pk).update(balance_after=601)
        stderr = self.assert_fails_naming(
            f"transaction {row.pk} (seller {self.seller.pk}): balance_after 601"
            " != running balance 600"
        )
        # Only the tampered row is named: the rows around it still chain.
        self.assertEqual(stderr.count("transaction "), 1)

    def test_last_journal_row_that_disagrees_with_the_balance_fails_naming_the_seller(self):
        last = Transaction.objects.filter(seller=self.seller).latest("id")
        Transaction.objects.filter(pk=last.pk).update(balance_after=651)
        self.assert_fails_naming(
            f"transaction {last.pk} ", f"seller {self.seller.pk}: balance 650 != last"
        )

    def test_every_broken_invariant_is_written_to_stderr(self):
        other = seller_make(balance=300)
        Seller.objects.filter(pk=self.seller.pk).update(balance=1)
        Seller.objects.filter(pk=other.pk).update(balance=2)
        PhoneAccount.objects.filter(phone_number=PHONE).update(balance=3)
        stderr = self.assert_fails_naming(
            f"seller {self.seller.pk}: balance 1", f"seller {other.pk}: balance 2", f"phone {PHONE}"
        )
        self.assertEqual(len(stderr.splitlines()), 6)

    def test_failure_message_counts_the_problems(self):
        Seller.objects.filter(pk=self.seller.pk).update(balance=999)
        # journal total, books total, last balance_after
        with self.assertRaisesMessage(CommandError, "3 problem(s)."):
            call_command("verify_ledger", stdout=StringIO(), stderr=StringIO())


class VerifyLedgerAfterMixedActivityTests(TestCase):
    def test_empty_books_print_ok(self):
        stdout, stderr = verify_ledger()
        self.assertIn(": ok", stdout)
        self.assertEqual(stderr, "")

    def test_healthy_ledger_after_many_mixed_operations_passes(self):
        staff = staff_make()
        alice = seller_make(balance=1_000)
        bob = seller_make(balance=200)
        seller_make()  # a seller who never traded
        for amount in (100, 250, 1):
            phone_charge_create(seller_id=alice.pk, phone_number=PHONE, amount=amount)
        phone_charge_create(seller_id=bob.pk, phone_number=PHONE, amount=150)
        phone_charge_create(seller_id=bob.pk, phone_number=OTHER_PHONE, amount=50)
        with self.assertRaises(InsufficientBalance):
            phone_charge_create(seller_id=bob.pk, phone_number=OTHER_PHONE, amount=1)
        with self.assertRaises(ValidationError):
            phone_charge_create(seller_id=alice.pk, phone_number="12", amount=1)
        rejected = credit_request_create(seller=bob, amount=5_000)
        credit_request_reject(credit_request_id=rejected.pk, decided_by=staff)
        approved = credit_approved_make(seller=bob, amount=75)
        with self.assertRaises(AlreadyDecided):
            credit_request_approve(credit_request_id=approved.pk, decided_by=staff)
        credit_request_create(seller=alice, amount=10)  # still pending
        phone_charge_create(seller_id=bob.pk, phone_number=OTHER_PHONE, amount=75)
        phone_charge_create(seller_id=alice.pk, phone_number=OTHER_PHONE, amount=649)

        stdout, stderr = verify_ledger()

        self.assertIn(": ok", stdout)
        self.assertEqual(stderr, "")
        alice.refresh_from_db()
        bob.refresh_from_db()
        self.assertEqual((alice.balance, bob.balance), (0, 0))
        self.assertEqual(Transaction.objects.count(), 3 + 7)


class VerifyLedgerWhileMoneyMovesTests(TransactionTestCase):
    """The check reads one snapshot, so commits landing between its queries cannot
    make healthy books look broken."""

    SECONDS = 3

    def setUp(self):
        self.staff = staff_make()
        self.sellers = [seller_make(balance=1_000_000) for _ in range(3)]

    def move_money_until(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                for seller in self.sellers:
                    phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=3)
                    credit_approved_make(seller=seller, amount=2)
        finally:
            connection.close()

    def verify_while_money_moves(self) -> tuple[int, list[str]]:
        stop = threading.Event()
        mover = threading.Thread(target=self.move_money_until, args=(stop,))
        mover.start()
        checks, reported = 0, []
        deadline = time.monotonic() + self.SECONDS
        try:
            while time.monotonic() < deadline:
                reported += ledger_problems()
                checks += 1
        finally:
            stop.set()
            mover.join()
        return checks, reported

    def test_healthy_books_are_never_reported_broken_while_money_moves(self):
        checks, reported = self.verify_while_money_moves()
        self.assertGreater(checks, 5)
        self.assertEqual(reported, [])

    def test_a_row_corrupted_with_raw_sql_is_reported_while_money_moves(self):
        phone_charge_create(seller_id=self.sellers[0].pk, phone_number=OTHER_PHONE, amount=10)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE payments_phoneaccount SET balance = balance + 1 WHERE phone_number = %s",
                [OTHER_PHONE],
            )
        checks, reported = self.verify_while_money_moves()
        # The phone is named in every check, and besides the books total nothing else is.
        phone_line = f"phone {OTHER_PHONE}: balance 11 != charges 10 - reversals 0"
        self.assertEqual(reported.count(phone_line), checks)
        self.assertEqual({line for line in reported if not line.startswith("books:")}, {phone_line})
