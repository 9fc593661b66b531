"""The database going away mid-request (a restart, a failover, PgBouncer losing its
server connection) is 503 try_again, never a 500, and the next request reconnects."""

from unittest import mock

import psycopg2
from django.db import connection
from django.test import TransactionTestCase

from payments.models import PhoneCharge
from payments.services import phone_charge_create
from testing.factories import client_for, seller_make
from testing.keyed_requests import charge


def connection_dropped_then(work):
    """Terminate this request's database session from outside, as a restarting
    server does, then go on to ``work``, which meets the dead connection."""

    def drop_and_work(**kwargs):
        victim = connection.connection.info.backend_pid
        with psycopg2.connect(**connection.get_connection_params()) as admin:
            admin.cursor().execute("SELECT pg_terminate_backend(%s)", [victim])
        return work(**kwargs)

    return drop_and_work


class ConnectionLostTests(TransactionTestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)

    def test_a_request_whose_connection_dies_answers_503_try_again(self):
        with mock.patch(
            "payments.api.phone_charge_create", connection_dropped_then(phone_charge_create)
        ):
            response = charge(self.client, key="k-1")
        self.assertEqual(
            (response.status_code, response.json()["code"], response.headers["Retry-After"]),
            (503, "try_again", "1"),
        )

    def test_the_next_request_reconnects_and_the_retry_lands_once(self):
        with mock.patch(
            "payments.api.phone_charge_create", connection_dropped_then(phone_charge_create)
        ):
            charge(self.client, key="k-1")
        retry = charge(self.client, key="k-1")
        self.assertEqual(retry.status_code, 201, retry.content)
        self.assertEqual(PhoneCharge.objects.count(), 1)
