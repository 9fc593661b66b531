"""The PostgreSQL backend: its health check (a dropped connection is replaced
before a request uses it, and a healthy one is checked without a query) and its
prepared statements (planned once per connection, unless behind a pooler)."""

import time
from contextlib import suppress
from unittest import mock

from django.db import OperationalError, close_old_connections, connection, transaction
from django.test import SimpleTestCase, TransactionTestCase
from django.test.utils import CaptureQueriesContext

from payledger_project.postgresql.prepared import PreparedStatement, StatementInvalidated
from testing.database import from_outside


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


def doubled(statement: PreparedStatement, number: int) -> int:
    with connection.cursor() as cursor:
        statement.execute(cursor, {"number": number})
        return cursor.fetchone()[0]


def prepared_here(statement: PreparedStatement) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [statement.name]
        )
        return cursor.fetchone()[0]


def on_the_raw_connection(sql: str) -> None:
    """``sql`` in this session, behind Django's back, as a pooler or an operator might."""
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(sql)


def double_statement() -> PreparedStatement:
    return PreparedStatement("payledger_test_double", "SELECT %(number)s::int * 2")


RETYPED = "payledger_test_retyped"


def word_statement() -> PreparedStatement:
    return PreparedStatement(
        "payledger_test_word", f"SELECT word FROM {RETYPED} WHERE %(number)s::int > 0"
    )


def the_word(statement: PreparedStatement) -> str:
    with connection.cursor() as cursor:
        statement.execute(cursor, {"number": 1})
        return cursor.fetchone()[0]


class PreparedStatementTests(TransactionTestCase):
    def setUp(self):
        # A connection of its own, so no earlier test has prepared anything on it.
        connection.close()
        self.addCleanup(connection.close)

    def test_a_statement_is_prepared_once_per_connection_and_then_executed(self):
        double = double_statement()
        with CaptureQueriesContext(connection) as queries:
            results = [doubled(double, 2), doubled(double, 3)]
        self.assertEqual(results, [4, 6])
        self.assertEqual(
            [query["sql"] for query in queries],
            [f"EXECUTE {double.name} (2)", f"EXECUTE {double.name} (3)"],
        )
        self.assertEqual(prepared_here(double), 1)

    def test_a_new_connection_prepares_it_again(self):
        double = double_statement()
        doubled(double, 2)
        connection.close()
        self.assertEqual(doubled(double, 5), 10)
        self.assertEqual(prepared_here(double), 1)

    def test_a_session_that_already_has_the_statement_uses_it(self):
        double = double_statement()
        on_the_raw_connection(double.prepare_sql)
        self.assertEqual(doubled(double, 6), 12)

    def test_a_statement_the_session_lost_is_sent_as_written_then_prepared_again(self):
        double = double_statement()
        doubled(double, 1)
        on_the_raw_connection("DEALLOCATE ALL")
        self.assertEqual(doubled(double, 7), 14)
        self.assertEqual(doubled(double, 8), 16)
        self.assertEqual(prepared_here(double), 1)

    def test_inside_a_transaction_an_unprepared_statement_is_sent_as_written(self):
        double = double_statement()
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            self.assertEqual(doubled(double, 4), 8)
        self.assertEqual([query["sql"] for query in queries], ["SELECT 4::int * 2"])
        self.assertEqual(prepared_here(double), 0)

    def test_behind_a_transaction_pooler_the_statement_is_sent_as_written(self):
        double = double_statement()
        with (
            mock.patch.dict(connection.settings_dict, {"DISABLE_SERVER_SIDE_CURSORS": True}),
            CaptureQueriesContext(connection) as queries,
        ):
            self.assertEqual(doubled(double, 4), 8)
        self.assertEqual([query["sql"] for query in queries], ["SELECT 4::int * 2"])
        self.assertEqual(prepared_here(double), 0)

    def test_connections_closed_after_each_request_do_not_prepare(self):
        double = double_statement()
        with mock.patch.dict(connection.settings_dict, {"CONN_MAX_AGE": 0}):
            self.assertEqual(doubled(double, 4), 8)
        self.assertEqual(prepared_here(double), 0)

    def test_a_literal_percent_sign_reaches_the_prepared_statement_once(self):
        modulo = PreparedStatement("payledger_test_modulo", "SELECT %(number)s::int %% 3")
        with connection.cursor() as cursor:
            modulo.execute(cursor, {"number": 7})
            self.assertEqual(cursor.fetchone()[0], 1)

    def test_a_connection_lost_while_preparing_is_djangos_operational_error(self):
        double = double_statement()
        connection.ensure_connection()
        terminated(backend_pid())
        with self.assertRaises(OperationalError), connection.cursor() as cursor:
            double.execute(cursor, {"number": 1})
        self.assertNotIn(double.name, connection.prepared_statements)

    def a_table_whose_column_changes_type(self) -> None:
        from_outside(f"CREATE TABLE {RETYPED} AS SELECT 'one'::varchar(10) AS word")
        self.addCleanup(from_outside, f"DROP TABLE {RETYPED}")

    def its_column_retyped(self) -> None:
        """What a migration changing a max_length does, from another session."""
        from_outside(f"ALTER TABLE {RETYPED} ALTER COLUMN word TYPE varchar(20)")

    def test_a_statement_whose_result_a_schema_change_retyped_is_sent_as_written(self):
        self.a_table_whose_column_changes_type()
        word = word_statement()
        the_word(word)
        self.its_column_retyped()
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(the_word(word), "one")
        self.assertEqual(queries[-1]["sql"], word.sql % {"number": 1})

    def test_a_statement_whose_result_a_schema_change_retyped_is_prepared_afresh(self):
        self.a_table_whose_column_changes_type()
        word = word_statement()
        the_word(word)
        self.its_column_retyped()
        the_word(word)
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(the_word(word), "one")
        self.assertEqual([query["sql"] for query in queries], [f"EXECUTE {word.name} (1)"])
        self.assertEqual(prepared_here(word), 1)

    def test_inside_a_transaction_a_retyped_statement_asks_for_a_retry(self):
        self.a_table_whose_column_changes_type()
        word = word_statement()
        the_word(word)
        self.its_column_retyped()
        with self.assertRaises(StatementInvalidated), transaction.atomic():
            the_word(word)

    def test_the_retry_of_a_transaction_that_met_a_retyped_statement_answers(self):
        self.a_table_whose_column_changes_type()
        word = word_statement()
        the_word(word)
        self.its_column_retyped()
        with suppress(StatementInvalidated), transaction.atomic():
            the_word(word)
        with transaction.atomic():
            self.assertEqual(the_word(word), "one")
        # Outside one: the stale statement is deallocated, then prepared afresh.
        self.assertEqual(the_word(word), "one")
        self.assertEqual(the_word(word), "one")
        self.assertEqual(prepared_here(word), 1)

    def test_inside_a_transaction_a_statement_the_session_lost_asks_for_a_retry(self):
        double = double_statement()
        doubled(double, 1)
        on_the_raw_connection("DEALLOCATE ALL")
        with self.assertRaises(StatementInvalidated), transaction.atomic():
            doubled(double, 2)


class PreparedStatementNameTests(SimpleTestCase):
    def test_two_texts_under_one_name_are_two_statements(self):
        first = PreparedStatement("payledger_test", "SELECT 1")
        second = PreparedStatement("payledger_test", "SELECT 2")
        self.assertNotEqual(first.name, second.name)
