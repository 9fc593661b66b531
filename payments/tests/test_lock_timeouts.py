"""A request stuck behind a held lock gives up in bounded time, changes nothing, and
says so: 503 ``try_again`` with Retry-After. A retry with the same key lands once."""

import os
import subprocess
import sys
import threading
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, connections
from django.test import TransactionTestCase
from django.urls import reverse

from payments.models import PhoneCharge, Transaction
from sellers.models import Seller
from testing.factories import client_for, seller_make
from testing.servers import database_url_of_the_tests

PHONE = "+14155550123"
# Lowered for this test's own connection so a refusal takes a moment, not 5 seconds.
SHORT_WAIT_MS = 300


@contextmanager
def seller_row_locked_elsewhere(seller_id: int):
    """Another connection holds the seller's row lock until exit."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "SELECT id FROM sellers_seller WHERE id = %s FOR UPDATE", [seller_id]
                )
                locked.set()
                release.wait(30)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


def wait_briefly_for_locks() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = {SHORT_WAIT_MS}")


class ChargeBehindAHeldLockTests(TransactionTestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)
        wait_briefly_for_locks()

    def charge(self, **headers):
        return self.client.post(
            reverse("phone-charge"),
            {"phone_number": PHONE, "amount": 100},
            format="json",
            **headers,
        )

    def test_charge_behind_a_held_lock_answers_503_try_again_with_retry_after(self):
        with seller_row_locked_elsewhere(self.seller.pk):
            response = self.charge()
        self.assertEqual(response.status_code, 503, response.content)
        self.assertEqual(response.json()["code"], "try_again")
        self.assertGreaterEqual(int(response["Retry-After"]), 1)

    def test_charge_behind_a_held_lock_changes_nothing(self):
        with seller_row_locked_elsewhere(self.seller.pk):
            self.charge()
        self.assertEqual(Seller.objects.get(pk=self.seller.pk).balance, 1_000)
        self.assertFalse(PhoneCharge.objects.exists())

    def test_retry_with_the_same_key_after_the_lock_is_released_charges_once(self):
        with seller_row_locked_elsewhere(self.seller.pk):
            refused = self.charge(HTTP_IDEMPOTENCY_KEY="order-1")
        landed = self.charge(HTTP_IDEMPOTENCY_KEY="order-1")
        replayed = self.charge(HTTP_IDEMPOTENCY_KEY="order-1")
        self.assertEqual((refused.status_code, landed.status_code), (503, 201))
        self.assertEqual(replayed.json(), landed.json())
        self.assertEqual(Seller.objects.get(pk=self.seller.pk).balance, 900)
        self.assertEqual(Transaction.objects.filter(kind="charge").count(), 1)


def session_setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


class ConnectionTimeoutSettingsTests(TransactionTestCase):
    def test_request_connections_wait_at_most_the_lock_timeout(self):
        self.assertEqual(session_setting("lock_timeout"), "5s")

    def test_request_connections_run_statements_at_most_the_statement_timeout(self):
        self.assertEqual(session_setting("statement_timeout"), "15s")

    def test_management_commands_are_not_bound_by_the_request_timeouts(self):
        script = (
            "from django.db import connection; c = connection.cursor(); "
            "c.execute('SHOW lock_timeout'); print(c.fetchone()[0]); "
            "c.execute('SHOW statement_timeout'); print(c.fetchone()[0])"
        )
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", script],
            cwd=settings.BASE_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "payledger_project.settings",
                "DATABASE_URL": database_url_of_the_tests(),
            },
            capture_output=True,
            text=True,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), ["0", "0"])
