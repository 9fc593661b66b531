"""Hypothesis state machines that drive the real ledger and hold it to the model.

``ServiceLedgerMachine`` calls payments/services.py; ``ApiLedgerMachine`` sends
the same operations through the HTTP API (DRF's test client), with
Idempotency-Key retries. After every step both compare the database with
``LedgerModel``: every balance, every journal row in order, every credit
request's state, every phone, and ``ledger_check``.

Each example runs inside a savepoint that its teardown rolls back, so the
machines run in a plain ``TestCase``.
"""

import os
from collections import Counter
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from rest_framework.test import APIClient

from payledger_project.exceptions import DomainError
from payledger_project.test_runner import caches_clear
from payments.models import (
    CreditRequest,
    Event,
    PhoneAccount,
    PhoneCharge,
    PhoneChargeReversal,
    Transaction,
)
from payments.selectors import ledger_check, seller_statement
from payments.services import (
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
    phone_charge_reverse,
)
from payments.tests.model import APPROVED, Answer, LedgerModel
from sellers.models import Seller
from sellers.services import seller_register
from testing.factories import PASSWORD, client_for, staff_make

# Examples per machine: few by default (the suite stays fast), more in CI on
# PostgreSQL and in `make verify-model`.
EXAMPLES = int(os.environ.get("PAYLEDGER_MODEL_EXAMPLES", "10"))
STEPS = int(os.environ.get("PAYLEDGER_MODEL_STEPS", "30"))
# PAYLEDGER_MODEL_SHRINK=0 reports the first failing example as found, unshrunk:
# `make verify-checks` wants to know that a planted bug is caught, not its
# smallest example, and shrinking a stateful run takes minutes.
SHRINK = os.environ.get("PAYLEDGER_MODEL_SHRINK", "1") != "0"
MACHINE_SETTINGS = hypothesis_settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    phases=[phase for phase in Phase if SHRINK or phase is not Phase.shrink],
)

# Valid numbers as a client may write them (-> E.164) and ones the service refuses.
PHONES = {
    "+14155550123": "+14155550123",
    "4155550124": "+14155550124",
    "(415) 555-0125": "+14155550125",
    "12345": None,
    "+1415555012": None,
}
VALID_PHONES = [raw for raw, e164 in PHONES.items() if e164]
REFERENCES = [None, "order-1", "order-2", "order-3"]
SMALL_AMOUNTS = st.integers(min_value=1, max_value=2_000)
INVALID_AMOUNTS = st.sampled_from([0, -1, settings.PAYLEDGER_MAX_AMOUNT + 1])
AMOUNTS = st.one_of(SMALL_AMOUNTS, INVALID_AMOUNTS, st.just(settings.PAYLEDGER_MAX_AMOUNT))
CHARGE_AMOUNTS = st.one_of(st.integers(min_value=1, max_value=300), AMOUNTS)
PICK = st.integers(min_value=0, max_value=1_000)
# Few sellers, so an example's steps pile up on each one's balance.
MAX_SELLERS = 3
# A new seller is usually given some approved credit, so charges find money.
STARTING_CREDIT = st.one_of(st.just(0), SMALL_AMOUNTS)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


def answer_of(call) -> Answer:
    """Run a service call and say what the API answers for its outcome."""
    try:
        call()
    except ValidationError:
        return Answer(400, "validation_error")
    except DomainError as error:
        return Answer(error.status_code, error.code)
    except Exception as error:  # noqa: BLE001 - a 500: the comparison reports it
        return Answer(500, type(error).__name__)
    return Answer(200)


def pick(items: list, index: int):
    return items[index % len(items)]


# The event each kind of journal row is told by, and how that event names the
# row and the balance after it.
MOVEMENT_EVENTS = {
    "credit": (Event.Type.CREDIT_REQUEST_APPROVED, lambda payload: payload["balance"]),
    "charge": (Event.Type.PHONE_CHARGE_CREATED, lambda payload: payload["balance"]),
    "reversal": (
        Event.Type.PHONE_CHARGE_REVERSED,
        lambda payload: payload["reversal"]["balance_after"],
    ),
}


