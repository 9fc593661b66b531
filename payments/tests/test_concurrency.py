"""Many threads at once against the services, on a real database.

Each class runs its storm once (testing.concurrency.StormTestCase) and each test
checks one property of what the storm left, read right after it.
"""

from collections import Counter

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from payments.models import PhoneAccount, Transaction
from payments.selectors import ledger_problems
from payments.services import (
    credit_request_approve,
    credit_request_create,
    phone_charge_create,
    phone_charge_reverse,
)
from sellers.models import Seller
from testing.concurrency import StormTestCase, run_at_once
from testing.factories import seller_make, staff_make

PHONE = "+14155550123"
User = get_user_model()


def credit_rows() -> int:
    return Transaction.objects.filter(kind="credit").count()


class ConcurrentChargeTests(StormTestCase):
    """50 threads charge one seller who can afford 17 of the charges."""

    THREADS = 50
    AFFORDABLE = 17
    AMOUNT = 30

    @classmethod
    def storm(cls):
        seller = seller_make(balance=cls.AFFORDABLE * cls.AMOUNT)
        cls.outcomes = run_at_once(
            cls.THREADS,
            lambda i: (
                phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=cls.AMOUNT).pk
            ),
        )
        cls.balance = Seller.objects.get(pk=seller.pk).balance
        cls.phone_accounts = list(PhoneAccount.objects.values_list("phone_number", "balance"))
        cls.charge_rows = Transaction.objects.filter(kind="charge").count()
        cls.problems = ledger_problems()

    def test_no_thread_fails_with_an_unexpected_error(self):
        unexpected = [o for o in self.outcomes if isinstance(o, Exception)]
        self.assertEqual(unexpected, [])

    def test_exactly_the_affordable_charges_succeed_and_the_rest_are_refused(self):
        kinds = Counter("charged" if isinstance(o, int) else o for o in self.outcomes)
        self.assertEqual(
            kinds,
            Counter(charged=self.AFFORDABLE, insufficient_balance=self.THREADS - self.AFFORDABLE),
        )

    def test_the_sellers_balance_ends_at_zero(self):
        self.assertEqual(self.balance, 0)

    def test_the_phone_holds_every_successful_charge(self):
        self.assertEqual(self.phone_accounts, [(PHONE, self.AFFORDABLE * self.AMOUNT)])

    def test_journal_has_one_row_per_successful_charge(self):
        self.assertEqual(self.charge_rows, self.AFFORDABLE)

    def test_books_balance_afterwards(self):
        self.assertEqual(self.problems, [])


class ConcurrentChargesAcrossSellersTests(StormTestCase):
    """Sellers charging the same new phone number race to create its account."""

    @classmethod
    def storm(cls):
        sellers = [seller_make(balance=1_000) for _ in range(4)]
        cls.outcomes = run_at_once(
            20,
            lambda i: (
                phone_charge_create(
                    seller_id=sellers[i % 4].pk, phone_number="+447912345678", amount=100
                ).pk
            ),
        )
        cls.phone_balances = list(PhoneAccount.objects.values_list("balance", flat=True))
        cls.seller_balances = sorted(Seller.objects.values_list("balance", flat=True))
        cls.problems = ledger_problems()

    def test_every_charge_succeeds(self):
        self.assertTrue(all(isinstance(o, int) for o in self.outcomes), self.outcomes)

    def test_phone_account_is_created_once_and_holds_every_charge(self):
        self.assertEqual(self.phone_balances, [2_000])

    def test_each_seller_pays_for_its_own_five_charges(self):
        self.assertEqual(self.seller_balances, [500, 500, 500, 500])

    def test_books_balance_afterwards(self):
        self.assertEqual(self.problems, [])


