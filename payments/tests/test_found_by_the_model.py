"""Every failure the model machines or the bank test found, as a plain test.

Each names how it was found; each failed before its fix.
"""

import threading
import time
from datetime import UTC, datetime

from django.db import close_old_connections, connection, transaction
from django.test import TransactionTestCase

from payments.models import Transaction
from payments.selectors import seller_statement
from payments.services import phone_charge_create
from sellers.models import Seller
from testing.factories import seller_make

PHONE = "+14155550123"
ALL_TIME = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC))


class ChargeTimeTests(TransactionTestCase):
    """Found by the bank test: a statement read under load whose closing balance
    was not its totals' sum. A charge stamped its journal row with the time it
    started, before it waited for the seller's row lock, so a charge that waited
    was dated before one that committed ahead of it; the balance at an instant
    (the last row by created_at) then named a state the chain never had."""

    def test_a_charge_that_waited_for_the_lock_is_dated_after_the_one_that_went_first(self):
        seller = seller_make(balance=100)
        waiting = threading.Thread(target=self.charge, args=(seller.pk, 30))
        with transaction.atomic():
            Seller.objects.select_for_update().get(pk=seller.pk)
            waiting.start()
            time.sleep(0.5)  # the waiting charge has begun and waits for the lock
            phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=10)
        waiting.join()

        chain = list(Transaction.objects.filter(seller=seller).order_by("id"))
        self.assertEqual([row.balance_after for row in chain], [100, 90, 60])
        self.assertLessEqual(chain[1].created_at, chain[2].created_at)
        self.assertEqual(
            seller_statement(
                seller_id=seller.pk, start=ALL_TIME[0], end=ALL_TIME[1]
            ).closing_balance,
            60,
        )

    @staticmethod
    def charge(seller_id: int, amount: int) -> None:
        try:
            phone_charge_create(seller_id=seller_id, phone_number=PHONE, amount=amount)
        finally:
            close_old_connections()
            connection.close()