def _event_row_key(event: Event) -> tuple:
    """The journal row an event tells of, as (kind, its cause's id or the row's id)."""
    payload = event.payload
    if event.type == Event.Type.CREDIT_REQUEST_APPROVED:
        return ("credit", payload["id"])
    if event.type == Event.Type.PHONE_CHARGE_CREATED:
        return ("charge", payload["transaction_id"])
    return ("reversal", payload["reversal"]["transaction_id"])


def movement_event_problems(seller_ids: list[int]) -> list[str]:
    """Every journal row of these sellers has exactly one event of its kind, written
    with it (same seller), whose payload names that row with its amount and the
    balance after it; and no movement event tells of a row that is not there."""
    events: dict[tuple, list[Event]] = {}
    movement_types = [event_type for event_type, _ in MOVEMENT_EVENTS.values()]
    for event in Event.objects.filter(seller_id__in=seller_ids, type__in=movement_types):
        events.setdefault(_event_row_key(event), []).append(event)
    problems = []
    rows = Transaction.objects.filter(seller_id__in=seller_ids).order_by("id")
    for row in rows:
        event_type, balance_of = MOVEMENT_EVENTS[row.kind]
        key = (row.kind, row.credit_request_id if row.kind == "credit" else row.pk)
        found = events.pop(key, [])
        if len(found) != 1:
            problems.append(
                f"movement event: journal row {row.pk} ({row.kind} {row.amount}) has"
                f" {len(found)} {event_type} events, not exactly one"
            )
            continue
        event = found[0]
        told = (event.seller_id, event.payload["amount"], balance_of(event.payload))
        if told != (row.seller_id, row.amount, row.balance_after):
            problems.append(
                f"movement event: {event_type} event {event.pk} tells (seller, amount,"
                f" balance) {told}, its journal row {row.pk} has"
                f" {(row.seller_id, row.amount, row.balance_after)}"
            )
    problems += [
        f"movement event: {len(found)} event(s) {[e.pk for e in found]} tell of {key},"
        " which is no journal row"
        for key, found in events.items()
    ]
    return problems


class LedgerMachine(RuleBasedStateMachine):
    """The database checks shared by both machines; ids map model handles to rows.

    ``totals`` adds up what every example of a machine did, for the summary."""

    totals: Counter

    def __init__(self):
        super().__init__()
        caches_clear()  # throttle counts of an earlier example
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        self.model = LedgerModel(max_amount=settings.PAYLEDGER_MAX_AMOUNT)
        self.seller_ids: list[int] = []
        self.credit_request_ids: list[int] = []
        self.charge_ids: list[int] = []
        self.staff = staff_make(reverser=True)

    def teardown(self):
        model = self.model
        self.totals.update(
            examples=1,
            sellers=len(model.sellers),
            credit_requests=len(model.credit_requests),
            approved=sum(c.status == APPROVED for c in model.credit_requests.values()),
            charges=len(model.charges),
            reversals=sum(c.reversed for c in model.charges.values()),
            idempotency_keys=len(model.idempotency_keys),
        )
        transaction.set_rollback(True)
        self._savepoint.__exit__(None, None, None)

    def created(self, answer: Answer, ids: list[int], new_id: int | None) -> None:
        """Record the row a 2xx created under the model's handle for it."""
        if answer.ok:
            assert new_id is not None
            assert answer.handle == len(ids)
            ids.append(new_id)

    def statement_expected(self, seller: int) -> dict:
        state = self.model.sellers[seller]
        return {
            "opening_balance": 0,
            "closing_balance": state.balance,
            "totals": self.model.statement_totals(seller),
        }

    @invariant()
    def database_matches_model(self):
        self.totals["checks against the model"] += 1
        for handle, seller_id in enumerate(self.seller_ids):
            state = self.model.sellers[handle]
            balance = Seller.objects.get(pk=seller_id).balance
            assert balance == state.balance, f"balance: seller {handle} {balance}, {state.balance}"
            journal = list(
                Transaction.objects.filter(seller_id=seller_id)
                .order_by("id")
                .values_list("kind", "amount", "balance_after")
            )
            assert journal == state.journal, f"journal: seller {handle} {journal}, {state.journal}"
        statuses = dict(CreditRequest.objects.values_list("id", "status"))
        expected_statuses = {
            self.credit_request_ids[handle]: request.status
            for handle, request in self.model.credit_requests.items()
        }
        assert statuses == expected_statuses, f"credit requests: {statuses}, {expected_statuses}"
        assert PhoneCharge.objects.count() == len(self.model.charges), "charges: how many"
        reversed_ids = set(PhoneChargeReversal.objects.values_list("charge_id", flat=True))
        expected_reversed = {
            self.charge_ids[handle]
            for handle, charge in self.model.charges.items()
            if charge.reversed
        }
        assert reversed_ids == expected_reversed, f"reversals: {reversed_ids}, {expected_reversed}"
        phones = dict(PhoneAccount.objects.values_list("phone_number", "balance"))
        assert phones == self.model.phones, f"phone balances: {phones}, {self.model.phones}"
        assert ledger_check().problems == [], f"ledger check: {ledger_check().problems}"
        assert self.model.money_conserved(), "money conserved"
        event_problems = movement_event_problems(self.seller_ids)
        assert event_problems == [], "; ".join(event_problems)


