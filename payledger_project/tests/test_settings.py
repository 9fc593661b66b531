import os
import sqlite3
import subprocess
import sys
from unittest import skipUnless

from django.conf import settings
from django.db import connection
from django.test import SimpleTestCase, TestCase

SETUP = "import django; django.setup(); print('started')"


def start_django(**environment: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="payledger_project.settings", **environment)
    return subprocess.run(
        [sys.executable, "-c", SETUP],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
    )


class ProductionSettingsTests(SimpleTestCase):
    def test_production_refuses_to_start_without_a_secret_key(self):
        result = start_django(DEBUG="false")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("SECRET_KEY must be set", result.stderr)

    def test_production_starts_with_a_secret_key(self):
        result = start_django(DEBUG="false", SECRET_KEY="a-real-secret")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("started", result.stdout)


@skipUnless(connection.vendor == "sqlite", "SQLite settings")
class SQLiteSettingsTests(TestCase):
    def test_sqlite_runs_in_wal_mode(self):
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            self.assertEqual(cursor.fetchone()[0], "wal")

    def test_sqlite_syncs_every_commit_to_disk(self):
        # FULL (2): a commit acknowledged to a client survives a power loss.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous")
            self.assertEqual(cursor.fetchone()[0], 2)

    def test_sqlite_transactions_take_the_write_lock_at_begin(self):
        # This test runs inside a transaction that has written nothing yet;
        # IMMEDIATE mode means it already holds the write lock all the same.
        other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
        self.addCleanup(other.close)
        with self.assertRaisesMessage(sqlite3.OperationalError, "database is locked"):
            other.execute("BEGIN IMMEDIATE")
