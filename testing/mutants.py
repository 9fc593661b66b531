# ruff: noqa: E501 - the edits quote the code exactly, long lines and all
"""Planted bugs the checks must catch: `make verify-checks` (docs/testing.md).

Each mutant is a realistic bug in the money code, written as exact search and
replace edits. The runner copies the repository (its tracked files as they are
in the working tree) into a temporary directory, applies one mutant's edits,
and runs the checks named for it there. A mutant is:

- caught when a named check fails and its failure names the broken property
  (``expect``, text the failure must contain), not a canary's patch;
- caught for the wrong reason when the checks fail without naming it;
- survived when every named check passes;
- stale when an edit's search text is not in its file exactly once (the code
  moved on; the mutant must be rewritten to match it), never silently skipped.

Anything but caught fails the run. The checks run on the database the suite
uses (DATABASE_URL, or the repository's embedded PostgreSQL).
"""

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "payments/tests/test_model.py::LedgerModelTests"
SERVICES_MODEL = f"{MODEL}::test_the_services_agree_with_the_model_over_random_histories"
API_MODEL = f"{MODEL}::test_the_api_agrees_with_the_model_over_random_histories"
BANK = "payments/tests/test_bank.py::BankTests"
# The model's machines find these bugs within a few examples; the bank within seconds.
CHECK_ENVIRONMENT = {
    "PAYLEDGER_MODEL_EXAMPLES": "10",
    "PAYLEDGER_MODEL_SHRINK": "0",
    "PAYLEDGER_BANK_SECONDS": "10",
}


@dataclass(frozen=True)
class Edit:
    path: str
    search: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    edits: tuple[Edit, ...]
    checks: tuple[str, ...]  # pytest node ids, run in order until one fails
    expect: str  # what the failure must say: the property the bug breaks
    environment: dict[str, str] = field(default_factory=dict)


