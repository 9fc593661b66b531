"""Schemathesis, a real outside client, fuzzes every operation of the live server."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.test import LiveServerTestCase, tag

from payments.services import credit_request_create
from testing.factories import api_key_make, seller_make, staff_make

CONFIG = Path(settings.BASE_DIR) / "schemathesis.toml"
LOGOUT = "/api/auth/logout/"
KEY_REVOKE = "/api/api-keys/{prefix}/"
EXAMPLES_PER_OPERATION = 30
SEED = 20261127


@tag("fuzz", "long")
class SchemathesisFuzzTests(LiveServerTestCase):
    def schemathesis(self, token: str, *selection: str) -> subprocess.CompletedProcess:
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color",
            "run", f"{self.live_server_url}/api/schema/",
            "--header", f"Authorization: Token {token}",
            "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED),
            "--generation-database", "none", "--request-timeout", "30",
            *selection,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        # The summary (operations, cases generated, failures) for whoever reads the log.
        print(result.stdout[result.stdout.rfind("SUMMARY") :])
        return result

    def test_every_operation_passes_every_default_check_and_the_books_balance(self):
        seller = seller_make(balance=1_000_000)
        token = api_key_make(seller.user)
        staff_token = api_key_make(staff_make(reverser=True))
        for _ in range(20):
            credit_request_create(seller=seller, amount=1_000)

        runs = {
            # Schemathesis follows the key list's prefixes to the key's revocation.
            "as a seller": (token, "--exclude-path", LOGOUT, "--exclude-path", KEY_REVOKE),
            # Deciding credit and reversing charges are for staff; a seller only ever
            # sees 403 there. The seller's run left charges to reverse.
            "as staff": (staff_token, "--include-path-regex", "/(approve|reject|reverse)/$"),
            # Logging out and revoking a key end the token the other runs need: last.
            "revoking": (token, "--include-path", LOGOUT, "--include-path", KEY_REVOKE),
        }
        for name, (caller_token, *selection) in runs.items():
            with self.subTest(name):
                result = self.schemathesis(caller_token, *selection)
                self.assertEqual(result.returncode, 0, result.stdout[-20_000:])

        call_command("verify_ledger", stdout=StringIO())