class ServiceLedgerMachine(LedgerMachine):
    """Random sequences of service calls, each held to the model."""

    totals = Counter()

    @precondition(lambda self: len(self.seller_ids) < MAX_SELLERS)
    @rule(credit=STARTING_CREDIT)
    def register(self, credit):
        seller = seller_register(
            username=f"model{len(self.seller_ids)}", password=PASSWORD, name="Model seller"
        )
        self.created(self.model.register(), self.seller_ids, seller.pk)
        if credit:
            self.fund(len(self.seller_ids) - 1, credit)

    @precondition(lambda self: self.seller_ids)
    @rule(index=PICK, amount=AMOUNTS)
    def ask_credit(self, index, amount):
        handle = index % len(self.seller_ids)
        seller = Seller.objects.get(pk=self.seller_ids[handle])
        created = []
        answer = answer_of(
            lambda: created.append(credit_request_create(seller=seller, amount=amount).pk)
        )
        expected = self.model.ask_credit(handle, amount)
        assert answer.status // 100 == expected.status // 100 and answer.code == (
            expected.code if not expected.ok else None
        ), (answer, expected)
        self.created(expected, self.credit_request_ids, created[0] if created else None)

    @precondition(lambda self: self.seller_ids)
    @rule(index=PICK, amount=SMALL_AMOUNTS)
    def fund(self, index, amount):
        """Ask for credit and have it approved: most charges then find money."""
        self.ask_credit(index, amount)
        self.approve(len(self.credit_request_ids) - 1)

    def decide(self, index: int, service, model_decision) -> None:
        handle = index % len(self.credit_request_ids)
        answer = answer_of(
            lambda: service(
                credit_request_id=self.credit_request_ids[handle], decided_by=self.staff
            )
        )
        assert answer == model_decision(handle)

    @precondition(lambda self: self.credit_request_ids)
    @rule(index=PICK)
    def approve(self, index):
        self.decide(index, credit_request_approve, self.model.approve)

    @precondition(lambda self: self.credit_request_ids)
    @rule(index=PICK)
    def reject(self, index):
        self.decide(index, credit_request_reject, self.model.reject)

    @precondition(lambda self: self.credit_request_ids)
    @rule(index=PICK)
    def approve_twice(self, index):
        self.approve(index)
        self.approve(index)

    @precondition(lambda self: self.seller_ids)
    @rule(
        index=PICK,
        charges=st.lists(
            st.tuples(st.sampled_from(sorted(PHONES)), CHARGE_AMOUNTS, st.sampled_from(REFERENCES)),
            min_size=1,
            max_size=4,
        ),
    )
    def charge(self, index, charges):
        for phone, amount, reference in charges:
            self.charge_one(index, phone, amount, reference)

    def charge_one(self, index, phone, amount, reference):
        handle = index % len(self.seller_ids)
        created = []
        answer = answer_of(
            lambda: created.append(
                phone_charge_create(
                    seller_id=self.seller_ids[handle],
                    phone_number=phone,
                    amount=amount,
                    reference=reference,
                ).pk
            )
        )
        expected = self.model.charge(handle, PHONES[phone], amount, reference)
        assert (answer.status // 100, answer.code) == (
            expected.status // 100,
            None if expected.ok else expected.code,
        ), f"charge: answered {answer}, the model {expected}"
        self.created(expected, self.charge_ids, created[0] if created else None)

    @precondition(lambda self: self.seller_ids)
    @rule(index=PICK)
    def charge_everything(self, index):
        """Spend the whole balance: the edge where a conditional debit matters."""
        handle = index % len(self.seller_ids)
        balance = self.model.sellers[handle].balance
        self.charge_one(handle, "+14155550123", balance, None)
        self.charge_one(handle, "+14155550123", 1, None)

    @precondition(lambda self: self.charge_ids)
    @rule(index=PICK)
    def reverse(self, index):
        handle = index % len(self.charge_ids)
        answer = answer_of(
            lambda: phone_charge_reverse(charge_id=self.charge_ids[handle], reversed_by=self.staff)
        )
        expected = self.model.reverse(handle)
        assert (answer.status // 100, answer.code) == (
            expected.status // 100,
            None if expected.ok else expected.code,
        ), f"reversal: answered {answer}, the model {expected}"

    @precondition(lambda self: self.seller_ids)
    @rule(index=PICK)
    def read_statement(self, index):
        handle = index % len(self.seller_ids)
        statement = seller_statement(seller_id=self.seller_ids[handle], start=EPOCH, end=FAR_FUTURE)
        read = {
            "opening_balance": statement.opening_balance,
            "closing_balance": statement.closing_balance,
            "totals": statement.totals,
        }
        assert read == self.statement_expected(handle), (read, self.statement_expected(handle))


