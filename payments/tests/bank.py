"""A Jepsen-style bank run against a live PayLedger, and the checker of its history.

Client threads send charges, credit requests, approvals and reversals over
real HTTP, each under its own Idempotency-Key, retrying the same request on
timeouts, 5xx and dropped connections (a bounded number of times); a reader
keeps reading balances and statements; a nemesis SIGKILLs gunicorn workers,
terminates the app's database connections and holds a seller's row lock past
the lock timeout, and a proxy in front of each server (testing/answer_cutting_proxy.py)
drops some answers after the server committed them. Every attempt and answer
is recorded; ``BankRun.check`` then holds the database to that history, and
counts what the clients saw: an operation left with a 5xx or no answer is a
violation unless the database shows it applied (the answer alone was lost).
"""

import itertools
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests
from django.db import connection, connections

from payments.models import CreditRequest, PhoneCharge, PhoneChargeReversal, Transaction
from payments.selectors import ledger_check
from testing.answer_cutting_proxy import AnswerCuttingProxy

PHONES = ["+14155550101", "+14155550102", "+14155550103", "+14155550104", "+14155550105"]
ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z"}
REQUEST_TIMEOUT = 10
# Enough to outlast one fault (a held lock, a restarting worker, a killed server)
# with backoff, not a faulty build's steady failures.
ATTEMPTS = 8
LOST = "lost"  # an attempt whose answer never came (timeout, dropped connection)
# Endpoints that store their answer under the Idempotency-Key and replay it.
KEYED_KINDS = ("charge", "ask", "reverse")


@dataclass
class Operation:
    """One logical request and every attempt at it (status, or LOST)."""

    id: int
    kind: str  # charge, ask, approve, reverse
    path: str
    body: dict
    token: str
    target: int | None = None  # credit request or charge id it acts on
    seller: int | None = None  # the seller asking (ask, charge)
    attempts: list = field(default_factory=list)
    answer: dict | None = None
    replayed: bool = False  # the last answer carried Idempotent-Replayed

    @property
    def key(self) -> str:
        return f"bank-{self.id}"

    @property
    def final(self) -> int | str:
        return self.attempts[-1] if self.attempts else LOST

    @property
    def applied_answer(self) -> bool:
        return isinstance(self.final, int) and 200 <= self.final < 300

    @property
    def refused(self) -> bool:
        return isinstance(self.final, int) and 400 <= self.final < 500

    @property
    def lost_once(self) -> bool:
        return any(attempt == LOST or attempt >= 500 for attempt in self.attempts)

    @property
    def outcome(self) -> str:
        """What the client was left with: 2xx, 4xx, 5xx or no answer."""
        final = self.final
        return "no answer" if final == LOST else f"{final // 100}xx"


def gunicorn_workers(group: int) -> list[int]:
    """Pids of the gunicorn workers in process group ``group``: gunicorn
    processes whose parent is the gunicorn master."""
    processes = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == group:
            processes[int(stat.parent.name)] = (int(fields[1]), b"gunicorn" in cmdline)
    return [
        pid
        for pid, (parent, is_gunicorn) in processes.items()
        if is_gunicorn and processes.get(parent, (0, False))[1]
    ]


