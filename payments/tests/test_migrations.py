"""Data migrations, run forward over rows written by the schema before them."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase

BEFORE = [("payments", "0007_phonecharge_reference"), ("sellers", "0001_initial")]
AFTER = [("payments", "0008_idempotency_keys_per_user")]


class IdempotencyKeysPerUserMigrationTests(TransactionTestCase):
    def setUp(self):
        executor = MigrationExecutor(connection)
        self.addCleanup(self.migrate_to_latest)
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps
        user = old.get_model("auth", "User").objects.create(username="alice")
        seller = old.get_model("sellers", "Seller").objects.create(user=user, name="Alice")
        old.get_model("payments", "IdempotencyKey").objects.create(
            seller=seller, key="k-1", request_fingerprint="f", response_status=201, response_body={}
        )
        self.user_id = user.pk

    def migrate_to_latest(self):
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    def test_a_sellers_key_in_its_replay_window_moves_to_the_sellers_user(self):
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        key = new.get_model("payments", "IdempotencyKey").objects.get()
        self.assertEqual((key.key, key.user_id), ("k-1", self.user_id))
