"""Every movement of money in PayLedger.

Each function runs in one database transaction: it locks the rows it changes
(always credit request before seller before phone account, so no two services
wait on each other in a cycle), checks the rule under the lock, moves the
money and writes the journal row. A seller's balance moves in one
``UPDATE ... RETURNING`` that takes the row lock, checks and changes the
balance at once, so the lock is held for as few round trips as possible; a
charge does all of its work in that one statement. Those statements, in
PostgreSQL's own SQL, are gathered in one section below ("The ledger's SQL"),
behind plain function names the services call.
"""

import contextlib
import functools
import logging
from datetime import datetime

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from payledger_project.postgresql.prepared import PreparedStatement
from payments.events import event_payload, event_payload_sql
from payments.exceptions import (
    AlreadyDecided,
    AlreadyReversed,
    DuplicateReference,
    InsufficientBalance,
    InsufficientPhoneBalance,
    OwnSellerForbidden,
    StaffOnly,
)
from payments.models import (
    CreditRequest,
    Event,
    PhoneAccount,
    PhoneCharge,
    PhoneChargeReversal,
    Transaction,
)
from sellers.models import Seller

logger = logging.getLogger(__name__)
REJECTION_REASON_MAX_LENGTH = CreditRequest._meta.get_field("rejection_reason").max_length
REVERSAL_REASON_MAX_LENGTH = PhoneChargeReversal._meta.get_field("reason").max_length


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
    e164 = _phone_number_e164(raw, settings.PAYLEDGER_PHONE_REGION)
    if e164 is None:
        raise ValidationError({"phone_number": "Enter a valid phone number."})
    return e164


# Sellers top up the same numbers again and again, and parsing one costs more
# than the rest of checking a charge's input: the last 10,000 are remembered.
@functools.lru_cache(maxsize=10_000)
def _phone_number_e164(raw: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# The ledger's SQL: the statements that move a balance, in PostgreSQL's own
# dialect (RETURNING, clock_timestamp(), rows modified inside WITH). Nothing
# else in the project writes a balance (see payments/tests/test_balance_writes.py).


def _seller_balance_credit(seller_id: int, amount: int) -> tuple[int, datetime]:
    """Add ``amount`` to the seller's balance, taking its row lock; return the new
    balance and the movement's date.

    The date is read under the lock from the database's clock, as the
    one-statement charge reads it, so the seller's journal dates follow its
    balance_after chain whatever the application hosts' clocks say."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Seller._meta.db_table} SET balance = balance + %s"
            " WHERE id = %s RETURNING balance, clock_timestamp()",
            [amount, seller_id],
        )
        return cursor.fetchone()


def _phone_balance_take(phone_number: str, amount: int) -> bool:
    """Take ``amount`` back from the phone under its row lock; False (and nothing
    taken) if the phone no longer holds that much."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {PhoneAccount._meta.db_table} SET balance = balance - %s"
            " WHERE phone_number = %s AND balance >= %s",
            [amount, phone_number, amount],
        )
        return cursor.rowcount == 1


# A charge moves its money and writes its event in one statement, prepared once
# per connection (payledger_project/postgresql/prepared.py), so the seller's row
# lock is held for that statement and the commit alone. The event's payload is
# built by PostgreSQL as payments/events.py defines it, from the ids, numbers and
# date the statement makes. The charge is dated once it holds the lock
# (clock_timestamp() in the debit's RETURNING), not when the statement began: a
# charge that waited for the lock must not be dated before the one that went
# first, or the journal's dates would disagree with its balance_after chain (and
# a balance "at an instant" would be a state that never was).
CHARGE_EVENT_PAYLOAD = event_payload_sql(
    Event.Type.PHONE_CHARGE_CREATED,
    id="charge.id",
    seller="debited.id",
    phone_number="phone.phone_number",
    amount="%(amount)s",
    created_at="debited.now",
    reference="%(reference)s",
    transaction_id="journal_row.id",
    balance="debited.balance",
)
CHARGE_IN_ONE_STATEMENT = PreparedStatement(
    "payledger_charge",
    f"""
WITH debited AS (
    UPDATE sellers_seller SET balance = balance - %(amount)s
    WHERE id = %(seller_id)s AND balance >= %(amount)s
    RETURNING id, balance, clock_timestamp() AS now
), phone AS (
    INSERT INTO payments_phoneaccount (phone_number, balance, created_at)
    SELECT %(phone_number)s, %(amount)s, debited.now FROM debited
    ON CONFLICT (phone_number)
    DO UPDATE SET balance = payments_phoneaccount.balance + excluded.balance
    RETURNING phone_number
), charge AS (
    INSERT INTO payments_phonecharge (seller_id, phone_number, amount, created_at, reference)
    SELECT debited.id, phone.phone_number, %(amount)s, debited.now, %(reference)s
    FROM debited, phone
    RETURNING id
), journal_row AS (
    INSERT INTO payments_transaction
        (seller_id, kind, amount, balance_after, created_at, phone_charge_id)
    SELECT debited.id, %(kind)s, %(amount)s, debited.balance, debited.now, charge.id
    FROM debited, charge
    RETURNING id
), event AS (
    INSERT INTO payments_event (type, seller_id, created_at, payload)
    SELECT %(event_type)s, debited.id, debited.now, {CHARGE_EVENT_PAYLOAD}::jsonb
    FROM debited, phone, charge, journal_row
)
SELECT charge.id, journal_row.id, debited.balance, debited.now
FROM debited, charge, journal_row
""",
)