class BankRun:
    def __init__(
        self,
        *,
        servers: list[tuple[str, int]],
        seller_tokens: dict[int, str],
        staff_token: str,
        lock_hold: float,
        seconds: float,
        proxies: list[AnswerCuttingProxy] = (),
        clients: int = 32,
        nemesis_every: float = 2.0,
    ):
        # (base URL, process group) of each app server still alive; clients spread
        # over them and move to another after a lost answer.
        self.servers = list(servers)
        self.proxies = list(proxies)
        self.seller_tokens = seller_tokens
        self.staff_token = staff_token
        self.lock_hold = lock_hold
        self.seconds = seconds
        self.clients = clients
        self.nemesis_every = nemesis_every
        self.operations: list[Operation] = []
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.pending_credit: list[int] = []
        self.charges: list[int] = []
        self.balance_reads: list[tuple[int, int]] = []  # (seller, balance), in read order
        self.statement_reads: list[tuple[int, dict]] = []
        self.faults: Counter = Counter()
        self.connections_terminated = 0
        self.errors: list[str] = []
        self.started_credit_requests = set(CreditRequest.objects.values_list("id", flat=True))
        self.own_backends = [self._backend_pid()]

    @staticmethod
    def _backend_pid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    # --- clients -------------------------------------------------------------

    def send(self, session: requests.Session, operation: Operation) -> None:
        """POST until a definite answer (2xx or 4xx) or ATTEMPTS run out."""
        headers = {
            "Authorization": f"Token {operation.token}",
            "Idempotency-Key": operation.key,
        }
        for attempt in range(ATTEMPTS):
            servers = self.servers
            base_url, _ = servers[(operation.id + attempt) % len(servers)]
            try:
                response = session.post(
                    base_url + operation.path,
                    json=operation.body,
                    headers=headers,
                    timeout=REQUEST_TIMEOUT,
                )
            except requests.RequestException:
                operation.attempts.append(LOST)
                session.close()
            else:
                operation.attempts.append(response.status_code)
                if response.status_code < 500:
                    operation.answer = response.json()
                    operation.replayed = response.headers.get("Idempotent-Replayed") == "true"
                    return
            time.sleep(min(0.05 * 2**attempt, 1.0) * random.random())

    def operation_next(self) -> Operation:
        seller = random.choice(list(self.seller_tokens))
        roll = random.random()
        with self.lock:
            number = next(self.ids)
            if roll < 0.15 and self.pending_credit:
                target = self.pending_credit.pop(random.randrange(len(self.pending_credit)))
                path = f"/api/payments/credit-requests/{target}/approve/"
                operation = Operation(number, "approve", path, {}, self.staff_token, target)
            elif roll < 0.25 and self.charges:
                target = random.choice(self.charges)
                path = f"/api/payments/phone-charges/{target}/reverse/"
                operation = Operation(number, "reverse", path, {}, self.staff_token, target)
            elif roll < 0.35:
                body = {"amount": random.randint(100, 3_000)}
                token = self.seller_tokens[seller]
                operation = Operation(
                    number, "ask", "/api/payments/credit-requests/", body, token, seller=seller
                )
            else:
                body = {
                    "phone_number": random.choice(PHONES),
                    "amount": random.randint(1, 900),
                    "reference": f"bank-{number}",
                }
                token = self.seller_tokens[seller]
                operation = Operation(
                    number, "charge", "/api/payments/phone-charge/", body, token, seller=seller
                )
            self.operations.append(operation)
        return operation

    def client(self, deadline: float) -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            operation = self.operation_next()
            self.send(session, operation)
            if operation.applied_answer:
                with self.lock:
                    if operation.kind == "ask":
                        self.pending_credit.append(operation.answer["id"])
                    elif operation.kind == "charge":
                        self.charges.append(operation.answer["id"])

    # --- reader --------------------------------------------------------------

    def reader(self, deadline: float) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Token {self.staff_token}"}
        while time.monotonic() < deadline:
            seller = random.choice(list(self.seller_tokens))
            base_url, _ = random.choice(self.servers)
            try:
                seller_read = session.get(
                    f"{base_url}/api/sellers/{seller}/", headers=headers, timeout=5
                )
                statement = session.get(
                    f"{base_url}/api/payments/statement/",
                    params={**ALL_TIME, "seller": seller},
                    headers=headers,
                    timeout=5,
                )
            except requests.RequestException:
                session.close()
                continue
            if seller_read.status_code == 200:
                self.balance_reads.append((seller, seller_read.json()["balance"]))
            if statement.status_code == 200:
                self.statement_reads.append((seller, statement.json()))

    # --- nemesis -------------------------------------------------------------

    def nemesis(self, deadline: float) -> None:
        """One fault every ``nemesis_every`` seconds, in turn."""
        faults = [self.kill_worker, self.terminate_backends, self.hold_lock]
        if len(self.servers) > 1:
            faults.append(self.kill_server)
        faults = itertools.cycle(faults)
        try:
            while time.monotonic() + self.nemesis_every < deadline:
                time.sleep(self.nemesis_every)
                next(faults)()
        finally:
            connections.close_all()

    def kill_worker(self) -> None:
        _, group = random.choice(self.servers)
        workers = gunicorn_workers(group)
        if workers:
            os.kill(random.choice(workers), signal.SIGKILL)
            self.faults["SIGKILL gunicorn worker"] += 1

    def kill_server(self) -> None:
        """SIGKILL one whole app server (its master and workers), as when its host
        dies, while another remains: clients move to the survivors."""
        if len(self.servers) < 2:
            return
        victim = random.choice(self.servers)
        self.servers = [server for server in self.servers if server != victim]
        os.killpg(victim[1], signal.SIGKILL)
        self.faults["SIGKILL one app server"] += 1

    def terminate_backends(self) -> None:
        """pg_terminate_backend every connection to this test database but ours."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend' AND pid <> ALL(%s)",
                [self.own_backends],
            )
            self.faults["pg_terminate_backend app connections"] += 1
            self.connections_terminated += cursor.fetchone()[0]

    def hold_lock(self) -> None:
        seller = random.choice(list(self.seller_tokens))
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM sellers_seller WHERE id = %s FOR UPDATE", [seller])
            time.sleep(self.lock_hold)
            cursor.execute("ROLLBACK")
        self.faults["seller row lock held past lock_timeout"] += 1

    # --- run -----------------------------------------------------------------

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        threads = [
            threading.Thread(target=self.client, args=(deadline,)) for _ in range(self.clients)
        ]
        threads.append(threading.Thread(target=self.reader, args=(deadline,)))
        threads.append(threading.Thread(target=self.nemesis, args=(deadline,)))
        for proxy in self.proxies:
            proxy.cutting.set()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for proxy in self.proxies:
            proxy.cutting.clear()

    # --- checker -------------------------------------------------------------

    @property
    def cuts(self) -> list:
        return [cut for proxy in self.proxies for cut in proxy.cuts]

    def retry_bound(self) -> int:
        """Retries the faults can explain: each fault may cost every client one
        attempt (a held lock, a restarting worker or server, terminated
        connections), each cut answer one. A build failing on its own exceeds it."""
        return self.clients * sum(self.faults.values()) + len(self.cuts)

    def check(self) -> tuple[list[str], dict]:
        """Hold the database to the history; return (violations, summary)."""
        violations = list(ledger_check().problems)
        violations += [
            f"transaction {pk}: balance_after {after} < 0"
            for pk, after in Transaction.objects.filter(balance_after__lt=0).values_list(
                "id", "balance_after"
            )
        ]
        resolutions: Counter = Counter()
        by_kind = {kind: [op for op in self.operations if op.kind == kind] for kind in
                   ("charge", "ask", "approve", "reverse")}  # fmt: skip
        violations += self._check_charges(by_kind["charge"], resolutions)
        violations += self._check_asks(by_kind["ask"], resolutions)
        violations += self._check_approvals(by_kind["approve"], resolutions)
        violations += self._check_reversals(by_kind["reverse"], resolutions)
        violations += self._check_replays(resolutions)
        violations += [
            f"internal error: {op.kind} {op.id} answered 500 (attempts {op.attempts}); the"
            " faults answer 503 (timeouts, lost connections) or nothing (killed processes)"
            for op in self.operations
            if 500 in op.attempts
        ]
        violations += self._check_reads()
        retries = sum(len(op.attempts) - 1 for op in self.operations if op.attempts)
        if retries > self.retry_bound():
            violations.append(
                f"retries: {retries} retries, more than the {self.retry_bound()} the"
                f" {sum(self.faults.values())} faults and {len(self.cuts)} cut answers explain"
            )
        summary = {
            "operations ended in": {
                kind: dict(Counter(op.outcome for op in ops)) for kind, ops in by_kind.items()
            },
            "faults": {**self.faults, "answers cut after commit": len(self.cuts)},
            "connections terminated": self.connections_terminated,
            "attempts answered": dict(
                Counter(str(attempt) for op in self.operations for attempt in op.attempts)
            ),
            "retries": retries,
            "retry bound": self.retry_bound(),
            "indeterminate": sum(op.lost_once for op in self.operations),
            "resolved as": dict(resolutions),
            "lost-after-commit answers replayed": resolutions["lost after commit, replayed"],
            "reads checked": len(self.balance_reads) + len(self.statement_reads),
            "violations": len(violations),
        }
        return violations, summary

    @staticmethod
    def _unanswered(operation: Operation) -> str:
        return (
            f"{operation.kind} {operation.id}: ended with {operation.outcome}"
            f" after {len(operation.attempts)} attempts {operation.attempts}"
        )

    def _resolve(self, operation: Operation, applied: int, resolutions: Counter) -> list[str]:
        """Applied exactly once if answered 2xx, never if refused. Left with a 5xx
        or no answer, it is resolved only if the database shows it applied once
        (the client lost the answer, not the work): a valid request the service
        never carried out within the retries is a failure the client saw."""
        if operation.applied_answer and applied != 1:
            return [
                f"{operation.kind} {operation.id}: answered {operation.final}, applied {applied}"
            ]
        if operation.refused and applied != 0:
            return [
                f"{operation.kind} {operation.id}: refused {operation.answer}, applied {applied}"
            ]
        if operation.applied_answer or operation.refused:
            if operation.lost_once:
                resolutions["answered after retry"] += 1
            return []
        if applied == 1:
            resolutions[f"{operation.outcome}, read shows applied once"] += 1
            return []
        return [f"{self._unanswered(operation)}, applied {applied} times"]

    def _check_charges(self, operations: list[Operation], resolutions: Counter) -> list[str]:
        made = Counter(
            PhoneCharge.objects.filter(reference__startswith="bank-").values_list(
                "reference", flat=True
            )
        )
        violations = []
        for operation in operations:
            applied = made.pop(operation.body["reference"], 0)
            violations += self._resolve(operation, applied, resolutions)
        violations += [f"charge {ref}: applied without a request" for ref in made]
        return violations

    def _check_asks(self, operations: list[Operation], resolutions: Counter) -> list[str]:
        """Credit requests carry no client reference: every answered id must exist
        once, and each request nobody was answered for must be an unanswered ask's
        (same seller and amount), which it resolves."""
        made = dict(
            CreditRequest.objects.exclude(id__in=self.started_credit_requests).values_list(
                "id", "seller_id"
            )
        )
        amounts = dict(CreditRequest.objects.values_list("id", "amount"))
        answered = Counter(op.answer["id"] for op in operations if op.applied_answer)
        violations = [
            f"credit request {pk}: answered to {n} requests" for pk, n in answered.items() if n > 1
        ]
        violations += [
            f"credit request {pk}: answered but absent" for pk in set(answered) - set(made)
        ]
        unmatched = Counter((made[pk], amounts[pk]) for pk in set(made) - set(answered))
        for operation in operations:
            if operation.applied_answer or operation.refused:
                violations += self._resolve(operation, int(operation.applied_answer), resolutions)
                continue
            wanted = (operation.seller, operation.body["amount"])
            applied = 1 if unmatched[wanted] > 0 else 0
            unmatched[wanted] -= applied
            violations += self._resolve(operation, applied, resolutions)
        violations += [
            f"credit request of seller {seller} for {amount}: made {n} time(s) unasked"
            for (seller, amount), n in unmatched.items()
            if n > 0
        ]
        return violations

    def _check_approvals(self, operations: list[Operation], resolutions: Counter) -> list[str]:
        """Approval is not idempotent by key, it is once by state: a retry after a
        lost answer finds the request decided (409), which resolves it."""
        approved = Counter(op.target for op in operations if op.applied_answer)
        violations = [
            f"credit request {pk}: approved {n} times" for pk, n in approved.items() if n > 1
        ]
        credited = set(
            Transaction.objects.filter(kind=Transaction.Kind.CREDIT).values_list(
                "credit_request_id", flat=True
            )
        )
        statuses = dict(CreditRequest.objects.values_list("id", "status"))
        for operation in operations:
            status = statuses[operation.target]
            applied = operation.target in credited
            if operation.applied_answer and not (status == "approved" and applied):
                violations.append(f"approve {operation.id}: answered 200, request {status}")
            elif operation.refused and status != "approved":
                violations.append(f"approve {operation.id}: refused, but nobody approved it")
            elif operation.applied_answer or operation.refused:
                if operation.lost_once:
                    resolutions[f"approval {status} after retry"] += 1
            elif status == "approved" and applied:
                resolutions[f"{operation.outcome}, read shows applied once"] += 1
            else:
                violations.append(f"{self._unanswered(operation)}, request {status}")
        return violations

    def _check_reversals(self, operations: list[Operation], resolutions: Counter) -> list[str]:
        reversed_charges = set(PhoneChargeReversal.objects.values_list("charge_id", flat=True))
        answered = Counter(op.target for op in operations if op.applied_answer)
        violations = [
            f"charge {pk}: reversed by {n} requests" for pk, n in answered.items() if n > 1
        ]
        for operation in operations:
            applied = 1 if operation.target in reversed_charges else 0
            if operation.refused:
                # already_reversed: another request reversed it; insufficient_phone_balance: none.
                if operation.lost_once:
                    resolutions["answered after retry"] += 1
                code = operation.answer.get("code")
                if code == "already_reversed" and not applied:
                    violations.append(f"reverse {operation.id}: already_reversed, but it is not")
                continue
            violations += self._resolve(operation, applied, resolutions)
        targeted = {op.target for op in operations}
        violations += [
            f"charge {pk}: reversed without a request" for pk in reversed_charges - targeted
        ]
        return violations

    def _check_replays(self, resolutions: Counter) -> list[str]:
        """An answer cut after commit must come back, under the same key, as the
        replay of that answer: the work was done once and is not done again."""
        by_key = {op.key: op for op in self.operations}
        last_cut = {cut.key: cut for cut in self.cuts}
        violations = []
        for key, cut in last_cut.items():
            operation = by_key[key]
            if operation.kind not in KEYED_KINDS:
                resolutions["approval cut after commit, found decided"] += 1
                continue
            if operation.final == LOST:
                continue  # no retry answered; _resolve held it to the database
            if operation.final == cut.status and operation.replayed:
                resolutions["lost after commit, replayed"] += 1
            else:
                violations.append(
                    f"idempotency: {operation.kind} {operation.id}'s {cut.status} answer was"
                    f" lost after commit; the retry under its key got {operation.final}"
                    f" {operation.answer}, {'a replay' if operation.replayed else 'not a replay'}"
                )
        return violations

    def _check_reads(self) -> list[str]:
        """Each read is a prefix state of its seller's journal, and one reader's
        reads of a seller never go back in that journal."""
        journals: dict[int, list[tuple[str, int, int]]] = {}
        for seller, kind, amount, after in Transaction.objects.order_by("id").values_list(
            "seller_id", "kind", "amount", "balance_after"
        ):
            journals.setdefault(seller, []).append((kind, amount, after))
        violations = []
        position: Counter = Counter()
        for seller, balance in self.balance_reads:
            states = [0] + [after for _, _, after in journals.get(seller, [])]
            found = next(
                (i for i in range(position[seller], len(states)) if states[i] == balance), None
            )
            if found is None:
                violations.append(
                    f"seller {seller}: read balance {balance}, no later journal state"
                )
            else:
                position[seller] = found
        for seller, statement in self.statement_reads:
            rows = journals.get(seller, [])
            count = sum(total["count"] for total in statement["totals"].values())
            prefix = rows[:count]
            totals = {kind: {"amount": 0, "count": 0} for kind in statement["totals"]}
            for kind, amount, _ in prefix:
                totals[kind]["amount"] += amount
                totals[kind]["count"] += 1
            closing = prefix[-1][2] if prefix else 0
            if (
                count > len(rows)
                or totals != statement["totals"]
                or closing != statement["closing_balance"]
            ):
                violations.append(
                    f"seller {seller}: statement {statement} is no prefix of its journal"
                )
        return violations
