from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, Lag, Now
from django.utils import timezone

from payledger_project.permissions import staff_may
from payments.models import CreditRequest, Event, PhoneAccount, PhoneCharge, Transaction
from payments.permissions import (
    APPROVE_CREDIT,
    REVERSE_CHARGE,
    VIEW_CHARGES,
    VIEW_CREDIT_REQUESTS,
    VIEW_EVENTS,
    VIEW_JOURNAL,
)
from sellers.models import Seller


def _seller_id_of(user: AbstractBaseUser) -> int | None | Subquery:
    """The caller's seller id, as a value when the seller came with the user, else
    as a scalar subquery.

    An API key loads the user and its seller in one query (sellers/authentication.py):
    then the id itself goes into the query, and PostgreSQL plans for that seller's own
    share of the rows, from its statistics. Behind a parameter it plans for an average
    seller, and for the busiest one gathers and sorts its whole journal range where
    walking the index in order reads one page (payments/tests/test_plans.py).
    Otherwise ``seller_id = (subquery)`` rather than a join through the seller still
    lets it walk the per-seller index.
    """
    cached = type(user).seller.related  # the user's seller, as loaded with the user
    if cached.is_cached(user):
        seller = cached.get_cached_value(user)
        return None if seller is None else seller.pk
    return Subquery(Seller.objects.filter(user=user).order_by().values("pk")[:1])


def credit_request_list(*, user: AbstractBaseUser) -> QuerySet[CreditRequest]:
    """Every request for staff who may view or decide them; the caller's own
    seller's requests for anyone else (none without a seller)."""
    if not user.is_authenticated:
        return CreditRequest.objects.none()
    if staff_may(user, VIEW_CREDIT_REQUESTS) or staff_may(user, APPROVE_CREDIT):
        return CreditRequest.objects.all()
    return CreditRequest.objects.filter(seller_id=_seller_id_of(user))


def phone_charge_list(*, user: AbstractBaseUser) -> QuerySet[PhoneCharge]:
    """Every charge for staff who may view or reverse charges; the caller's own
    seller's charges for anyone else. Each with its journal row and reversal."""
    charges = PhoneCharge.objects.select_related(
        "transaction", "reversal", "reversal__transaction"
    ).order_by("-id")
    if not user.is_authenticated:
        return charges.none()
    if staff_may(user, VIEW_CHARGES) or staff_may(user, REVERSE_CHARGE):
        return charges
    return charges.filter(seller_id=_seller_id_of(user))


def event_list(*, user: AbstractBaseUser) -> QuerySet[Event]:
    """The caller's seller's events (everyone's, for staff who may view events),
    oldest first."""
    if not user.is_authenticated:
        return Event.objects.none()
    if staff_may(user, VIEW_EVENTS):
        return Event.objects.all()
    return Event.objects.filter(seller_id=_seller_id_of(user))


def credit_requests_with_seller_activity(
    credit_requests: QuerySet[CreditRequest],
) -> QuerySet[CreditRequest]:
    """Each request with its seller's number of charges in the last 30 days, which an
    approver weighs with the seller's balance."""
    recent = PhoneCharge.objects.filter(
        seller=OuterRef("seller_id"), created_at__gte=timezone.now() - timedelta(days=30)
    )
    return credit_requests.annotate(charges_last_30_days=_total(recent, "seller", Value(1)))


def sellers_with_totals(sellers: QuerySet[Seller]) -> QuerySet[Seller]:
    """Each seller with everything ever credited to it, charged by it and given
    back to it by reversals."""
    journal = Transaction.objects.filter(seller=OuterRef("pk"))
    return sellers.annotate(
        credited=_total(journal.filter(kind=Transaction.Kind.CREDIT), "seller", F("amount")),
        charged=_total(journal.filter(kind=Transaction.Kind.CHARGE), "seller", F("amount")),
        reversed=_total(journal.filter(kind=Transaction.Kind.REVERSAL), "seller", F("amount")),
    )