def _charge_move(
    *, seller_id: int, phone_number: str, amount: int, reference: str | None
) -> PhoneCharge | None:
    """Debit the seller under its row lock if it holds ``amount``, credit the phone
    (opening its account on its first charge), and write the charge, its journal
    row and its event; return the charge with its ``transaction``. None, and
    nothing written, if the seller does not hold ``amount`` (or does not exist)."""
    with connection.cursor() as cursor:
        CHARGE_IN_ONE_STATEMENT.execute(
            cursor,
            {
                "seller_id": seller_id,
                "phone_number": phone_number,
                "amount": amount,
                "kind": Transaction.Kind.CHARGE,
                "reference": reference,
                "event_type": Event.Type.PHONE_CHARGE_CREATED,
            },
        )
        moved = cursor.fetchone()
    if moved is None:
        return None
    charge_id, transaction_id, balance_after, now = moved
    charge = PhoneCharge(
        id=charge_id,
        seller_id=seller_id,
        phone_account_id=phone_number,
        amount=amount,
        created_at=now,
        reference=reference,
    )
    charge.transaction = Transaction(
        id=transaction_id,
        seller_id=seller_id,
        kind=Transaction.Kind.CHARGE,
        amount=amount,
        balance_after=balance_after,
        created_at=now,
        phone_charge=charge,
    )
    return charge


def _seller_lock(seller_id: int) -> int:
    """Take the seller's row lock and return its balance.

    Every transaction that writes a seller's event holds this lock first, so
    the seller's event ids grow in commit order (see ``Event``)."""
    return Seller.objects.select_for_update().values_list("balance", flat=True).get(pk=seller_id)


def _credit_request_event_record(
    event_type: str,
    credit_request: CreditRequest,
    *,
    balance: int,
    created_at: datetime | None = None,
) -> Event:
    payload = event_payload(
        event_type,
        id=credit_request.pk,
        seller=credit_request.seller_id,
        amount=credit_request.amount,
        status=credit_request.status,
        created_at=credit_request.created_at,
        decided_at=credit_request.decided_at,
        decided_by=credit_request.decided_by_id,
        rejection_reason=credit_request.rejection_reason,
        balance=balance,
    )
    return Event.objects.create(
        type=event_type,
        seller_id=credit_request.seller_id,
        created_at=created_at or timezone.now(),
        payload=payload,
    )


@transaction.atomic
def credit_request_create(*, seller: Seller, amount: int) -> CreditRequest:
    amount_validate(amount)
    balance = _seller_lock(seller.pk)
    credit_request = CreditRequest.objects.create(seller=seller, amount=amount)
    _credit_request_event_record(Event.Type.CREDIT_REQUEST_CREATED, credit_request, balance=balance)
    return credit_request


def _actor_staff_check(actor: AbstractBaseUser) -> None:
    """Only staff decide credit and reverse charges, whatever permissions the
    actor holds (a superuser too must be staff). The permission itself is
    checked where the request comes in (payments/permissions.py, the admin)."""
    if not actor.is_staff:
        raise StaffOnly()


def _actor_not_owner_check(actor: AbstractBaseUser, seller_user_id: int) -> None:
    """Nobody moves money for their own seller, whatever they were granted."""
    if actor.pk == seller_user_id:
        raise OwnSellerForbidden()