MUTANTS = (
    Mutant(
        "idempotency-key-never-stored",
        "The Idempotency-Key is never recorded: a retry runs the request again.",
        (
            Edit(
                "payments/idempotency.py",
                "            record, claimed = _claim(user, key, fingerprint)\n",
                "            record = IdempotencyKey(user=user, key=key, request_fingerprint=fingerprint)\n"
                "            claimed = True\n",
            ),
            Edit(
                "payments/idempotency.py",
                '            record.save(update_fields=["response_status", "response_body"])\n',
                "",
            ),
        ),
        (API_MODEL,),
        "idempotency:",
    ),
    Mutant(
        "reversal-twice",
        "A reversal without the already-reversed check and without the unique constraint.",
        (
            Edit(
                "payments/services.py",
                "    if PhoneChargeReversal.objects.filter(charge_id=charge.pk).exists():\n"
                "        raise AlreadyReversed()\n",
                "",
            ),
            Edit(
                "payments/migrations/0011_movement_dates_from_the_database.py",
                "    operations = [\n",
                "    operations = [\n"
                "        migrations.RunSQL(\n"
                '            "DO $$ DECLARE name text; BEGIN SELECT conname INTO name FROM pg_constraint"\n'
                "            \" WHERE conrelid = 'payments_phonechargereversal'::regclass AND contype = 'u';\"\n"
                "            \" EXECUTE 'ALTER TABLE payments_phonechargereversal DROP CONSTRAINT ' || name;\"\n"
                '            " END $$"\n'
                "        ),\n",
            ),
        ),
        (SERVICES_MODEL,),
        "already_reversed",
    ),
    Mutant(
        "credit-journal-balance-after",
        "An approval's journal row records the balance before the credit.",
        (
            Edit(
                "payments/services.py",
                "        amount=credit_request.amount,\n        balance_after=balance_after,\n",
                "        amount=credit_request.amount,\n"
                "        balance_after=balance_after - credit_request.amount,\n",
            ),
        ),
        (SERVICES_MODEL,),
        "journal:",
    ),
    Mutant(
        "phone-never-credited",
        "A charge to a phone that has an account does not credit it.",
        (
            Edit(
                "payments/services.py",
                "DO UPDATE SET balance = payments_phoneaccount.balance + excluded.balance",
                "DO UPDATE SET balance = payments_phoneaccount.balance",
            ),
        ),
        (SERVICES_MODEL,),
        "phone balances:",
    ),
    Mutant(
        "charge-check-then-act",
        "The charge's balance check moves out of its statement into a plain read before it.",
        (
            Edit(
                "payments/services.py",
                "    WHERE id = %(seller_id)s AND balance >= %(amount)s\n",
                "    WHERE id = %(seller_id)s\n",
            ),  # fmt: skip
            Edit(
                "payments/services.py",
                "    with connection.cursor() as cursor:\n        CHARGE_IN_ONE_STATEMENT.execute(\n",
                "    if Seller.objects.filter(pk=seller_id, balance__lt=amount).exists():\n"
                "        return None\n"
                "    with connection.cursor() as cursor:\n        CHARGE_IN_ONE_STATEMENT.execute(\n",
            ),
        ),
        (BANK,),
        "internal error:",
        {"PAYLEDGER_BANK_SELLERS": "2"},
    ),
    Mutant(
        "approval-event-on-commit",
        "The approval's event is written after commit, outside the movement's transaction.",
        (
            Edit(
                "payments/services.py",
                "    _credit_request_event_record(\n        Event.Type.CREDIT_REQUEST_APPROVED,\n",
                "    transaction.on_commit(lambda: _credit_request_event_record(\n"
                "        Event.Type.CREDIT_REQUEST_APPROVED,\n",
            ),
            Edit(
                "payments/services.py",
                "        balance=balance_after,\n        created_at=moved_at,\n    )\n",
                "        balance=balance_after,\n        created_at=moved_at,\n    ))\n",
            ),
        ),
        (SERVICES_MODEL,),
        "movement event:",
    ),
    Mutant(
        "reversal-locks-phone-first",
        "A reversal takes the phone's row lock before the seller's, against a charge's order.",
        (
            Edit(
                "payments/services.py",
                "    balance_after, moved_at = _seller_balance_credit(charge.seller_id, charge.amount)\n"
                "    if PhoneChargeReversal.objects.filter(charge_id=charge.pk).exists():\n"
                "        raise AlreadyReversed()\n"
                "    if not _phone_balance_take(charge.phone_account_id, charge.amount):\n"
                "        raise InsufficientPhoneBalance()\n",
                "    if not _phone_balance_take(charge.phone_account_id, charge.amount):\n"
                "        raise InsufficientPhoneBalance()\n"
                "    import time; time.sleep(0.05)\n"  # widen the window, as load does
                "    balance_after, moved_at = _seller_balance_credit(charge.seller_id, charge.amount)\n"
                "    if PhoneChargeReversal.objects.filter(charge_id=charge.pk).exists():\n"
                "        raise AlreadyReversed()\n",
            ),
        ),
        ("payments/tests/test_concurrency.py::ConcurrentChargeAndReversalTests",),
        "deadlock",
    ),
    Mutant(
        "reference-not-unique",
        "The database no longer holds a seller's charge references unique.",
        (
            Edit(
                "payments/migrations/0007_phonecharge_reference.py",
                "constraint=models.UniqueConstraint(condition=models.Q(('reference__isnull', False)),"
                " fields=('seller', 'reference'), name='phonecharge_seller_reference_unique')",
                "constraint=models.CheckConstraint(condition=models.Q(('reference__isnull', False))"
                " | models.Q(('reference__isnull', True)), name='phonecharge_seller_reference_unique')",
            ),
        ),
        (
            "payments/tests/test_references.py::ChargeReferenceTests::"
            "test_the_database_refuses_a_second_charge_with_one_sellers_reference",
            "payments/tests/test_references.py::ConcurrentReferenceTests",
        ),
        "one reference, one charge",
    ),
    Mutant(
        "approval-without-lock",
        "An approval reads the credit request without locking it.",
        (
            Edit(
                "payments/services.py",
                '        CreditRequest.objects.select_for_update(of=("self",))\n',
                "        CreditRequest.objects\n",
            ),
            Edit(
                "payments/services.py",
                "    balance_after, moved_at = _seller_balance_credit(seller_id, credit_request.amount)\n",
                "    import time; time.sleep(0.05)\n"  # widen the window, as load does
                "    balance_after, moved_at = _seller_balance_credit(seller_id, credit_request.amount)\n",
            ),
        ),
        ("payments/tests/test_concurrency.py::ConcurrentApprovalTests",),
        "approved exactly once",
    ),
    Mutant(
        "statement-closing-from-replica",
        "A statement reads its closing balance from the read replica, which lags.",
        (
            Edit(
                "payments/selectors.py",
                "            closing_balance=seller_balance_before(seller_id=seller_id, instant=end),\n",
                "            closing_balance=Seller.objects.using(\n"
                "                'replica' if 'replica' in connections.settings else 'default'\n"
                "            ).filter(pk=seller_id).annotate(then=_balance_before(end))\n"
                "            .values_list('then', flat=True).get(),\n",
            ),
            Edit(
                "payments/selectors.py",
                "\nfrom payments.models import",
                "\nfrom django.db import connections\nfrom payments.models import",
            ),
        ),
        ("payments/tests/test_statement.py::StatementReplicaTests",),
        "the closing balance is the primary's",
    ),
    Mutant(
        "webhook-done-before-answer",
        "A webhook delivery moves the cursor past its event when claimed, before the receiver answers.",
        (
            Edit(
                "webhooks/services.py",
                "        if event is not None:\n"
                "            endpoint.next_attempt_at = now + timedelta(\n",
                "        if event is not None:\n"
                "            endpoint.last_event_id = event.pk\n"
                "            endpoint.next_attempt_at = now + timedelta(\n",
            ),
        ),
        (
            "webhooks/tests/test_delivery.py::DeliveryTests::"
            "test_an_error_answer_is_retried_later_and_the_cursor_waits",
        ),
        "the cursor moves only once the receiver took it",
    ),
)


