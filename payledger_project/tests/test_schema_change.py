"""A schema change (a migration, a rolling deploy) under statements prepared on
live connections (postgresql/prepared.py): requests keep answering, never a 500.

ALTER COLUMN ... TYPE changes what a prepared statement returns, and PostgreSQL
then refuses every EXECUTE of it in that session ("cached plan must not change
result type"). These tests alter the test database's own tables and put them back
as they were.
"""

import sys
from collections import Counter

import requests
from django.db import connection
from django.test import TransactionTestCase
from django.urls import reverse

from payments.models import PhoneCharge
from sellers.models import Seller
from testing.database import from_outside
from testing.factories import client_for, credit_approved_make, seller_make
from testing.keyed_requests import PHONE, charge
from testing.servers import ServerTestCase

# A column the token look-up returns that no audit trigger's condition reads:
# PostgreSQL refuses to retype those outside a migration (in one, django-pgtrigger
# drops and re-creates the trigger around the change; audit/).
LOOK_UP_COLUMN = ("auth_user", "first_name", "varchar(200)", "varchar(150)")


def column_retyped(test, table: str, column: str, new_type: str, old_type: str) -> None:
    """``ALTER COLUMN ... TYPE new_type`` from another session, as a migration does;
    ``old_type`` again after the test."""
    alter = f"ALTER TABLE {table} ALTER COLUMN {column} TYPE %s USING {column}::%s"
    from_outside(alter % (new_type, new_type))
    test.addCleanup(from_outside, alter % (old_type, old_type))


class SchemaChangeTests(TransactionTestCase):
    def setUp(self):
        # A connection of its own, prepared by this test's requests alone.
        connection.close()
        self.addCleanup(connection.close)
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)

    def test_an_authenticated_request_after_the_token_look_up_was_retyped_answers(self):
        me = reverse("seller-me")
        self.assertEqual(self.client.get(me).status_code, 200)
        column_retyped(self, *LOOK_UP_COLUMN)
        response = self.client.get(me)
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(self.client.get(me).status_code, 200)

    def test_a_charge_after_its_statement_was_retyped_answers(self):
        self.assertEqual(charge(self.client, key="first").status_code, 201)
        self.assertEqual(self.client.post(*self.unkeyed_charge()).status_code, 201)
        column_retyped(self, "sellers_seller", "balance", "numeric(20)", "bigint")
        response = self.client.post(*self.unkeyed_charge())
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(Seller.objects.get(pk=self.seller.pk).balance, 700)

    def test_a_keyed_charge_that_met_its_statement_retyped_answers_503_and_changes_nothing(self):
        self.client.post(*self.unkeyed_charge())  # prepares the charge on this connection
        column_retyped(self, "sellers_seller", "balance", "numeric(20)", "bigint")
        response = charge(self.client, key="k-1")
        self.assertEqual(
            (response.status_code, response.json()["code"], response.headers["Retry-After"]),
            (503, "try_again", "1"),
        )
        self.assertEqual(Seller.objects.get(pk=self.seller.pk).balance, 900)
        self.assertEqual(PhoneCharge.objects.count(), 1)

    def test_the_retry_of_that_keyed_charge_lands_once(self):
        self.client.post(*self.unkeyed_charge())
        column_retyped(self, "sellers_seller", "balance", "numeric(20)", "bigint")
        charge(self.client, key="k-1")
        retry = charge(self.client, key="k-1")
        self.assertEqual(retry.status_code, 201, retry.content)
        self.assertEqual(charge(self.client, key="k-1").headers["Idempotent-Replayed"], "true")
        self.assertEqual(Seller.objects.get(pk=self.seller.pk).balance, 800)
        self.assertEqual(PhoneCharge.objects.count(), 2)

    def unkeyed_charge(self) -> tuple:
        return reverse("phone-charge"), {"phone_number": PHONE, "amount": 100}, "json"


class SchemaChangeUnderARunningServerTests(ServerTestCase):
    """Gunicorn with production's settings, straight to PostgreSQL: connections kept
    between requests (CONN_MAX_AGE) prepare the token look-up and the charge."""

    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
    environment = {"WEB_CONCURRENCY": "2", "SECURE_SSL_REDIRECT": "false"}
    REQUESTS = 20  # each on a new client connection, so both workers serve some

    def test_a_column_the_token_look_up_returns_retyped_under_load_answers_no_5xx(self):
        token = self.seller_registered()
        before = self.statuses(token, "before")
        self.assertEqual(set(before), {200, 201}, before)
        column_retyped(self, *LOOK_UP_COLUMN)
        after = self.statuses(token, "after")
        self.assertEqual(after, Counter({200: self.REQUESTS, 201: self.REQUESTS}), after)

    def seller_registered(self) -> str:
        """A seller signed up and logged in through the server; credited here."""
        credentials = {"username": "shop", "password": "a-long-passphrase-42"}
        registered = requests.post(
            self.url("/api/sellers/"), json={**credentials, "name": "Shop"}, timeout=10
        )
        self.assertEqual(registered.status_code, 201, registered.text)
        credit_approved_make(seller=Seller.objects.get(pk=registered.json()["id"]), amount=10_000)
        login = requests.post(self.url("/api-token-auth/"), json=credentials, timeout=10)
        self.assertEqual(login.status_code, 200, login.text)
        return login.json()["token"]

    def statuses(self, token: str, phase: str) -> Counter:
        """Reads and charges (half with an Idempotency-Key) of one seller."""
        authorization = {"Authorization": f"Token {token}"}
        statuses = Counter()
        for number in range(self.REQUESTS):
            me = requests.get(self.url("/api/sellers/me/"), headers=authorization, timeout=10)
            keyed = {"Idempotency-Key": f"{phase}-{number}"} if number % 2 else {}
            charged = requests.post(
                self.url("/api/payments/phone-charge/"),
                json={"phone_number": PHONE, "amount": 1},
                headers={**authorization, **keyed},
                timeout=10,
            )
            statuses.update([me.status_code, charged.status_code])
        return statuses
