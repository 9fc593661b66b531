"""Many threads at once against the services, on a real database.

TransactionTestCase, because a TestCase transaction would hide each thread's
rows from the others. Every thread closes its own connection in ``finally``
(the recipe of Django's own select_for_update tests).
"""

import threading
from collections import Counter
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection
from django.test import Client, TransactionTestCase
from django.urls import reverse

from payledger_project.exceptions import DomainError
from payments.models import PhoneAccount, Transaction
from payments.selectors import ledger_problems
from payments.services import (
    credit_request_approve,
    credit_request_create,
    phone_charge_create,
    phone_charge_reverse,
)
from sellers.models import Seller
from testing.factories import seller_make, staff_make

PHONE = "+14155550123"
User = get_user_model()


def run_at_once(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released together; return each outcome."""
    outcomes: list[object] = [None] * count
    start = threading.Barrier(count)

    def worker(index: int) -> None:
        try:
            start.wait()
            outcomes[index] = work(index)
        except DomainError as error:
            outcomes[index] = error.code
        except Exception as error:  # noqa: BLE001 - reported by the test, not swallowed
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_old_connections()
    return outcomes


class ConcurrentChargeTests(TransactionTestCase):
    THREADS = 50
    AFFORDABLE = 17
    AMOUNT = 30

    def setUp(self):
        self.seller = seller_make(balance=self.AFFORDABLE * self.AMOUNT)
        self.outcomes = run_at_once(
            self.THREADS,
            lambda i: (
                phone_charge_create(
                    seller_id=self.seller.pk, phone_number=PHONE, amount=self.AMOUNT
                ).pk
            ),
        )

    def test_no_thread_fails_with_an_unexpected_error(self):
        unexpected = [o for o in self.outcomes if isinstance(o, Exception)]
        self.assertEqual(unexpected, [])

    def test_exactly_the_affordable_charges_succeed_and_the_rest_are_refused(self):
        kinds = Counter("charged" if isinstance(o, int) else o for o in self.outcomes)
        self.assertEqual(
            kinds,
            Counter(charged=self.AFFORDABLE, insufficient_balance=self.THREADS - self.AFFORDABLE),
        )

    def test_balance_ends_at_zero_and_the_phone_holds_the_rest(self):
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 0)
        self.assertEqual(
            PhoneAccount.objects.get(phone_number=PHONE).balance, self.AFFORDABLE * self.AMOUNT
        )

    def test_journal_has_one_row_per_successful_charge(self):
        self.assertEqual(Transaction.objects.filter(kind="charge").count(), self.AFFORDABLE)

    def test_books_balance_afterwards(self):
        self.assertEqual(ledger_problems(), [])


class ConcurrentChargesAcrossSellersTests(TransactionTestCase):
    """Sellers charging the same new phone number race to create its account."""

    def setUp(self):
        self.sellers = [seller_make(balance=1_000) for _ in range(4)]
        self.outcomes = run_at_once(
            20,
            lambda i: (
                phone_charge_create(
                    seller_id=self.sellers[i % 4].pk, phone_number="+447912345678", amount=100
                ).pk
            ),
        )

    def test_every_charge_succeeds(self):
        self.assertTrue(all(isinstance(o, int) for o in self.outcomes), self.outcomes)

    def test_phone_account_is_created_once_and_holds_every_charge(self):
        self.assertEqual(PhoneAccount.objects.get().balance, 2_000)

    def test_books_balance_afterwards(self):
        self.assertEqual(
            sorted(Seller.objects.values_list("balance", flat=True)), [500, 500, 500, 500]
        )
        self.assertEqual(ledger_problems(), [])


class ConcurrentApprovalTests(TransactionTestCase):
    THREADS = 20

    def setUp(self):
        self.seller = seller_make()
        self.staff = [staff_make() for _ in range(self.THREADS)]
        credit_request = credit_request_create(seller=self.seller, amount=700)
        self.outcomes = run_at_once(
            self.THREADS,
            lambda i: (
                credit_request_approve(
                    credit_request_id=credit_request.pk, decided_by=self.staff[i]
                ).status
            ),
        )

    def test_exactly_one_approval_wins_and_the_rest_see_already_decided(self):
        self.assertEqual(
            Counter(self.outcomes),
            Counter(approved=1, already_decided=self.THREADS - 1),
            "a credit request is approved exactly once",
        )

    def test_seller_is_credited_exactly_once(self):
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 700)
        self.assertEqual(Transaction.objects.filter(kind="credit").count(), 1)

    def test_books_balance_afterwards(self):
        self.assertEqual(ledger_problems(), [])


class ConcurrentChargeAndReversalTests(TransactionTestCase):
    """Charges to a phone and reversals of its earlier charges, for one seller, at
    once: both lock the seller before the phone, so neither waits on the other
    in a cycle (PostgreSQL would abort one as a deadlock)."""

    THREADS = 20

    def setUp(self):
        self.seller = seller_make(balance=10_000)
        staff = staff_make(reverser=True)
        earlier = [
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=10)
            for _ in range(self.THREADS // 2)
        ]

        def work(i: int) -> str:
            if i % 2:
                phone_charge_reverse(charge_id=earlier[i // 2].pk, reversed_by=staff)
                return "reversed"
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=10)
            return "charged"

        self.outcomes = run_at_once(self.THREADS, work)

    def test_every_charge_and_reversal_succeeds_without_deadlock(self):
        self.assertEqual(
            Counter(map(str, self.outcomes)),
            Counter(charged=self.THREADS // 2, reversed=self.THREADS // 2),
            "a charge and a reversal at once never deadlock",
        )

    def test_books_balance_afterwards(self):
        self.assertEqual(ledger_problems(), [])


class ConcurrentApprovalAndChargeTests(TransactionTestCase):
    """Approvals and charges for one seller interleave without deadlock or loss."""

    def setUp(self):
        self.seller = seller_make()
        staff = staff_make()
        requests = [credit_request_create(seller=self.seller, amount=100) for _ in range(10)]

        def work(i: int) -> str:
            if i % 2:
                return credit_request_approve(
                    credit_request_id=requests[i // 2].pk, decided_by=staff
                ).status
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=50)
            return "charged"

        self.outcomes = run_at_once(20, work)

    def test_every_outcome_is_a_success_or_a_clean_refusal(self):
        allowed = {"approved", "charged", "insufficient_balance"}
        self.assertTrue(set(self.outcomes) <= allowed, self.outcomes)

    def test_balance_matches_what_succeeded(self):
        charged = self.outcomes.count("charged")
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 10 * 100 - charged * 50)
        self.assertEqual(ledger_problems(), [])


class ConcurrentAdminApprovalTests(TransactionTestCase):
    """Several staff members click "Approve selected" on one request at once."""

    STAFF = 5

    def setUp(self):
        self.seller = seller_make()
        credit_request = credit_request_create(seller=self.seller, amount=900)
        clients = []
        for _ in range(self.STAFF):
            client = Client()
            client.force_login(User.objects.create_superuser(f"admin{len(clients)}", password="x"))
            clients.append(client)
        url = reverse("admin:payments_creditrequest_changelist")
        action = {"action": "approve_selected", "_selected_action": [credit_request.pk]}
        self.outcomes = run_at_once(
            self.STAFF, lambda i: clients[i].post(url, action, follow=True).status_code
        )

    def test_every_click_gets_a_page(self):
        self.assertEqual(self.outcomes, [200] * self.STAFF)

    def test_the_seller_is_credited_once(self):
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 900)
        self.assertEqual(Transaction.objects.filter(kind="credit").count(), 1)
        self.assertEqual(ledger_problems(), [])