def seller_recent_journal(*, seller_id: int, rows: int = 10) -> list[Transaction]:
    """A seller's newest journal rows, newest first (one index walk)."""
    return list(
        Transaction.objects.filter(seller_id=seller_id).order_by("-created_at", "-id")[:rows]
    )


def transaction_list(*, user: AbstractBaseUser) -> QuerySet[Transaction]:
    """The caller's journal (everyone's, for staff who may view the journal),
    newest first."""
    transactions = Transaction.objects.select_related("phone_charge").order_by("-created_at", "-id")
    if not user.is_authenticated:
        return transactions.none()
    if staff_may(user, VIEW_JOURNAL):
        return transactions
    return transactions.filter(seller_id=_seller_id_of(user))


def _signed_amount() -> Case:
    """What a journal row did to the seller's balance: credits and reversals add."""
    return Case(
        When(kind=Transaction.Kind.CHARGE, then=-F("amount")),
        default=F("amount"),
        output_field=BigIntegerField(),
    )


def _total(queryset: QuerySet, group_by: str, expression) -> Coalesce:
    """A correlated subquery summing ``expression`` per outer row (0 when empty)."""
    summed = queryset.values(group_by).annotate(total=Sum(expression)).values("total")
    return Coalesce(Subquery(summed), 0, output_field=BigIntegerField())


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """Run the enclosed reads against one moment of the database.

    One read-only REPEATABLE READ transaction, so a movement that commits
    between two queries is seen by all of them or by none. Inside a caller's
    transaction, that transaction's view is used as it is.
    """
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


# Sequences hand out journal ids in time order, but rows commit in any order: a
# movement's transaction lasts seconds (requests run under a 15 s statement timeout),
# so a row older than twice a generous bound on one (5 minutes) can have no row
# below its id still uncommitted.
SETTLED_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class LedgerCheck:
    problems: list[str]
    sellers: int
    transactions: int
    # Where the next check from a checkpoint may start: the newest journal row the
    # check read that is older than SETTLED_AFTER (0 if none). A newer row's
    # transaction may have drawn its id before a row still uncommitted drew a lower
    # one, so the rows after it are read again next time.
    settled_id: int = 0


def ledger_check(*, seller_id: int | None = None, after_id: int | None = None) -> LedgerCheck:
    """Check the books; list one line per broken invariant, naming its rows.

    1. each seller's balance equals its credits minus its charges plus its
       reversals in the journal;
    2. each phone's balance equals the charges to it minus their reversals;
    3. total approved credit equals all seller balances plus all phone balances;
    4. each seller's journal, in order, is an unbroken running-balance chain
       ending at the seller's current balance.

    With ``seller_id``, only that seller's invariants (1 and 4) are checked. With
    ``after_id`` (a checkpoint: every row up to it was checked before), only the rows
    after it: each one's link to the row before it in its seller's journal, the end
    of each chain they extend, and invariant 3; reading them costs what they are, not
    the whole journal.
    """
    with _one_snapshot():
        newest_id = Transaction.objects.aggregate(newest=Coalesce(Max("id"), 0))["newest"]
        settled_id = max(
            after_id or 0,
            Transaction.objects.filter(created_at__lt=Now() - SETTLED_AFTER).aggregate(
                settled=Coalesce(Max("id"), 0)
            )["settled"],
        )
        if after_id is not None:
            return _ledger_check_after(after_id, newest_id, settled_id)
        sellers = Seller.objects.all()
        transactions = Transaction.objects.all()
        if seller_id is not None:
            sellers = sellers.filter(pk=seller_id)
            transactions = transactions.filter(seller_id=seller_id)
        problems = _seller_problems(sellers, transactions)
        if seller_id is None:
            problems += _phone_and_books_problems()
        return LedgerCheck(problems, sellers.count(), transactions.count(), settled_id)


