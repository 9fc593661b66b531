import csv
import io
from datetime import UTC, datetime
from io import StringIO

from django.core.management import CommandError, call_command
from django.test import TestCase

from payments.models import PhoneCharge, Transaction
from payments.services import phone_charge_create, phone_charge_reverse
from testing.factories import credit_approved_make, seller_make, staff_make

PHONE = "+14155550123"


def on_day(row: Transaction, day: int) -> None:
    Transaction.objects.filter(pk=row.pk).update(created_at=datetime(2026, 11, day, 12, tzinfo=UTC))


def report(*args: str) -> str:
    out = StringIO()
    call_command("ledger_report", *args, stdout=out)
    return out.getvalue()


class LedgerReportTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        # Nov 1: credit 1000 -> 1000; Nov 2: charge 300 -> 700;
        # Nov 3: credit 50 -> 750, charge 100 -> 650; Nov 4: that charge reversed -> 750;
        # Nov 5: charge 25 -> 725.
        cls.seller = seller_make(name="Alice")
        steps = [
            (1, lambda: credit_approved_make(seller=cls.seller, amount=1_000).transaction),
            (2, lambda: cls.charge(300)),
            (3, lambda: credit_approved_make(seller=cls.seller, amount=50).transaction),
            (3, lambda: cls.charge(100)),
            (4, lambda: cls.reverse_last_charge()),
            (5, lambda: cls.charge(25)),
        ]
        for day, step in steps:
            on_day(step(), day)
        cls.idle = seller_make(name="Idle")

    @classmethod
    def charge(cls, amount: int) -> Transaction:
        return phone_charge_create(
            seller_id=cls.seller.pk, phone_number=PHONE, amount=amount
        ).transaction

    @classmethod
    def reverse_last_charge(cls) -> Transaction:
        charge = PhoneCharge.objects.filter(seller=cls.seller).latest("id")
        reverser = staff_make(reverser=True)
        return phone_charge_reverse(charge_id=charge.pk, reversed_by=reverser).transaction

    def rows(self, *args: str) -> dict[str, dict[str, str]]:
        output = report(*args, "--format", "csv")
        return {row["name"]: row for row in csv.DictReader(io.StringIO(output))}

    def test_a_seller_name_that_is_a_formula_reaches_the_csv_as_text(self):
        formula = "=cmd|' /C calc'!A0"
        seller_make(name=formula)
        self.assertIn("'" + formula, self.rows("--since", "2026-11-01"))

    def test_opening_and_closing_come_from_the_chain_around_the_range(self):
        alice = self.rows("--since", "2026-11-02", "--until", "2026-11-04")["Alice"]
        self.assertEqual((alice["opening"], alice["closing"]), ("1000", "650"))

    def test_credits_charges_and_their_count_are_those_inside_the_range(self):
        alice = self.rows("--since", "2026-11-02", "--until", "2026-11-04")["Alice"]
        self.assertEqual(
            (alice["credited"], alice["charged"], alice["charges"]), ("50", "400", "2")
        )

    def test_reversals_inside_the_range_are_totalled(self):
        alice = self.rows("--since", "2026-11-04", "--until", "2026-11-05")["Alice"]
        self.assertEqual(
            (alice["reversed"], alice["opening"], alice["closing"]), ("100", "650", "750")
        )

    def test_opening_plus_credits_minus_charges_plus_reversals_is_closing_for_every_range(self):
        ranges = [
            ("2026-11-01", "2026-11-06"),
            ("2026-11-03", "2026-11-04"),
            ("2026-11-04", "2026-11-06"),
        ]
        for since, until in ranges:
            for row in self.rows("--since", since, "--until", until).values():
                with self.subTest(since=since, until=until, seller=row["name"]):
                    moved = int(row["credited"]) - int(row["charged"]) + int(row["reversed"])
                    self.assertEqual(int(row["opening"]) + moved, int(row["closing"]))

    def test_without_until_the_closing_balance_is_todays(self):
        alice = self.rows("--since", "2026-11-01")["Alice"]
        self.assertEqual(alice["closing"], "725")

    def test_a_seller_without_history_is_listed_at_zero(self):
        idle = self.rows("--since", "2026-11-01")["Idle"]
        self.assertEqual(
            [idle[column] for column in ("opening", "credited", "charged", "reversed", "closing")],
            ["0"] * 5,
        )

    def test_the_table_format_has_a_header_and_a_line_per_seller(self):
        lines = report("--since", "2026-11-01").splitlines()
        self.assertEqual(
            lines[0].split(),
            ["seller", "name", "opening", "credited", "charged", "reversed", "closing", "charges"],
        )
        self.assertEqual([line.split()[1] for line in lines[1:]], ["Alice", "Idle"])

    def test_the_table_shows_money_in_the_currency(self):
        [alice] = [line for line in report("--since", "2026-11-01").splitlines() if "Alice" in line]
        # opening, credited, charged, reversed, closing; then the number of charges
        self.assertEqual(
            alice.split()[2:],
            ["0.00", "USD", "10.50", "USD", "4.25", "USD", "1.00", "USD", "7.25", "USD", "3"],
        )

    def test_an_empty_range_is_refused(self):
        with self.assertRaisesMessage(CommandError, "--until must come after --since"):
            report("--since", "2026-11-04", "--until", "2026-11-04")
