"""The benchmarks' scratch databases (bench/scratch.py): named by a prefix setting,
marked when created, and never dropped unless the mark is there. Runs against the
server the tests use (as `make bench` runs against the machine's), under a prefix of
its own per test."""

import os
import uuid
from contextlib import closing
from unittest import mock

import psycopg2
from django.db import connection
from django.test import SimpleTestCase

from bench.run import database_names
from bench.scratch import (
    DEFAULT_PREFIX,
    MARKER,
    PREFIX_VARIABLE,
    ScratchDatabaseError,
    db_prefix,
    scratch_databases_recreate,
)


def suite_server() -> dict:
    """The PostgreSQL server the suite runs on, as bench/scratch.py takes a server."""
    settings_dict = connection.settings_dict
    server = {"host": settings_dict["HOST"], "user": settings_dict["USER"]}
    if settings_dict["PORT"]:
        server["port"] = settings_dict["PORT"]
    if settings_dict["PASSWORD"]:
        server["password"] = settings_dict["PASSWORD"]
    return server


SERVER = suite_server()


def admin_connection():
    connection = psycopg2.connect(**SERVER, dbname="postgres")
    connection.autocommit = True
    return closing(connection)


def database_oid(name: str) -> int | None:
    """The database's oid (a dropped and recreated database has a new one), or None."""
    with admin_connection() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_database WHERE datname = %s", [name])
        row = cursor.fetchone()
    return row[0] if row else None


class ScratchDatabaseTests(SimpleTestCase):
    def setUp(self):
        self.prefix = f"payledger_t{uuid.uuid4().hex[:10]}_"
        self.addCleanup(self.drop_ours)

    def drop_ours(self):
        with admin_connection() as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [self.prefix]
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP DATABASE "{name}"')

    def create_foreign(self, name: str) -> None:
        """A database someone else made under the benchmark's name: no mark, one row."""
        with admin_connection() as connection, connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        theirs = closing(psycopg2.connect(**SERVER, dbname=name))
        with theirs as connection, connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE theirs (x int); INSERT INTO theirs VALUES (1)")

    def test_a_database_the_bench_did_not_create_is_left_alone(self):
        names = list(database_names(self.prefix).values())
        self.create_foreign(names[1])
        foreign_oid = database_oid(names[1])

        with self.assertRaises(ScratchDatabaseError) as refusal:
            scratch_databases_recreate(names, server=SERVER)

        message = str(refusal.exception)
        self.assertEqual(len(message.splitlines()), 1)
        self.assertIn(f"database {names[1]} exists and was not created by the benchmark", message)
        self.assertIn(PREFIX_VARIABLE, message)
        self.assertEqual(database_oid(names[1]), foreign_oid)
        theirs = closing(psycopg2.connect(**SERVER, dbname=names[1]))
        with theirs as connection, connection.cursor() as cursor:
            cursor.execute("SELECT x FROM theirs")
            self.assertEqual(cursor.fetchall(), [(1,)])
        # Refused before doing anything: the other names were not created either.
        self.assertIsNone(database_oid(names[0]))
        self.assertIsNone(database_oid(names[2]))

    def test_a_refusal_drops_none_of_the_benchs_own_databases(self):
        ours, theirs = f"{self.prefix}sql", f"{self.prefix}bare"
        scratch_databases_recreate([ours], server=SERVER)
        our_oid = database_oid(ours)
        self.create_foreign(theirs)

        with self.assertRaises(ScratchDatabaseError):
            scratch_databases_recreate([ours, theirs], server=SERVER)

        self.assertEqual(database_oid(ours), our_oid)

    def test_a_database_the_bench_created_is_dropped_and_recreated(self):
        name = f"{self.prefix}app"
        [url] = scratch_databases_recreate([name], server=SERVER)
        first_oid = database_oid(name)
        with (
            closing(psycopg2.connect(url)) as connection,
            connection,
            connection.cursor() as cursor,
        ):
            cursor.execute("CREATE TABLE leftover (x int)")

        self.assertEqual(scratch_databases_recreate([name], server=SERVER), [url])

        self.assertNotIn(database_oid(name), (None, first_oid))
        with closing(psycopg2.connect(url)) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('leftover')")
            self.assertEqual(cursor.fetchone(), (None,))
            cursor.execute("SELECT shobj_description(%s, 'pg_database')", [database_oid(name)])
            self.assertEqual(cursor.fetchone(), (MARKER,))


class PrefixTests(SimpleTestCase):
    def test_the_default_prefix_names_the_databases_as_before(self):
        with mock.patch.dict(os.environ):
            os.environ.pop(PREFIX_VARIABLE, None)
            prefix = db_prefix()
        self.assertEqual(prefix, DEFAULT_PREFIX)
        self.assertEqual(
            list(database_names(prefix).values()),
            ["payledger_bench_sql", "payledger_bench_bare", "payledger_bench_app"],
        )

    def test_the_environment_variable_changes_the_names(self):
        with mock.patch.dict(os.environ, {PREFIX_VARIABLE: "ci_job_42_"}):
            self.assertEqual(
                list(database_names(db_prefix()).values()),
                ["ci_job_42_sql", "ci_job_42_bare", "ci_job_42_app"],
            )

    def test_the_flag_overrides_the_environment_variable(self):
        with mock.patch.dict(os.environ, {PREFIX_VARIABLE: "ci_job_42_"}):
            self.assertEqual(db_prefix("mine_"), "mine_")

    def test_a_prefix_that_is_not_a_safe_name_is_refused_in_one_line(self):
        for prefix in ("", "bench-", 'x"; DROP DATABASE postgres; --', "é_", "a" * 51):
            with self.subTest(prefix=prefix), self.assertRaises(ScratchDatabaseError) as refusal:
                db_prefix(prefix)
            self.assertEqual(len(str(refusal.exception).splitlines()), 1)
            self.assertIn(PREFIX_VARIABLE, str(refusal.exception))