class ConcurrentApprovalTests(StormTestCase):
    """20 staff approve one credit request at once."""

    THREADS = 20

    @classmethod
    def storm(cls):
        seller = seller_make()
        staff = [staff_make() for _ in range(cls.THREADS)]
        credit_request = credit_request_create(seller=seller, amount=700)
        cls.outcomes = run_at_once(
            cls.THREADS,
            lambda i: (
                credit_request_approve(
                    credit_request_id=credit_request.pk, decided_by=staff[i]
                ).status
            ),
        )
        cls.balance = Seller.objects.get(pk=seller.pk).balance
        cls.credit_rows = credit_rows()
        cls.problems = ledger_problems()

    def test_exactly_one_approval_wins_and_the_rest_see_already_decided(self):
        self.assertEqual(
            Counter(self.outcomes),
            Counter(approved=1, already_decided=self.THREADS - 1),
            "a credit request is approved exactly once",
        )

    def test_seller_is_credited_exactly_once(self):
        self.assertEqual(self.balance, 700)

    def test_journal_has_one_credit_row(self):
        self.assertEqual(self.credit_rows, 1)

    def test_books_balance_afterwards(self):
        self.assertEqual(self.problems, [])


class ConcurrentChargeAndReversalTests(StormTestCase):
    """Charges to a phone and reversals of its earlier charges, for one seller, at
    once: both lock the seller before the phone, so neither waits on the other
    in a cycle (PostgreSQL would abort one as a deadlock)."""

    THREADS = 20

    @classmethod
    def storm(cls):
        seller = seller_make(balance=10_000)
        staff = staff_make(reverser=True)
        earlier = [
            phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=10)
            for _ in range(cls.THREADS // 2)
        ]

        def work(i: int) -> str:
            if i % 2:
                phone_charge_reverse(charge_id=earlier[i // 2].pk, reversed_by=staff)
                return "reversed"
            phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=10)
            return "charged"

        cls.outcomes = run_at_once(cls.THREADS, work)
        cls.problems = ledger_problems()

    def test_every_charge_and_reversal_succeeds_without_deadlock(self):
        self.assertEqual(
            Counter(map(str, self.outcomes)),
            Counter(charged=self.THREADS // 2, reversed=self.THREADS // 2),
            "a charge and a reversal at once never deadlock",
        )

    def test_books_balance_afterwards(self):
        self.assertEqual(self.problems, [])


class ConcurrentApprovalAndChargeTests(StormTestCase):
    """Approvals and charges for one seller interleave without deadlock or loss."""

    @classmethod
    def storm(cls):
        seller = seller_make()
        staff = staff_make()
        requests = [credit_request_create(seller=seller, amount=100) for _ in range(10)]

        def work(i: int) -> str:
            if i % 2:
                return credit_request_approve(
                    credit_request_id=requests[i // 2].pk, decided_by=staff
                ).status
            phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=50)
            return "charged"

        cls.outcomes = run_at_once(20, work)
        cls.balance = Seller.objects.get(pk=seller.pk).balance
        cls.problems = ledger_problems()

    def test_every_outcome_is_a_success_or_a_clean_refusal(self):
        allowed = {"approved", "charged", "insufficient_balance"}
        self.assertTrue(set(self.outcomes) <= allowed, self.outcomes)

    def test_balance_matches_what_succeeded(self):
        charged = self.outcomes.count("charged")
        self.assertEqual(self.balance, 10 * 100 - charged * 50)

    def test_books_balance_afterwards(self):
        self.assertEqual(self.problems, [])


class ConcurrentAdminApprovalTests(StormTestCase):
    """Several staff members click "Approve selected" on one request at once."""

    STAFF = 5

    @classmethod
    def storm(cls):
        seller = seller_make()
        credit_request = credit_request_create(seller=seller, amount=900)
        clients = []
        for _ in range(cls.STAFF):
            client = Client()
            client.force_login(User.objects.create_superuser(f"admin{len(clients)}", password="x"))
            clients.append(client)
        url = reverse("admin:payments_creditrequest_changelist")
        action = {"action": "approve_selected", "_selected_action": [credit_request.pk]}
        cls.outcomes = run_at_once(
            cls.STAFF, lambda i: clients[i].post(url, action, follow=True).status_code
        )
        cls.balance = Seller.objects.get(pk=seller.pk).balance
        cls.credit_rows = credit_rows()
        cls.problems = ledger_problems()

    def test_every_click_gets_a_page(self):
        self.assertEqual(self.outcomes, [200] * self.STAFF)

    def test_the_seller_is_credited_once(self):
        self.assertEqual(self.balance, 900)

    def test_journal_has_one_credit_row(self):
        self.assertEqual(self.credit_rows, 1)

    def test_books_balance_afterwards(self):
        self.assertEqual(self.problems, [])