class Stale(Exception):
    pass


def replaced_once(text: str, search: str, replace: str, *, where: str) -> str:
    """``text`` with ``search`` replaced; Stale unless it occurs exactly once.
    Canaries that patch code in memory use it too, so a patch that no longer
    applies says so instead of leaving the build unbroken."""
    found = text.count(search)
    if found != 1:
        raise Stale(f"{where}: search text found {found} times, not once: {search!r}")
    return text.replace(search, replace)


def edits_apply(root: Path, edits: tuple[Edit, ...]) -> None:
    """Apply each edit to its file under ``root`` (``replaced_once``)."""
    for edit in edits:
        path = root / edit.path
        path.write_text(replaced_once(path.read_text(), edit.search, edit.replace, where=edit.path))


def repository_copy(destination: Path) -> None:
    """The repository's tracked files as the working tree has them, and its venv."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (destination / ".venv").symlink_to((ROOT / ".venv").resolve())
    # make's venv rule is satisfied: the copy's requirements are not newer.
    installed = ROOT / ".venv" / "bin" / ".installed"
    if installed.exists():
        # In nanoseconds: a float can round the copy's time up past the stamp's, and
        # make, reading nanoseconds, would rebuild the venv through the link.
        stamp = installed.stat().st_mtime_ns
        os.utime(destination / "requirements.txt", ns=(stamp, stamp))


FAILURE_LINE = re.compile(r"^(?:FAILED|ERROR) (\S+)(?: - (.*))?$", re.MULTILINE)


@dataclass
class Verdict:
    mutant: Mutant
    result: str  # caught, survived, wrong reason, stale
    check: str = ""
    message: str = ""
    seconds: float = 0.0


def message_naming(output: str, expect: str) -> str:
    """The first error line pytest printed (``E   ...``) that names ``expect``, trimmed."""
    for line in output.splitlines():
        if line.startswith("E ") and expect in line:
            return line[1:].strip()[:400]
    return ""


def mutant_run(mutant: Mutant) -> Verdict:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"payledger-mutant-{mutant.name}-") as scratch:
        copy = Path(scratch)
        repository_copy(copy)
        try:
            edits_apply(copy, mutant.edits)
        except Stale as stale:
            return Verdict(mutant, "stale", message=str(stale))
        environment = {**os.environ, **CHECK_ENVIRONMENT, **mutant.environment}
        # The copy uses the repository's embedded PostgreSQL unless DATABASE_URL says otherwise.
        environment.setdefault("PAYLEDGER_PGDATA", str(ROOT / ".pgdata"))
        for check in mutant.checks:
            completed = subprocess.run(
                [str(copy / ".venv" / "bin" / "python"), "-m", "pytest", check, "-x", "-q",
                 "-p", "no:cacheprovider", "-rfE", "--tb=short"],
                cwd=copy, env=environment, capture_output=True, text=True,
            )  # fmt: skip
            output = completed.stdout + completed.stderr
            if completed.returncode == 0:
                continue
            failed = FAILURE_LINE.search(output)
            check_name = failed.group(1) if failed else check
            named = message_naming(output, mutant.expect)
            seconds = time.monotonic() - started
            if named:
                return Verdict(mutant, "caught", check_name, named, seconds)
            tail = "\n".join(output.splitlines()[-15:])
            return Verdict(mutant, "wrong reason", check_name, tail, seconds)
        return Verdict(mutant, "survived", seconds=time.monotonic() - started)


def mutants_of_the_day(day: int, share: int) -> list[Mutant]:
    """Every ``share``-th mutant, starting at ``day`` modulo ``share``: over
    ``share`` consecutive days every mutant runs."""
    return [m for index, m in enumerate(MUTANTS) if index % share == day % share]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only these mutants")
    parser.add_argument(
        "--share",
        type=int,
        default=1,
        help="run 1/SHARE of the mutants, chosen by the day of the year (default: all)",
    )
    arguments = parser.parse_args()
    known = {mutant.name: mutant for mutant in MUTANTS}
    unknown = [name for name in arguments.names if name not in known]
    if unknown:
        parser.error(f"unknown mutants {unknown}; known: {sorted(known)}")
    if arguments.names:
        chosen = [known[name] for name in arguments.names]
    else:
        day = datetime.date.today().timetuple().tm_yday
        chosen = mutants_of_the_day(day, arguments.share)
    verdicts = []
    for mutant in chosen:
        print(f"-- {mutant.name}: {mutant.bug}", flush=True)
        verdict = mutant_run(mutant)
        verdicts.append(verdict)
        where = f" by {verdict.check}" if verdict.check else ""
        print(f"   {verdict.result}{where} ({verdict.seconds:.0f} s)", flush=True)
        if verdict.message:
            print(f"   {verdict.message}", flush=True)
    failures = [v for v in verdicts if v.result != "caught"]
    print(
        f"\n{len(verdicts) - len(failures)} of {len(verdicts)} mutants caught;"
        f" {len(failures)} not: {[f'{v.mutant.name} ({v.result})' for v in failures]}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
