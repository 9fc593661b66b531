"""The bank test: a live gunicorn on PostgreSQL, 32 clients, a reader and a nemesis.

See payments/tests/bank.py for the run and its checker. It runs when
PAYLEDGER_BANK_SECONDS says how long the clients run (CI: 30, `make
verify-model`: 60); a plain `make test` skips it.
"""

import json
import os
import sys
from unittest import skipUnless
from urllib.parse import urlsplit

from payments.tests.bank import BankRun
from testing.answer_cutting_proxy import AnswerCuttingProxy
from testing.factories import api_key_make, seller_make, staff_make
from testing.servers import Server, ServerTestCase

SECONDS = float(os.environ.get("PAYLEDGER_BANK_SECONDS", "0"))
# Fewer sellers drain their credit sooner, so charges meet at empty balances.
SELLERS = int(os.environ.get("PAYLEDGER_BANK_SELLERS", "10"))
STARTING_CREDIT = 20_000
LOCK_TIMEOUT_MS = 300
# Share of keyed POSTs whose committed answer the proxy drops.
CUT_PROBABILITY = 0.03
NEEDS = "PAYLEDGER_BANK_SECONDS: how long the bank's clients run"


class BankTestCase(ServerTestCase):
    environment = {
        "WEB_CONCURRENCY": "4",
        "SECURE_SSL_REDIRECT": "false",
        "PAYLEDGER_CHARGE_RATE": "1000000/minute",
        "PAYLEDGER_LOCK_TIMEOUT_MS": str(LOCK_TIMEOUT_MS),
    }

    @classmethod
    def servers(cls) -> list[Server]:
        return [cls.server]

    def bank(self, *, sellers: int, seconds: float, **options) -> BankRun:
        """A run whose clients reach each server through a proxy that cuts answers."""
        tokens = {}
        for _ in range(sellers):
            seller = seller_make(balance=STARTING_CREDIT)
            tokens[seller.pk] = api_key_make(seller.user)
        # The servers run production's settings: staff move money with a second factor.
        staff = api_key_make(staff_make(reverser=True), second_factor=True)
        proxies = []
        for server in self.servers():
            address = urlsplit(server.base_url)
            proxy = AnswerCuttingProxy(
                (address.hostname, address.port), cut_probability=CUT_PROBABILITY
            )
            self.addCleanup(proxy.stop)
            proxies.append(proxy)
        return BankRun(
            servers=[
                (proxy.base_url, server.process.pid)
                for proxy, server in zip(proxies, self.servers(), strict=True)
            ],
            proxies=proxies,
            seller_tokens=tokens,
            staff_token=staff,
            lock_hold=3 * LOCK_TIMEOUT_MS / 1000,
            seconds=seconds,
            **options,
        )


@skipUnless(SECONDS > 0, NEEDS)
class BankTests(BankTestCase):
    """Two app servers, each `make serve` as docs/operations.md runs PayLedger, under faults;
    one of them is killed outright along the way."""

    command = ["make", "--no-print-directory", "serve", f"VENV={sys.prefix}"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.second = cls.server_start()

    @classmethod
    def servers(cls) -> list[Server]:
        return [cls.server, cls.second]

    def test_money_is_conserved_and_every_answer_holds_under_faults(self):
        run = self.bank(sellers=SELLERS, seconds=SECONDS)

        run.run()
        violations, summary = run.check()

        print("\nbank test:", json.dumps(summary, indent=1), file=sys.stderr)
        self.assertFalse(violations, "violations:\n" + "\n".join(violations[:20]))
        self.assertGreater(sum(run.faults.values()), 0)
        self.assertEqual(run.faults["SIGKILL one app server"], 1)
        self.assertGreater(summary["lost-after-commit answers replayed"], 0)
        self.assertGreater(summary["reads checked"], 0)


@skipUnless(SECONDS > 0, NEEDS)
class BrokenBankTests(BankTestCase):
    """The checker catches a build whose debit checks the balance outside the lock."""

    command = [
        sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
        "payments.tests.broken_wsgi:application",
    ]  # fmt: skip

    def test_a_balance_checked_outside_the_lock_is_caught(self):
        run = self.bank(sellers=2, seconds=min(SECONDS, 8), clients=16, nemesis_every=3_600)

        run.run()
        violations, summary = run.check()

        print("\nbroken bank:", json.dumps(summary, indent=1), file=sys.stderr)
        self.assertGreater(summary["violations"], 0)
        self.assertTrue(any("journal total" in line for line in violations), violations[:5])
