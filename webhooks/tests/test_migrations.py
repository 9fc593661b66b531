"""Data migrations, run forward over rows written by the schema before them."""

from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase


class MigrationTestCase(TransactionTestCase):
    """Migrate back to ``before``, write rows with that schema, then run forward."""

    before: list[tuple[str, str]]
    after: list[tuple[str, str]]

    def setUp(self):
        self.executor = MigrationExecutor(connection)
        self.addCleanup(self.migrate_to_latest)
        self.executor.migrate(self.before)
        self.old = self.executor.loader.project_state(self.before).apps

    def migrate_to_latest(self):
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    def migrate_forward(self):
        executor = MigrationExecutor(connection)
        executor.migrate(self.after)
        return executor.loader.project_state(self.after).apps

    def seller(self, name: str):
        user = self.old.get_model("auth", "User").objects.create(username=name)
        return self.old.get_model("sellers", "Seller").objects.create(user=user, name=name)


class DuplicateUrlsMigrationTests(MigrationTestCase):
    before = [("webhooks", "0001_initial")]
    after = [("webhooks", "0003_endpoint_url_once_per_seller")]

    def test_a_sellers_copies_of_one_url_merge_into_its_oldest_endpoint(self):
        Endpoint = self.old.get_model("webhooks", "WebhookEndpoint")
        alice, bob = self.seller("alice"), self.seller("bob")
        url = "https://shop.example.com/hooks"
        for seller, types in [
            (alice, ["phone_charge.created"]),
            (alice, ["credit_request.approved"]),
            (alice, ["phone_charge.created"]),
            (bob, ["phone_charge.created"]),
        ]:
            Endpoint.objects.create(seller=seller, url=url, event_types=types, secret="whsec_x")
        oldest = Endpoint.objects.filter(seller=alice).order_by("pk").first().pk
        endpoints = self.migrate_forward().get_model("webhooks", "WebhookEndpoint")
        self.assertEqual(
            sorted(endpoints.objects.values_list("seller__name", "pk", "event_types")),
            [
                ("alice", oldest, ["credit_request.approved", "phone_charge.created"]),
                ("bob", endpoints.objects.get(seller__name="bob").pk, ["phone_charge.created"]),
            ],
        )


class SecretsEncryptedMigrationTests(MigrationTestCase):
    before = [("webhooks", "0003_endpoint_url_once_per_seller")]
    after = [("webhooks", "0004_secrets_encrypted")]

    def test_a_secret_stored_in_clear_is_encrypted_with_the_newest_key(self):
        self.old.get_model("webhooks", "WebhookEndpoint").objects.create(
            seller=self.seller("alice"),
            url="https://shop.example.com/hooks",
            event_types=["phone_charge.created"],
            secret="whsec_in_clear",
        )
        migrated = self.migrate_forward()
        with connection.cursor() as cursor:
            cursor.execute("SELECT secret FROM webhooks_webhookendpoint")
            [(stored,)] = cursor.fetchall()
        newest = Fernet(settings.PAYLEDGER_WEBHOOK_SECRET_KEYS[0])
        self.assertEqual(newest.decrypt(stored.encode()), b"whsec_in_clear")
        endpoints = migrated.get_model("webhooks", "WebhookEndpoint").objects
        self.assertEqual(endpoints.get().secret, "whsec_in_clear")
