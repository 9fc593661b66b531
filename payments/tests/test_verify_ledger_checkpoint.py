"""verify_ledger from a checkpoint (issue 29): only the journal rows after it are read,
so a large book is checked as it grows, in the time its new rows take."""

import tempfile
from datetime import timedelta
from io import StringIO
from pathlib import Path

from django.core.management import CommandError, call_command
from django.test import TestCase
from django.utils import timezone

from payments.models import Transaction
from payments.selectors import SETTLED_AFTER
from payments.services import phone_charge_create
from testing.factories import credit_approved_make, seller_make

PHONE = "+14155550123"


def verify_ledger(*args: str) -> str:
    stdout = StringIO()
    call_command("verify_ledger", *args, stdout=stdout, stderr=StringIO())
    return stdout.getvalue()


class VerifyLedgerCheckpointTests(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.other = seller_make(balance=500)
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=100)
        self.checkpoint = Path(tempfile.mkdtemp()) / "verify_ledger.checkpoint"
        self.addCleanup(self.checkpoint.unlink, missing_ok=True)

    def charge(self, seller, amount: int = 10) -> Transaction:
        return phone_charge_create(
            seller_id=seller.pk, phone_number=PHONE, amount=amount
        ).transaction

    def settle(self) -> int:
        """Age every journal row past SETTLED_AFTER; the newest row's id."""
        Transaction.objects.update(created_at=timezone.now() - SETTLED_AFTER - timedelta(1))
        return Transaction.objects.latest("id").pk

    def test_a_first_run_checks_everything_and_writes_the_newest_settled_id(self):
        newest = self.settle()
        output = verify_ledger("--checkpoint", str(self.checkpoint))
        self.assertIn("checked 2 sellers, 3 transactions: ok", output)
        self.assertEqual(self.checkpoint.read_text(), f"{newest}\n")

    def test_the_checkpoint_stays_below_rows_newer_than_the_settling_time(self):
        # A newer row may have drawn its id while a lower one was still uncommitted:
        # the next run must read it again, with whatever committed below it.
        settled = self.settle()
        self.charge(self.seller)
        verify_ledger("--checkpoint", str(self.checkpoint))
        self.assertEqual(self.checkpoint.read_text(), f"{settled}\n")

    def test_the_next_run_reads_only_the_rows_after_the_checkpoint(self):
        settled = self.settle()
        verify_ledger("--checkpoint", str(self.checkpoint))
        self.charge(self.seller)
        self.charge(self.seller)
        output = verify_ledger("--checkpoint", str(self.checkpoint))
        self.assertIn(f"checked 1 sellers, 2 transactions after {settled}: ok", output)

    def test_a_broken_link_after_the_checkpoint_is_named_and_the_checkpoint_stays(self):
        verify_ledger("--checkpoint", str(self.checkpoint))
        before = self.checkpoint.read_text()
        row = self.charge(self.other)
        Transaction.objects.filter(pk=row.pk).update(balance_after=row.balance_after + 1)
        stderr = StringIO()
        with self.assertRaisesMessage(CommandError, "problem(s)"):
            call_command("verify_ledger", "--checkpoint", str(self.checkpoint), stderr=stderr)
        self.assertIn(f"transaction {row.pk} (seller {self.other.pk})", stderr.getvalue())
        self.assertEqual(self.checkpoint.read_text(), before)

    def test_the_first_row_after_the_checkpoint_links_to_the_one_before_it(self):
        verify_ledger("--checkpoint", str(self.checkpoint))
        last_checked = Transaction.objects.filter(seller=self.seller).latest("id")
        # The checked row moves; the new row's link to it no longer holds.
        Transaction.objects.filter(pk=last_checked.pk).update(balance_after=1)
        row = self.charge(self.seller)
        stderr = StringIO()
        with self.assertRaisesMessage(CommandError, "problem(s)"):
            call_command("verify_ledger", "--after", str(last_checked.pk), stderr=stderr)
        self.assertIn(f"transaction {row.pk} (seller {self.seller.pk})", stderr.getvalue())

    def test_a_seller_whose_balance_left_its_chain_after_the_checkpoint_is_named(self):
        verify_ledger("--checkpoint", str(self.checkpoint))
        self.charge(self.other)
        self.other.__class__.objects.filter(pk=self.other.pk).update(balance=7)
        stderr = StringIO()
        with self.assertRaisesMessage(CommandError, "problem(s)"):
            call_command("verify_ledger", "--checkpoint", str(self.checkpoint), stderr=stderr)
        self.assertIn(f"seller {self.other.pk}: balance 7", stderr.getvalue())

    def test_the_books_totals_are_checked_from_a_checkpoint_too(self):
        verify_ledger("--checkpoint", str(self.checkpoint))
        credit_approved_make(seller=self.other, amount=5)
        self.other.__class__.objects.filter(pk=self.other.pk).update(balance=505 + 1)
        stderr = StringIO()
        with self.assertRaisesMessage(CommandError, "problem(s)"):
            call_command("verify_ledger", "--checkpoint", str(self.checkpoint), stderr=stderr)
        self.assertIn("books: approved credit", stderr.getvalue())

    def test_a_checkpoint_file_without_an_id_is_refused(self):
        self.checkpoint.write_text("yesterday\n")
        with self.assertRaisesMessage(CommandError, "not a journal id"):
            verify_ledger("--checkpoint", str(self.checkpoint))

    def test_a_checkpoint_that_is_a_folder_is_named(self):
        with self.assertRaisesMessage(CommandError, "Is a directory"):
            verify_ledger("--checkpoint", str(self.checkpoint.parent))
