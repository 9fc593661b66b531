"""Every movement of money in PayLedger.

Each function runs in one database transaction: it locks the rows it changes
(``select_for_update``, always seller before phone account, credit request
before seller, so no two services wait on each other in a cycle), re-checks
the rule under the lock, moves the money and writes the journal row. On
SQLite the IMMEDIATE transaction mode serialises writers instead.
"""

import logging

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from payments.exceptions import AlreadyDecided, InsufficientBalance
from payments.models import CreditRequest, PhoneAccount, PhoneCharge, Transaction
from sellers.models import Seller

logger = logging.getLogger(__name__)


def amount_validate(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError({"amount": "Amount must be a whole number of the smallest unit."})
    if amount <= 0:
        raise ValidationError({"amount": "Amount must be greater than zero."})
    if amount > settings.PAYLEDGER_MAX_AMOUNT:
        raise ValidationError(
            {"amount": f"Amount must not exceed {settings.PAYLEDGER_MAX_AMOUNT}."}
        )


def phone_number_normalize(raw: str) -> str:
    """Return ``raw`` in E.164, reading numbers without "+" in the default region."""
    try:
        parsed = phonenumbers.parse(raw, settings.PAYLEDGER_PHONE_REGION)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ValidationError({"phone_number": "Enter a valid phone number."})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def credit_request_create(*, seller: Seller, amount: int) -> CreditRequest:
    amount_validate(amount)
    return CreditRequest.objects.create(seller=seller, amount=amount)


def _credit_request_lock_pending(credit_request_id: int) -> CreditRequest:
    credit_request = CreditRequest.objects.select_for_update().get(pk=credit_request_id)
    if credit_request.status != CreditRequest.Status.PENDING:
        raise AlreadyDecided()
    return credit_request


def _credit_request_decide(
    credit_request: CreditRequest, *, status: str, decided_by: AbstractBaseUser
) -> None:
    credit_request.status = status
    credit_request.decided_at = timezone.now()
    credit_request.decided_by = decided_by
    credit_request.save(update_fields=["status", "decided_at", "decided_by"])


@transaction.atomic
def credit_request_approve(
    *, credit_request_id: int, decided_by: AbstractBaseUser
) -> CreditRequest:
    """Credit the seller once; a second decision raises ``AlreadyDecided``."""
    credit_request = _credit_request_lock_pending(credit_request_id)
    seller = Seller.objects.select_for_update().get(pk=credit_request.seller_id)
    seller.balance += credit_request.amount
    seller.save(update_fields=["balance"])
    _credit_request_decide(
        credit_request, status=CreditRequest.Status.APPROVED, decided_by=decided_by
    )
    Transaction.objects.create(
        seller=seller,
        kind=Transaction.Kind.CREDIT,
        amount=credit_request.amount,
        balance_after=seller.balance,
        credit_request=credit_request,
    )
    transaction.on_commit(
        lambda: logger.info(
            "credit request %s approved: seller %s +%s",
            credit_request.pk,
            seller.pk,
            credit_request.amount,
            extra={
                "seller": seller.pk,
                "amount": credit_request.amount,
                "transaction_id": credit_request.transaction.pk,
                "kind": Transaction.Kind.CREDIT.value,
                "credit_request": credit_request.pk,
                "decision": CreditRequest.Status.APPROVED.value,
            },
        )
    )
    return credit_request


@transaction.atomic
def credit_request_reject(*, credit_request_id: int, decided_by: AbstractBaseUser) -> CreditRequest:
    credit_request = _credit_request_lock_pending(credit_request_id)
    _credit_request_decide(
        credit_request, status=CreditRequest.Status.REJECTED, decided_by=decided_by
    )
    transaction.on_commit(
        lambda: logger.info(
            "credit request %s rejected: seller %s",
            credit_request.pk,
            credit_request.seller_id,
            extra={
                "seller": credit_request.seller_id,
                "credit_request": credit_request.pk,
                "decision": CreditRequest.Status.REJECTED.value,
            },
        )
    )
    return credit_request


@transaction.atomic
def phone_charge_create(*, seller_id: int, phone_number: str, amount: int) -> PhoneCharge:
    """Debit the seller and credit the phone, or raise ``InsufficientBalance``."""
    amount_validate(amount)
    phone_number = phone_number_normalize(phone_number)
    seller = Seller.objects.select_for_update().get(pk=seller_id)
    if seller.balance < amount:
        raise InsufficientBalance()
    seller.balance -= amount
    seller.save(update_fields=["balance"])
    # ON CONFLICT DO NOTHING: two first charges to one number cannot race to create it.
    PhoneAccount.objects.bulk_create(
        [PhoneAccount(phone_number=phone_number)], ignore_conflicts=True
    )
    PhoneAccount.objects.filter(phone_number=phone_number).update(balance=F("balance") + amount)
    charge = PhoneCharge.objects.create(seller=seller, phone_account_id=phone_number, amount=amount)
    charge.transaction = Transaction.objects.create(
        seller=seller,
        kind=Transaction.Kind.CHARGE,
        amount=amount,
        balance_after=seller.balance,
        phone_charge=charge,
    )
    transaction.on_commit(
        lambda: logger.info(
            "phone charge %s: seller %s -%s",
            charge.pk,
            seller_id,
            amount,
            extra={
                "seller": seller_id,
                "amount": amount,
                "transaction_id": charge.transaction.pk,
                "kind": Transaction.Kind.CHARGE.value,
                "phone_charge": charge.pk,
            },
        )
    )
    return charge
