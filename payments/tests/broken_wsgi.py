"""PayLedger with a deliberately broken debit, for the bank test to catch.

The seller's balance is read and checked without its row lock, then written
back as an absolute value before the money moves: two movements at once both
pass the check and the second write loses the first (a lost update). Test-only:
never served.
"""

import time
from datetime import datetime

from django.utils import timezone

from payledger_project.wsgi import application
from payments import services
from payments.models import PhoneCharge
from sellers.models import Seller

__all__ = ["application"]

charge_move = services._charge_move


def balance_written_outside_the_lock(seller_id: int, delta: int, *, needed: int = 0) -> int | None:
    """The seller's balance plus ``delta``, checked to hold ``needed`` and written
    back after a pause, with no row lock: a movement committed meanwhile is lost."""
    balance = Seller.objects.values_list("balance", flat=True).get(pk=seller_id)
    if balance < needed:
        return None
    time.sleep(0.005)  # widen the window another request can step into
    Seller.objects.filter(pk=seller_id).update(balance=balance + delta)
    return balance + delta


def credit_checked_outside_the_lock(seller_id: int, amount: int) -> tuple[int, datetime]:
    return balance_written_outside_the_lock(seller_id, amount), timezone.now()


def charge_checked_outside_the_lock(*, seller_id: int, amount: int, **charge) -> PhoneCharge | None:
    if balance_written_outside_the_lock(seller_id, 0, needed=amount) is None:
        return None
    return charge_move(seller_id=seller_id, amount=amount, **charge)


# Replaced by name: a name that no longer exists would leave the build unbroken
# and the canary red for the wrong reason, so it fails here, naming it.
for name, broken in [
    ("_seller_balance_credit", credit_checked_outside_the_lock),
    ("_charge_move", charge_checked_outside_the_lock),
]:
    if not hasattr(services, name):
        raise AttributeError(f"stale canary: payments.services has no {name} to break")
    setattr(services, name, broken)
