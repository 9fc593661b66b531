"""Deliveries signed as Standard Webhooks says, checked by the published
``standardwebhooks`` library (an implementation that is not ours) on what a
local receiver really got."""

import base64
import hashlib
import hmac
import json
import time
from datetime import date

from django.test import TestCase
from django.utils import timezone
from standardwebhooks import Webhook

from payments.services import phone_charge_create
from testing.factories import seller_make
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_deliver_next, webhook_endpoint_create
from webhooks.signing import LEGACY_HEADERS_END, webhook_headers, webhook_secret_generate
from webhooks.tests.receiver import Receiver

PHONE = "+14155550123"
# A secret as PayLedger issued them before Standard Webhooks: whsec_ and 64 hex digits.
SECRET_BEFORE = "whsec_" + "0123456789abcdef" * 4


class StandardWebhooksDeliveryTests(TestCase):
    def setUp(self):
        self.answers: list[int] = []
        self.receiver = Receiver(lambda event_id, nth: self.answers.pop(0) if self.answers else 200)
        self.addCleanup(self.receiver.stop)
        self.seller = seller_make(balance=1_000)
        self.endpoint = webhook_endpoint_create(
            seller=self.seller, url=self.receiver.url("hooks"), event_types=["phone_charge.created"]
        )

    def deliver_a_charge(self):
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)
        webhook_deliver_next()
        return self.receiver.received[-1]

    def test_the_library_verifies_a_real_delivery_and_reads_the_event(self):
        received = self.deliver_a_charge()
        event = Webhook(self.endpoint.secret).verify(received.body, received.headers)
        self.assertEqual(event, json.loads(received.body))
        self.assertEqual(event["type"], "phone_charge.created")

    def test_the_webhook_id_is_the_event_id(self):
        received = self.deliver_a_charge()
        self.assertEqual(received.headers["webhook-id"], str(json.loads(received.body)["id"]))

    def test_the_timestamp_is_the_attempt_in_unix_seconds(self):
        before = int(time.time())
        received = self.deliver_a_charge()
        self.assertTrue(before <= int(received.headers["webhook-timestamp"]) <= time.time())

    def test_a_retry_carries_the_same_webhook_id_and_verifies_again(self):
        self.answers = [500]
        first = self.deliver_a_charge()
        WebhookEndpoint.objects.update(next_attempt_at=timezone.now())
        webhook_deliver_next()
        retry = self.receiver.received[-1]
        self.assertEqual(retry.headers["webhook-id"], first.headers["webhook-id"])
        Webhook(self.endpoint.secret).verify(retry.body, retry.headers)

    def test_a_new_endpoint_gets_a_whsec_secret_of_32_random_bytes(self):
        secret = self.endpoint.secret
        self.assertTrue(secret.startswith("whsec_"))
        self.assertEqual(len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)), 32)
        self.assertNotEqual(webhook_secret_generate(), webhook_secret_generate())

    def test_a_secret_issued_before_standard_webhooks_keeps_working_unchanged(self):
        WebhookEndpoint.objects.filter(pk=self.endpoint.pk).update(secret=SECRET_BEFORE)
        received = self.deliver_a_charge()
        Webhook(SECRET_BEFORE).verify(received.body, received.headers)

    def test_the_deprecated_headers_still_verify_the_old_way_until_their_end_date(self):
        received = self.deliver_a_charge()
        fields = dict(
            part.split("=", 1) for part in received.headers["PayLedger-Signature"].split(",")
        )
        expected = hmac.new(
            self.endpoint.secret.encode(),
            fields["t"].encode() + b"." + received.body,
            hashlib.sha256,
        ).hexdigest()
        self.assertEqual(fields["v1"], expected)
        self.assertEqual(received.headers["PayLedger-Event-Id"], received.headers["webhook-id"])


class SignatureHeaderTests(TestCase):
    def headers(self, today: date) -> dict[str, str]:
        return webhook_headers(
            secrets=[webhook_secret_generate()],
            message_id="7",
            timestamp=int(time.time()),
            body=b"{}",
            today=today,
        )

    def test_the_deprecated_headers_are_sent_the_day_before_their_end_date(self):
        headers = self.headers(date.fromordinal(LEGACY_HEADERS_END.toordinal() - 1))
        self.assertIn("PayLedger-Signature", headers)
        self.assertIn("PayLedger-Event-Id", headers)

    def test_the_deprecated_headers_stop_on_their_end_date(self):
        headers = self.headers(LEGACY_HEADERS_END)
        self.assertEqual(set(headers), {"webhook-id", "webhook-timestamp", "webhook-signature"})

    def test_two_secrets_give_two_signatures_each_verifying_alone(self):
        current, previous = webhook_secret_generate(), webhook_secret_generate()
        headers = webhook_headers(
            secrets=[current, previous],
            message_id="7",
            timestamp=int(time.time()),
            body=b"{}",
            today=LEGACY_HEADERS_END,
        )
        self.assertEqual(len(headers["webhook-signature"].split(" ")), 2)
        for secret in (current, previous):
            Webhook(secret).verify(b"{}", headers)
