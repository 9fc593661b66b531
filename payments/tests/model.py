"""A pure-Python model of the ledger, to hold the real one to (no Django here).

Every operation returns the answer the API should give (status and error
code) and changes the model's state as the service should. Sellers, credit
requests and charges are named by the model's own handles (0, 1, ...): the
state machines map them to the database's ids.
"""

from dataclasses import dataclass, field

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
CREDIT, CHARGE, REVERSAL = "credit", "charge", "reversal"


@dataclass(frozen=True)
class Answer:
    status: int
    code: str | None = None
    handle: int | None = None  # what a 2xx created (credit request, charge)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


OK = Answer(200)
INVALID = Answer(400, "validation_error")


@dataclass
class SellerState:
    balance: int = 0
    # (kind, amount, balance_after), oldest first
    journal: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass
class CreditRequestState:
    seller: int
    amount: int
    status: str = PENDING


@dataclass
class ChargeState:
    seller: int
    phone: str
    amount: int
    reference: str | None
    reversed: bool = False


@dataclass
class LedgerModel:
    max_amount: int  # settings.PAYLEDGER_MAX_AMOUNT
    sellers: dict[int, SellerState] = field(default_factory=dict)
    phones: dict[str, int] = field(default_factory=dict)
    credit_requests: dict[int, CreditRequestState] = field(default_factory=dict)
    charges: dict[int, ChargeState] = field(default_factory=dict)
    # (user, key) -> (request fingerprint, first answer)
    idempotency_keys: dict[tuple[object, str], tuple[object, Answer]] = field(default_factory=dict)

    def amount_valid(self, amount: object) -> bool:
        return (
            isinstance(amount, int)
            and not isinstance(amount, bool)
            and 0 < amount <= self.max_amount
        )

    def _move(self, seller: int, kind: str, amount: int) -> None:
        state = self.sellers[seller]
        state.balance += -amount if kind == CHARGE else amount
        state.journal.append((kind, amount, state.balance))

    def register(self) -> Answer:
        handle = len(self.sellers)
        self.sellers[handle] = SellerState()
        return Answer(201, handle=handle)

    def ask_credit(self, seller: int, amount: object) -> Answer:
        if not self.amount_valid(amount):
            return INVALID
        handle = len(self.credit_requests)
        self.credit_requests[handle] = CreditRequestState(seller, amount)
        return Answer(201, handle=handle)

    def _decide(self, credit_request: int, status: str) -> Answer:
        state = self.credit_requests[credit_request]
        if state.status != PENDING:
            return Answer(409, "already_decided")
        state.status = status
        if status == APPROVED:
            self._move(state.seller, CREDIT, state.amount)
        return OK

    def approve(self, credit_request: int) -> Answer:
        return self._decide(credit_request, APPROVED)

    def reject(self, credit_request: int) -> Answer:
        return self._decide(credit_request, REJECTED)

    def charge(
        self, seller: int, phone: str | None, amount: object, reference: str | None = None
    ) -> Answer:
        """``phone`` is the E.164 number, or None for one that is not valid."""
        if phone is None or not self.amount_valid(amount):
            return INVALID
        if reference is not None and any(
            c.seller == seller and c.reference == reference for c in self.charges.values()
        ):
            return Answer(409, "duplicate_reference")
        if self.sellers[seller].balance < amount:
            return Answer(409, "insufficient_balance")
        self._move(seller, CHARGE, amount)
        self.phones[phone] = self.phones.get(phone, 0) + amount
        handle = len(self.charges)
        self.charges[handle] = ChargeState(seller, phone, amount, reference)
        return Answer(201, handle=handle)

    def reverse(self, charge: int) -> Answer:
        state = self.charges[charge]
        if state.reversed:
            return Answer(409, "already_reversed")
        if self.phones[state.phone] < state.amount:
            return Answer(409, "insufficient_phone_balance")
        state.reversed = True
        self.phones[state.phone] -= state.amount
        self._move(state.seller, REVERSAL, state.amount)
        return Answer(201, handle=charge)

    def idempotent(self, user: object, key: str, fingerprint: object, run) -> tuple[Answer, bool]:
        """Run ``run()`` once per (user, key): return its answer and False, or the
        stored answer and True for a replay; a different request with a used key
        is refused. Invalid input is not stored: nothing ran."""
        stored = self.idempotency_keys.get((user, key))
        if stored is not None:
            if stored[0] != fingerprint:
                return Answer(422, "idempotency_key_reused"), False
            return stored[1], True
        answer = run()
        if answer.status != 400:
            self.idempotency_keys[(user, key)] = (fingerprint, answer)
        return answer, False

    def statement_totals(self, seller: int) -> dict[str, dict[str, int]]:
        totals = {kind: {"amount": 0, "count": 0} for kind in (CREDIT, CHARGE, REVERSAL)}
        for kind, amount, _ in self.sellers[seller].journal:
            totals[kind]["amount"] += amount
            totals[kind]["count"] += 1
        return totals

    def approved_credit(self) -> int:
        return sum(c.amount for c in self.credit_requests.values() if c.status == APPROVED)

    def money_conserved(self) -> bool:
        held = sum(s.balance for s in self.sellers.values()) + sum(self.phones.values())
        return held == self.approved_credit()