def _ledger_check_after(after_id: int, newest_id: int, settled_id: int) -> LedgerCheck:
    new_rows = Transaction.objects.filter(id__gt=after_id, id__lte=newest_id)
    before_checkpoint = (
        Transaction.objects.filter(seller_id=OuterRef("seller_id"), id__lte=after_id)
        .order_by("-id")
        .values("balance_after")[:1]
    )
    zero = Value(0, output_field=BigIntegerField())
    previous = Coalesce(
        Window(Lag("balance_after"), partition_by=[F("seller_id")], order_by="id"),
        Subquery(before_checkpoint),
        zero,
    )
    broken_links = (
        new_rows.annotate(expected=previous + _signed_amount())
        .filter(~Q(balance_after=F("expected")))
        .order_by("seller_id", "id")
    )
    problems = [
        f"transaction {row.pk} (seller {row.seller_id}): balance_after {row.balance_after}"
        f" != previous balance plus its amount {row.expected}"
        for row in broken_links
    ]
    sellers = Seller.objects.filter(pk__in=new_rows.values("seller_id"))
    latest_balance = Subquery(
        Transaction.objects.filter(seller=OuterRef("pk"), id__lte=newest_id)
        .order_by("-id")
        .values("balance_after")[:1]
    )
    chain_ends = sellers.annotate(chain_end=latest_balance).exclude(balance=F("chain_end"))
    problems += [
        f"seller {seller.pk}: balance {seller.balance} != last balance_after {seller.chain_end}"
        for seller in chain_ends
    ]
    problems += _books_problems()
    return LedgerCheck(problems, sellers.count(), new_rows.count(), settled_id)


def ledger_problems() -> list[str]:
    """Every broken invariant of the whole ledger (see ``ledger_check``)."""
    return ledger_check().problems


def _seller_problems(sellers: QuerySet[Seller], transactions: QuerySet[Transaction]) -> list[str]:
    journal_totals = sellers.annotate(
        journal_total=_total(
            Transaction.objects.filter(seller=OuterRef("pk")), "seller", _signed_amount()
        )
    ).exclude(balance=F("journal_total"))
    problems = [
        f"seller {seller.pk}: balance {seller.balance} != journal total {seller.journal_total}"
        for seller in journal_totals
    ]

    broken_links = (
        transactions.annotate(
            running=Window(Sum(_signed_amount()), partition_by=[F("seller_id")], order_by="id")
        )
        .filter(~Q(balance_after=F("running")))
        .order_by("seller_id", "id")
    )
    problems += [
        f"transaction {row.pk} (seller {row.seller_id}): balance_after {row.balance_after}"
        f" != running balance {row.running}"
        for row in broken_links
    ]

    latest_balance = Subquery(
        Transaction.objects.filter(seller=OuterRef("pk"))
        .order_by("-id")
        .values("balance_after")[:1]
    )
    zero = Value(0, output_field=BigIntegerField())
    chain_ends = sellers.annotate(chain_end=Coalesce(latest_balance, zero)).exclude(
        balance=F("chain_end")
    )
    problems += [
        f"seller {seller.pk}: balance {seller.balance} != last balance_after {seller.chain_end}"
        for seller in chain_ends
    ]
    return problems


def _phone_and_books_problems() -> list[str]:
    charges = PhoneCharge.objects.filter(phone_account=OuterRef("phone_number"))
    phone_totals = (
        PhoneAccount.objects.annotate(
            charged=_total(charges, "phone_account", F("amount")),
            reversed=_total(charges.filter(reversal__isnull=False), "phone_account", F("amount")),
        )
        .annotate(held=F("charged") - F("reversed"))
        .exclude(balance=F("held"))
    )
    problems = [
        f"phone {phone.phone_number}: balance {phone.balance} != charges {phone.charged}"
        f" - reversals {phone.reversed}"
        for phone in phone_totals
    ]
    return problems + _books_problems()


