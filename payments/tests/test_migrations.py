"""Data migrations, run forward over rows written by the schema before them."""

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