def _credit_request_lock_pending(
    credit_request_id: int, *, actor: AbstractBaseUser
) -> CreditRequest:
    """Lock the request for ``actor`` to decide: refused if it is the seller's own
    user, and ``AlreadyDecided`` unless it is pending."""
    credit_request = (
        CreditRequest.objects.select_for_update(of=("self",))
        .annotate(seller_user_id=F("seller__user_id"))
        .get(pk=credit_request_id)
    )
    _actor_not_owner_check(actor, credit_request.seller_user_id)
    if credit_request.status != CreditRequest.Status.PENDING:
        raise AlreadyDecided()
    return credit_request


def _credit_request_decide(
    credit_request: CreditRequest,
    *,
    status: str,
    decided_by: AbstractBaseUser,
    decided_at: datetime | None = None,
    rejection_reason: str | None = None,
) -> None:
    credit_request.status = status
    credit_request.decided_at = decided_at or timezone.now()
    credit_request.decided_by = decided_by
    credit_request.rejection_reason = rejection_reason
    credit_request.save(update_fields=["status", "decided_at", "decided_by", "rejection_reason"])


@transaction.atomic
def credit_request_approve(
    *, credit_request_id: int, decided_by: AbstractBaseUser
) -> CreditRequest:
    """Credit the seller once; a second decision raises ``AlreadyDecided``. Only
    staff decide (``StaffOnly``), and never for their own seller (``OwnSellerForbidden``)."""
    _actor_staff_check(decided_by)
    credit_request = _credit_request_lock_pending(credit_request_id, actor=decided_by)
    seller_id = credit_request.seller_id
    balance_after, moved_at = _seller_balance_credit(seller_id, credit_request.amount)
    _credit_request_decide(
        credit_request,
        status=CreditRequest.Status.APPROVED,
        decided_by=decided_by,
        decided_at=moved_at,
    )
    journal_row = Transaction.objects.create(
        seller_id=seller_id,
        kind=Transaction.Kind.CREDIT,
        amount=credit_request.amount,
        balance_after=balance_after,
        created_at=moved_at,
        credit_request=credit_request,
    )
    _credit_request_event_record(
        Event.Type.CREDIT_REQUEST_APPROVED,
        credit_request,
        balance=balance_after,
        created_at=moved_at,
    )
    transaction.on_commit(
        lambda: logger.info(
            "credit request %s approved: seller %s +%s",
            credit_request.pk,
            seller_id,
            credit_request.amount,
            extra={
                "seller": seller_id,
                "amount": credit_request.amount,
                "transaction_id": journal_row.pk,
                "kind": Transaction.Kind.CREDIT.value,
                "credit_request": credit_request.pk,
                "decision": CreditRequest.Status.APPROVED.value,
            },
        )
    )
    return credit_request


