"""The PostgreSQL backend's health check: a dropped connection is replaced before
a request uses it, and a healthy one is checked without a query."""

import time
from contextlib import closing
from unittest import skipUnless

import psycopg2
from django.db import close_old_connections, connection
from django.test import TransactionTestCase


def from_outside(sql: str, params: list) -> list[tuple]:
    """``sql`` on a connection of its own, as an operator or a restarting server acts."""
    with closing(psycopg2.connect(**connection.get_connection_params())) as other:
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


def backend_pid() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def terminated(pid: int) -> None:
    """Terminate backend ``pid``, as a restarting server does, and wait until it is gone."""
    from_outside("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while from_outside("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]):
        if time.monotonic() > deadline:
            raise AssertionError(f"backend {pid} is still there")
        time.sleep(0.05)


@skipUnless(connection.vendor == "postgresql", "PostgreSQL's backend")
class HealthCheckTests(TransactionTestCase):
    def setUp(self):
        # A test that drops the connection leaves a new one for the flush after it.
        self.addCleanup(close_old_connections)

    def test_a_healthy_idle_connection_is_usable_without_a_query(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 'the last query'")
        self.assertTrue(connection.is_usable())
        last_query = from_outside(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [backend_pid()]
        )
        self.assertEqual(last_query, [("SELECT 'the last query'",)])

    def test_a_connection_the_server_terminated_is_not_usable(self):
        terminated(backend_pid())
        self.assertFalse(connection.is_usable())

    def test_the_next_request_after_the_server_dropped_its_connection_gets_a_new_one(self):
        dropped = backend_pid()
        terminated(dropped)
        close_old_connections()  # what Django does as a request starts
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.assertNotEqual(cursor.fetchone()[0], dropped)
