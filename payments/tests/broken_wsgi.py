"""PayLedger with a deliberately broken debit, for the bank test to catch.

The seller's balance is read and checked without its row lock, then written
back as an absolute value: two charges at once both pass the check and the
second write loses the first (a lost update). Test-only: never served.
"""

import time
from datetime import datetime

from django.utils import timezone

from payledger_project.wsgi import application
from payments import services
from sellers.models import Seller

__all__ = ["application"]


def balance_checked_outside_the_lock(seller_id: int, delta: int) -> tuple[int, datetime] | None:
    balance = Seller.objects.values_list("balance", flat=True).get(pk=seller_id)
    if balance + delta < 0:
        return None
    time.sleep(0.005)  # widen the window another request can step into
    Seller.objects.filter(pk=seller_id).update(balance=balance + delta)
    return balance + delta, timezone.now()


services._seller_balance_add = balance_checked_outside_the_lock
services._charge_move_in_one_statement = services._charge_move_step_by_step