def _books_problems() -> list[str]:
    """Invariant 3: every unit of approved credit is held by a seller or a phone."""
    zero = Value(0, output_field=BigIntegerField())
    approved = CreditRequest.objects.filter(status=CreditRequest.Status.APPROVED).aggregate(
        total=Coalesce(Sum("amount"), zero)
    )["total"]
    held_by_sellers = Seller.objects.aggregate(total=Coalesce(Sum("balance"), zero))["total"]
    held_by_phones = PhoneAccount.objects.aggregate(total=Coalesce(Sum("balance"), zero))["total"]
    if approved != held_by_sellers + held_by_phones:
        return [
            f"books: approved credit {approved} != seller balances {held_by_sellers}"
            f" + phone balances {held_by_phones}"
        ]
    return []


# CSV header -> journal field
TRANSACTION_EXPORT_COLUMNS = {
    "id": "id",
    "created_at": "created_at",
    "seller": "seller_id",
    "kind": "kind",
    "amount": "amount",
    "balance_after": "balance_after",
    "credit_request": "credit_request_id",
    "phone_number": "phone_charge__phone_account_id",
    "reference": "phone_charge__reference",
    "reversed_charge": "reversal__charge_id",
    # Added after the first columns, so programs reading by position still work.
    "phone_charge": "phone_charge_id",
}
OPENING_BALANCE = "opening_balance"
EXPORT_CHUNK_ROWS = 2_000


def _in_pk_chunks(rows: QuerySet) -> Iterator[tuple]:
    """``rows`` (a values_list led by the primary key) in primary-key order, read
    EXPORT_CHUNK_ROWS at a time: each chunk is its own short query, ``WHERE pk > last
    ORDER BY pk LIMIT n``, resuming on the index where the last one stopped.

    Memory stays bounded without a server-side cursor, which PgBouncer in transaction
    mode cannot keep (there ``iterator()`` fetches the whole result at once), and no
    transaction stays open while a slow client reads.
    """
    rows = rows.order_by("pk")
    chunk = list(rows[:EXPORT_CHUNK_ROWS])
    yield from chunk
    while len(chunk) == EXPORT_CHUNK_ROWS:
        chunk = list(rows.filter(pk__gt=chunk[-1][0])[:EXPORT_CHUNK_ROWS])
        yield from chunk


def transaction_export_rows(transactions: QuerySet[Transaction]) -> Iterator[tuple]:
    """Journal rows oldest first, in chunks (``_in_pk_chunks``).

    The chunks are read at different moments, so the export stops at the newest
    journal id its first query could see (the fence). A row still being written then
    may be missing, but never a row before one that is listed: a seller's rows are
    written one at a time under its lock, so its next row draws an id past the fence.
    Each seller's rows in the export are thus an unbroken start of its journal, as
    they were when the export was one query.
    """
    columns = TRANSACTION_EXPORT_COLUMNS.values()
    newest_id = Subquery(Transaction.objects.order_by("-id").values("id")[:1])
    first = list(
        transactions.annotate(fence=newest_id)
        .order_by("id")
        .values_list(*columns, "fence")[:EXPORT_CHUNK_ROWS]
    )
    yield from (row[:-1] for row in first)
    if len(first) == EXPORT_CHUNK_ROWS:
        fence = first[0][-1]
        rest = transactions.filter(id__gt=first[-1][0], id__lte=fence)
        yield from _in_pk_chunks(rest.values_list(*columns))


def _balance_before(instant: datetime) -> Coalesce:
    """The seller's balance just before ``instant``: the ``balance_after`` of its last
    journal row before it (0 if none). One step down the (seller, -created_at, -id)
    index, however long the journal."""
    last_row = (
        Transaction.objects.filter(seller=OuterRef("pk"), created_at__lt=instant)
        .order_by("-created_at", "-id")
        .values("balance_after")[:1]
    )
    return Coalesce(Subquery(last_row), 0, output_field=BigIntegerField())


def export_sellers(*, user: AbstractBaseUser, seller_id: int | None) -> QuerySet[Seller]:
    """Whose journals an export covers: every seller (or the one named) for staff who
    may view the journal, the caller's own seller for anyone else."""
    sellers = (
        Seller.objects.all() if staff_may(user, VIEW_JOURNAL) else Seller.objects.filter(user=user)
    )
    return sellers if seller_id is None else sellers.filter(pk=seller_id)