@transaction.atomic
def credit_request_reject(
    *, credit_request_id: int, decided_by: AbstractBaseUser, reason: str | None = None
) -> CreditRequest:
    """Reject without moving money, keeping the reason (if any) for the seller.
    Refused as an approval is (``StaffOnly``, ``OwnSellerForbidden``, ``AlreadyDecided``)."""
    _actor_staff_check(decided_by)
    _reason_validate(reason, max_length=REJECTION_REASON_MAX_LENGTH)
    credit_request = _credit_request_lock_pending(credit_request_id, actor=decided_by)
    balance = _seller_lock(credit_request.seller_id)
    _credit_request_decide(
        credit_request,
        status=CreditRequest.Status.REJECTED,
        decided_by=decided_by,
        rejection_reason=reason or None,
    )
    _credit_request_event_record(
        Event.Type.CREDIT_REQUEST_REJECTED, credit_request, balance=balance
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


def _charge_with_reference(seller_id: int, reference: str | None) -> int | None:
    if reference is None:
        return None
    return (
        PhoneCharge.objects.filter(seller_id=seller_id, reference=reference)
        .values_list("pk", flat=True)
        .first()
    )


def _charge_transaction() -> contextlib.AbstractContextManager:
    """The transaction a charge's movement runs in.

    Outside any transaction, the charge's one statement is left to autocommit: it
    is then its own transaction, and PostgreSQL commits it before answering, so
    the seller's row lock is released without waiting for this process to send
    COMMIT (a second round trip, taken only once the process gets a CPU again).
    Inside one (an Idempotency-Key's), a savepoint keeps a refused reference
    from aborting it.
    """
    if not connection.in_atomic_block:
        return contextlib.nullcontext()
    return transaction.atomic()


def phone_charge_create(
    *, seller_id: int, phone_number: str, amount: int, reference: str | None = None
) -> PhoneCharge:
    """Debit the seller and credit the phone, or raise ``InsufficientBalance``, or
    ``DuplicateReference`` naming the seller's charge that already has ``reference``."""
    amount_validate(amount)
    phone_number = phone_number_normalize(phone_number)
    existing = _charge_with_reference(seller_id, reference)
    if existing is not None:
        raise DuplicateReference(charge_id=existing)
    try:
        with _charge_transaction():
            charge = _charge_move(
                seller_id=seller_id, phone_number=phone_number, amount=amount, reference=reference
            )
            if charge is None:
                Seller.objects.get(pk=seller_id)  # an unknown seller is DoesNotExist, not a refusal
                raise InsufficientBalance()
    except IntegrityError:
        # Another charge with this reference committed after our look-up.
        existing = _charge_with_reference(seller_id, reference)
        if existing is None:
            raise
        raise DuplicateReference(charge_id=existing) from None
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


def _reason_validate(reason: str | None, *, max_length: int) -> None:
    """A decision's or reversal's reason, whoever sends it (the admin's pages,
    commands; the API's fields check the same first): no NUL character, which
    PostgreSQL cannot store (refused as DRF's fields refuse it), and at most
    ``max_length`` characters."""
    if not reason:
        return
    errors = []
    try:
        ProhibitNullCharactersValidator()(reason)
    except ValidationError as error:
        errors.append(error)
    if len(reason) > max_length:
        errors.append(
            ValidationError(f"A reason has at most {max_length} characters.", code="max_length")
        )
    if errors:
        raise ValidationError({"reason": errors})


@transaction.atomic
def phone_charge_reverse(
    *, charge_id: int, reversed_by: AbstractBaseUser, reason: str | None = None
) -> PhoneChargeReversal:
    """Give a charge's amount back from the phone to the seller as a new journal row.

    Raises ``AlreadyReversed`` for a charge reversed before, and
    ``InsufficientPhoneBalance`` (nothing changed) when the phone no longer
    holds the amount. The seller's row lock, taken first as for a charge,
    serialises two reversals of one charge: the second finds the first. Only
    staff reverse (``StaffOnly``), and never their own seller's charges
    (``OwnSellerForbidden``).
    """
    _actor_staff_check(reversed_by)
    _reason_validate(reason, max_length=REVERSAL_REASON_MAX_LENGTH)
    charge = PhoneCharge.objects.annotate(seller_user_id=F("seller__user_id")).get(pk=charge_id)
    _actor_not_owner_check(reversed_by, charge.seller_user_id)
    balance_after, moved_at = _seller_balance_credit(charge.seller_id, charge.amount)
    if PhoneChargeReversal.objects.filter(charge_id=charge.pk).exists():
        raise AlreadyReversed()
    if not _phone_balance_take(charge.phone_account_id, charge.amount):
        raise InsufficientPhoneBalance()
    reversal = PhoneChargeReversal.objects.create(
        charge=charge, reason=reason or None, reversed_by=reversed_by, created_at=moved_at
    )
    reversal.transaction = Transaction.objects.create(
        seller_id=charge.seller_id,
        kind=Transaction.Kind.REVERSAL,
        amount=charge.amount,
        balance_after=balance_after,
        created_at=moved_at,
        reversal=reversal,
    )
    Event.objects.create(
        type=Event.Type.PHONE_CHARGE_REVERSED,
        seller_id=charge.seller_id,
        created_at=moved_at,
        payload=event_payload(
            Event.Type.PHONE_CHARGE_REVERSED,
            id=charge.pk,
            seller=charge.seller_id,
            phone_number=charge.phone_account_id,
            amount=charge.amount,
            created_at=charge.created_at,
            reference=charge.reference,
            transaction_id=charge.transaction.pk,
            balance=charge.transaction.balance_after,
            reversed=True,
            reversed_at=reversal.created_at,
            reversal={
                "transaction_id": reversal.transaction.pk,
                "reason": reversal.reason,
                "reversed_at": reversal.created_at,
                "reversed_by": reversal.reversed_by_id,
                "balance_after": reversal.transaction.balance_after,
            },
        ),
    )
    transaction.on_commit(
        lambda: logger.info(
            "phone charge %s reversed: seller %s +%s",
            charge.pk,
            charge.seller_id,
            charge.amount,
            extra={
                "seller": charge.seller_id,
                "amount": charge.amount,
                "transaction_id": reversal.transaction.pk,
                "kind": Transaction.Kind.REVERSAL.value,
                "phone_charge": charge.pk,
            },
        )
    )
    return reversal