class ApiLedgerMachine(LedgerMachine):
    """The same operations over HTTP: serializers, permissions, idempotency, error codes."""

    totals = Counter()

    def __init__(self):
        super().__init__()
        self.staff_client = client_for(self.staff)
        self.seller_clients: list[APIClient] = []
        # (who, key, path, body, first response body) of every keyed request that ran
        self.keyed: list[tuple[object, str, str, dict, dict | None]] = []
        self.keys_used = 0

    def send(self, who, client: APIClient, path: str, body: dict, keyed: bool, run) -> tuple:
        """POST ``body``; with ``keyed``, under a fresh Idempotency-Key the model
        tracks. Return the response and the model's answer for it."""
        if not keyed:
            response = client.post(path, body, format="json")
            return response, run()
        self.keys_used += 1
        key = f"key-{self.keys_used}"
        response = client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        expected, replayed = self.model.idempotent(who, key, (path, body), run)
        assert not replayed
        self.keyed.append((who, key, path, body, response.json()))
        return response, expected

    def client_of(self, who) -> APIClient:
        return self.staff_client if who == "staff" else self.seller_clients[who]

    @staticmethod
    def assert_answer(response, expected: Answer, what: str = "answer") -> None:
        """``what``: the property an unexpected answer breaks, to name it."""
        body = response.json()
        assert response.status_code == expected.status, (
            f"{what}: {response.status_code} {body}, the model {expected}"
        )
        if not expected.ok:
            assert body["code"] == expected.code, f"{what}: {body}, the model {expected}"

    @precondition(lambda self: len(self.seller_ids) < MAX_SELLERS)
    @rule(credit=STARTING_CREDIT)
    def register(self, credit):
        number = len(self.seller_ids)
        response = APIClient().post(
            "/api/sellers/",
            {"username": f"model{number}", "password": PASSWORD, "name": "Model seller"},
            format="json",
        )
        expected = self.model.register()
        self.assert_answer(response, expected)
        seller_id = response.json()["id"]
        self.created(expected, self.seller_ids, seller_id)
        self.seller_clients.append(client_for(Seller.objects.get(pk=seller_id).user))
        if credit:
            self.fund(number, credit, keyed=False)

    @precondition(lambda self: self.seller_ids)
    @rule(
        index=PICK,
        amount=st.one_of(AMOUNTS, st.sampled_from(["10", 1.5, True])),
        keyed=st.booleans(),
    )
    def ask_credit(self, index, amount, keyed):
        handle = index % len(self.seller_ids)
        response, expected = self.send(
            handle,
            self.seller_clients[handle],
            "/api/payments/credit-requests/",
            {"amount": amount},
            keyed,
            lambda: self.model.ask_credit(handle, amount),
        )
        self.assert_answer(response, expected)
        self.created(expected, self.credit_request_ids, response.json().get("id"))

    @precondition(lambda self: self.seller_ids)
    @rule(index=PICK, amount=SMALL_AMOUNTS, keyed=st.booleans())
    def fund(self, index, amount, keyed):
        """Ask for credit and have it approved: most charges then find money."""
        self.ask_credit(index, amount, keyed)
        self.approve(len(self.credit_request_ids) - 1)

    def decide(self, index: int, action: str, model_decision) -> None:
        handle = index % len(self.credit_request_ids)
        response = self.staff_client.post(
            f"/api/payments/credit-requests/{self.credit_request_ids[handle]}/{action}/",
            {},
            format="json",
        )
        expected = model_decision(handle)
        self.assert_answer(response, expected)
        if expected.ok:
            assert response.json()["status"] == self.model.credit_requests[handle].status

    @precondition(lambda self: self.credit_request_ids)
    @rule(index=PICK)
    def approve(self, index):
        self.decide(index, "approve", self.model.approve)

    @precondition(lambda self: self.credit_request_ids)
    @rule(index=PICK)
    def reject(self, index):
        self.decide(index, "reject", self.model.reject)

    @precondition(lambda self: self.credit_request_ids)
    @rule(index=PICK)
    def approve_twice(self, index):
        self.approve(index)
        self.approve(index)

    @precondition(lambda self: self.credit_request_ids and self.seller_ids)
    @rule(index=PICK)
    def seller_may_not_approve(self, index):
        handle = index % len(self.credit_request_ids)
        seller = self.model.credit_requests[handle].seller
        response = self.seller_clients[seller].post(
            f"/api/payments/credit-requests/{self.credit_request_ids[handle]}/approve/"
        )
        self.assert_answer(response, Answer(403, "permission_denied"))

    @precondition(lambda self: self.seller_ids)
    @rule(
        index=PICK,
        charges=st.lists(
            st.tuples(
                st.sampled_from(sorted(PHONES)),
                st.one_of(CHARGE_AMOUNTS, st.sampled_from(["10", 10.0, None])),
                st.sampled_from(REFERENCES),
                st.booleans(),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def charge(self, index, charges):
        for phone, amount, reference, keyed in charges:
            self.charge_one(index, phone, amount, reference, keyed)

    @precondition(lambda self: self.seller_ids)
    @rule(
        index=PICK,
        amounts=st.lists(st.integers(min_value=1, max_value=300), min_size=8, max_size=16),
        reversals=st.sets(st.integers(min_value=0, max_value=17), min_size=4, max_size=10),
        keyed=st.booleans(),
    )
    def charges_then_reversals(self, index, amounts, reversals, keyed):
        """A seller's busy spell: credit enough for a run of affordable charges, the
        charges, then staff reversing some of them. Money moves on most steps, so
        every run makes hundreds of charges and reversals (the summary counts them)."""
        handle = index % len(self.seller_ids)
        self.fund(handle, sum(amounts), keyed)
        for number, amount in enumerate(amounts):
            self.charge_one(handle, pick(VALID_PHONES, number), amount, None, keyed)
        for back in sorted(reversals):
            # mostly this spell's charges, newest first; past its length, older ones
            self.reverse(len(self.charge_ids) - 1 - back, keyed)

    def charge_one(self, index, phone, amount, reference, keyed):
        handle = index % len(self.seller_ids)
        body = {"phone_number": phone, "amount": amount}
        if reference is not None:
            body["reference"] = reference
        response, expected = self.send(
            handle,
            self.seller_clients[handle],
            "/api/payments/phone-charge/",
            body,
            keyed,
            lambda: self.model.charge(handle, PHONES[phone], amount, reference),
        )
        self.assert_answer(response, expected)
        answer = response.json()
        if expected.ok:
            assert answer["balance"] == self.model.sellers[handle].balance
            assert answer["phone_number"] == PHONES[phone]
        elif expected.code == "duplicate_reference":
            assert answer["charge_id"] in self.charge_ids
        self.created(expected, self.charge_ids, answer.get("id"))

    @precondition(lambda self: self.charge_ids)
    @rule(index=PICK, keyed=st.booleans())
    def reverse(self, index, keyed):
        handle = index % len(self.charge_ids)
        response, expected = self.send(
            "staff",
            self.staff_client,
            f"/api/payments/phone-charges/{self.charge_ids[handle]}/reverse/",
            {},
            keyed,
            lambda: self.model.reverse(handle),
        )
        self.assert_answer(response, expected)
        if expected.ok:
            answer = response.json()
            seller = self.model.charges[handle].seller
            assert answer["reversed"] is True
            assert answer["reversal"]["balance_after"] == self.model.sellers[seller].balance

    @precondition(lambda self: self.charge_ids)
    @rule(index=PICK)
    def seller_may_not_reverse(self, index):
        handle = index % len(self.charge_ids)
        seller = self.model.charges[handle].seller
        response = self.seller_clients[seller].post(
            f"/api/payments/phone-charges/{self.charge_ids[handle]}/reverse/"
        )
        self.assert_answer(response, Answer(403, "permission_denied"))

    @precondition(lambda self: self.keyed)
    @rule(index=PICK)
    def retry_same_key_same_body(self, index):
        who, key, path, body, first = pick(self.keyed, index)
        response = self.client_of(who).post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        # A key whose request was invalid stored nothing: the same invalid body runs again.
        expected, replayed = self.model.idempotent(
            who, key, (path, body), lambda: Answer(400, "validation_error")
        )
        what = f"idempotency: a retry under key {key}"
        self.assert_answer(response, expected, what)
        if replayed:
            assert response.json() == first, f"{what} answered {response.json()}, first {first}"
            assert response["Idempotent-Replayed"] == "true", f"{what} is not marked replayed"

    @precondition(lambda self: self.model.idempotency_keys)
    @rule(index=PICK)
    def retry_same_key_other_body(self, index):
        stored = [entry for entry in self.keyed if entry[:2] in self.model.idempotency_keys]
        who, key, path, body, _ = pick(stored, index)
        other = {**body, "amount": 8 if body.get("amount") == 7 else 7}
        response = self.client_of(who).post(path, other, format="json", HTTP_IDEMPOTENCY_KEY=key)
        expected, _ = self.model.idempotent(who, key, (path, other), lambda: None)
        self.assert_answer(response, expected, f"idempotency: another body under key {key}")

    @precondition(lambda self: self.seller_ids)
    @rule(index=PICK, as_staff=st.booleans())
    def read_statement(self, index, as_staff):
        handle = index % len(self.seller_ids)
        query = {"from": EPOCH.isoformat(), "to": FAR_FUTURE.isoformat()}
        if as_staff:
            client = self.staff_client
            query["seller"] = self.seller_ids[handle]
        else:
            client = self.seller_clients[handle]
        response = client.get("/api/payments/statement/", query)
        assert response.status_code == 200, response.json()
        statement = response.json()
        expected = self.statement_expected(handle)
        assert {key: statement[key] for key in expected} == expected, (statement, expected)