def transaction_export_opening_rows(
    *, sellers: QuerySet[Seller], instant: datetime
) -> Iterator[tuple]:
    """Per seller, its balance at ``instant`` as a row of kind "opening_balance" shaped
    like the export's journal rows, so a ranged export starts from where it stood."""
    openings = (
        sellers.order_by("pk")
        .annotate(opening=_balance_before(instant))
        .values_list("pk", "opening")
        .iterator(chunk_size=2_000)
    )
    for seller_id, opening in openings:
        row = dict.fromkeys(TRANSACTION_EXPORT_COLUMNS)
        row.update(
            created_at=instant, seller=seller_id, kind=OPENING_BALANCE, balance_after=opening
        )
        yield tuple(row.values())


def ledger_report(*, since: datetime, until: datetime) -> QuerySet[Seller]:
    """Per seller, for [since, until): opening and closing balance from the journal's
    chain, and the credits, charges, reversals and number of charges in between."""
    in_range = Transaction.objects.filter(
        seller=OuterRef("pk"), created_at__gte=since, created_at__lt=until
    )
    return Seller.objects.order_by("pk").annotate(
        opening=_balance_before(since),
        credited=_total(in_range.filter(kind=Transaction.Kind.CREDIT), "seller", F("amount")),
        charged=_total(in_range.filter(kind=Transaction.Kind.CHARGE), "seller", F("amount")),
        reversed=_total(in_range.filter(kind=Transaction.Kind.REVERSAL), "seller", F("amount")),
        charges=_total(in_range.filter(kind=Transaction.Kind.CHARGE), "seller", Value(1)),
        closing=_balance_before(until),
    )


def seller_balance_before(*, seller_id: int, instant: datetime) -> int:
    """The seller's balance after every movement before ``instant`` (see
    ``_balance_before``); a seller with no such movement had 0."""
    return (
        Seller.objects.filter(pk=seller_id)
        .annotate(balance_then=_balance_before(instant))
        .values_list("balance_then", flat=True)
        .get()
    )


def statement_seller_id(*, user: AbstractBaseUser, asked: int | None) -> int | None:
    """Whose statement the caller reads: staff who may view the journal name any
    seller; everyone else reads its own seller's (naming another finds nothing)."""
    if asked is not None and staff_may(user, VIEW_JOURNAL):
        sellers = Seller.objects.filter(pk=asked)
    else:
        sellers = Seller.objects.filter(user=user)
        if asked is not None:
            sellers = sellers.filter(pk=asked)
    return sellers.values_list("pk", flat=True).first()


@dataclass(frozen=True)
class Statement:
    seller_id: int
    start: datetime
    end: datetime
    opening_balance: int
    closing_balance: int
    # kind -> {"amount": total moved, "count": rows}
    totals: dict[str, dict[str, int]]


def seller_statement(*, seller_id: int, start: datetime, end: datetime) -> Statement:
    """Opening balance at ``start``, closing balance at ``end`` (both from the
    balance_after chain) and the totals per kind in [start, end), from one snapshot."""
    totals = {kind: {"amount": 0, "count": 0} for kind in Transaction.Kind.values}
    with _one_snapshot():
        in_range = (
            Transaction.objects.filter(
                seller_id=seller_id, created_at__gte=start, created_at__lt=end
            )
            .order_by()
            .values("kind")
            .annotate(amount=Sum("amount"), count=Count("id"))
        )
        for row in in_range:
            totals[row["kind"]] = {"amount": row["amount"], "count": row["count"]}
        return Statement(
            seller_id=seller_id,
            start=start,
            end=end,
            opening_balance=seller_balance_before(seller_id=seller_id, instant=start),
            closing_balance=seller_balance_before(seller_id=seller_id, instant=end),
            totals=totals,
        )
