"""Data migrations, run forward over rows written by the schema before them."""

from io import StringIO

from django.core.management import call_command
from django.test import SimpleTestCase

from testing.migrations import MigrationTestCase


class IdempotencyKeysPerUserMigrationTests(MigrationTestCase):
    before = [("payments", "0007_phonecharge_reference"), ("sellers", "0001_initial")]
    after = [("payments", "0008_idempotency_keys_per_user")]

    def test_a_sellers_key_in_its_replay_window_moves_to_the_sellers_user(self):
        seller = self.seller("alice")
        self.old.get_model("payments", "IdempotencyKey").objects.create(
            seller=seller, key="k-1", request_fingerprint="f", response_status=201, response_body={}
        )
        key = self.migrate_forward().get_model("payments", "IdempotencyKey").objects.get()
        self.assertEqual((key.key, key.user_id), ("k-1", seller.user_id))


class PerSellerIndexesMigrationTests(SimpleTestCase):
    """Migration 0013 drops the one-column seller indexes and nothing else: an
    AlterField would also drop and re-add each table's foreign key to sellers,
    which scans the whole journal while charges wait."""

    # sqlmigrate reads the schema; outside a transaction, as the migration runs.
    databases = {"default"}

    def sql(self) -> str:
        output = StringIO()
        call_command("sqlmigrate", "payments", "0013", stdout=output)
        return output.getvalue()

    def test_the_foreign_keys_to_sellers_are_left_alone(self):
        self.assertNotIn("CONSTRAINT", self.sql())

    def test_every_index_is_built_or_dropped_concurrently(self):
        statements = [line for line in self.sql().splitlines() if "INDEX" in line]
        self.assertEqual(len(statements), 5)
        for statement in statements:
            self.assertIn("INDEX CONCURRENTLY", statement)
