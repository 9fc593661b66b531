"""Signing secrets encrypted at rest: the table holds Fernet tokens made with the keys
from the environment; the code, the signatures and the seller see the secret."""

from io import StringIO

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import TestCase, override_settings

from payments.services import phone_charge_create
from testing.factories import seller_make
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_deliver_next, webhook_endpoint_create
from webhooks.tests.receiver import Receiver


def stored_secrets() -> list[str]:
    """The secret column as a copy of the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhookendpoint ORDER BY id")
        return [secret for (secret,) in cursor.fetchall()]


class SecretsAtRestTests(TestCase):
    def setUp(self):
        self.endpoint = webhook_endpoint_create(
            seller=seller_make(),
            url="http://127.0.0.1:8400/h",
            event_types=["phone_charge.created"],
        )

    def test_a_dump_of_the_endpoint_table_holds_no_plain_secret(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM webhooks_webhookendpoint")
            dump = repr(cursor.fetchall())
        self.assertNotIn(self.endpoint.secret, dump)
        self.assertNotIn("whsec_", dump)

    def test_the_stored_secret_opens_only_with_the_key_from_the_environment(self):
        [stored] = stored_secrets()
        key = Fernet(settings.PAYLEDGER_WEBHOOK_SECRET_KEYS[0])
        self.assertEqual(key.decrypt(stored.encode()).decode(), self.endpoint.secret)

    def test_the_endpoint_reads_back_its_plain_secret(self):
        self.assertEqual(WebhookEndpoint.objects.get().secret, self.endpoint.secret)

    def test_a_secret_under_a_key_no_longer_listed_is_refused_naming_the_setting(self):
        with (
            override_settings(PAYLEDGER_WEBHOOK_SECRET_KEYS=[Fernet.generate_key().decode()]),
            self.assertRaisesMessage(ImproperlyConfigured, "PAYLEDGER_WEBHOOK_SECRET_KEYS"),
        ):
            WebhookEndpoint.objects.get()


class SecretRotationTests(TestCase):
    def setUp(self):
        self.old_keys = settings.PAYLEDGER_WEBHOOK_SECRET_KEYS
        self.new_key = Fernet.generate_key().decode()

    def rotate(self, *arguments: str) -> str:
        output = StringIO()
        with override_settings(PAYLEDGER_WEBHOOK_SECRET_KEYS=[self.new_key, *self.old_keys]):
            call_command("rotate_webhook_secrets", *arguments, stdout=output)
        return output.getvalue()

    def test_after_rotation_the_old_key_can_go_and_deliveries_still_verify(self):
        receiver = Receiver(lambda event_id, nth: 200)
        self.addCleanup(receiver.stop)
        seller = seller_make(balance=10)
        endpoint = webhook_endpoint_create(
            seller=seller, url=receiver.url("shop"), event_types=["phone_charge.created"]
        )
        receiver.secrets["shop"] = endpoint.secret
        self.rotate()
        with override_settings(PAYLEDGER_WEBHOOK_SECRET_KEYS=[self.new_key]):
            phone_charge_create(seller_id=seller.pk, phone_number="+14155550123", amount=1)
            self.assertTrue(webhook_deliver_next())
        self.assertTrue(receiver.received[0].signature_valid)

    def test_rotation_encrypts_every_secret_with_the_newest_key_batch_by_batch(self):
        endpoints = [
            webhook_endpoint_create(
                seller=seller_make(),
                url="http://127.0.0.1:8400/h",
                event_types=["phone_charge.created"],
            )
            for _ in range(3)
        ]
        output = self.rotate("--batch-size", "2")
        newest = Fernet(self.new_key)
        self.assertEqual(
            [newest.decrypt(stored.encode()).decode() for stored in stored_secrets()],
            [endpoint.secret for endpoint in endpoints],
        )
        self.assertIn("3 webhook secrets encrypted with the newest key", output)
