"""Rotating an endpoint's signing secret: the new one is shown once, and for the
grace window deliveries verify (with the ``standardwebhooks`` library) under the
old secret and the new; after it, under the new only."""

import threading
import time
from datetime import timedelta

from django.db import connection, transaction
from django.test import TestCase, TransactionTestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework import status
from standardwebhooks import Webhook, WebhookVerificationError

from payments.services import phone_charge_create
from testing.assertions import ErrorShapeAssertions
from testing.factories import client_for, seller_make, staff_make
from webhooks.models import WebhookEndpoint
from webhooks.services import (
    webhook_deliver_next,
    webhook_endpoint_create,
    webhook_endpoint_secret_rotate,
    webhook_secrets_rotate,
)
from webhooks.tests.receiver import Receiver

PHONE = "+14155550123"


class RotateSecretApiTests(ErrorShapeAssertions, TestCase):
    def setUp(self):
        self.seller = seller_make()
        self.endpoint = webhook_endpoint_create(
            seller=self.seller, url="http://127.0.0.1:8400/h", event_types=["phone_charge.created"]
        )
        self.url = reverse("webhook-endpoint-rotate-secret", args=[self.endpoint.pk])

    def test_the_owner_gets_a_new_secret_once_and_when_the_old_one_stops(self):
        before = timezone.now()
        response = client_for(self.seller.user).post(self.url)
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        body = response.json()
        self.endpoint.refresh_from_db()
        self.assertEqual(body["secret"], self.endpoint.secret)
        self.assertTrue(body["secret"].startswith("whsec_"))
        expires = self.endpoint.previous_secret_expires_at
        self.assertAlmostEqual(
            (expires - before).total_seconds(), 24 * 60 * 60, delta=5
        )  # the default window
        shown = client_for(self.seller.user).get(
            reverse("webhook-endpoint-detail", args=[self.endpoint.pk])
        )
        self.assertNotIn("secret", shown.json())
        self.assertNotIn("previous_secret", shown.json())
        self.assertIsNotNone(shown.json()["previous_secret_expires_at"])

    def test_the_old_secret_is_kept_as_the_previous_one(self):
        old = self.endpoint.secret
        client_for(self.seller.user).post(self.url)
        self.endpoint.refresh_from_db()
        self.assertEqual(self.endpoint.previous_secret, old)
        self.assertNotEqual(self.endpoint.secret, old)

    @override_settings(PAYLEDGER_WEBHOOK_SECRET_GRACE_SECONDS=60)
    def test_the_window_comes_from_the_setting(self):
        before = timezone.now()
        client_for(self.seller.user).post(self.url)
        self.endpoint.refresh_from_db()
        window = self.endpoint.previous_secret_expires_at - before
        self.assertAlmostEqual(window.total_seconds(), 60, delta=5)

    def test_another_seller_cannot_rotate_it(self):
        old = self.endpoint.secret
        response = client_for(seller_make().user).post(self.url)
        self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")
        self.endpoint.refresh_from_db()
        self.assertEqual(self.endpoint.secret, old)

    def test_staff_cannot_rotate_a_sellers_secret(self):
        response = client_for(staff_make()).post(self.url)
        self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
        self.assertIsNone(WebhookEndpoint.objects.get().previous_secret)

    def test_without_a_token_nothing_rotates(self):
        response = self.client.post(self.url)
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertIsNone(WebhookEndpoint.objects.get().previous_secret)

    def test_rotating_again_keeps_only_the_secret_just_replaced(self):
        first = self.endpoint.secret
        second = webhook_endpoint_secret_rotate(endpoint=self.endpoint).secret
        third = webhook_endpoint_secret_rotate(endpoint=self.endpoint)
        self.assertEqual(third.previous_secret, second)
        self.assertNotIn(first, {third.secret, third.previous_secret})

    def test_the_previous_secret_is_encrypted_at_rest(self):
        old = self.endpoint.secret
        webhook_endpoint_secret_rotate(endpoint=self.endpoint)
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM webhooks_webhookendpoint")
            dump = repr(cursor.fetchall())
        self.assertNotIn(old, dump)
        self.assertNotIn("whsec_", dump)


class GraceWindowDeliveryTests(TestCase):
    def setUp(self):
        self.receiver = Receiver(lambda event_id, nth: 200)
        self.addCleanup(self.receiver.stop)
        self.seller = seller_make(balance=100)
        endpoint = webhook_endpoint_create(
            seller=self.seller, url=self.receiver.url("h"), event_types=["phone_charge.created"]
        )
        self.old = endpoint.secret
        self.new = webhook_endpoint_secret_rotate(endpoint=endpoint).secret

    def delivered(self):
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)
        webhook_deliver_next()
        return self.receiver.received[-1]

    def test_inside_the_window_the_old_and_the_new_secret_both_verify(self):
        received = self.delivered()
        for secret in (self.old, self.new):
            with self.subTest(secret=secret):
                Webhook(secret).verify(received.body, received.headers)

    def test_after_the_window_only_the_new_secret_verifies(self):
        WebhookEndpoint.objects.update(
            previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
        )
        received = self.delivered()
        Webhook(self.new).verify(received.body, received.headers)
        with self.assertRaises(WebhookVerificationError):
            Webhook(self.old).verify(received.body, received.headers)

    def test_the_deprecated_header_is_signed_with_the_new_secret(self):
        received = self.delivered()
        self.assertEqual(len(received.headers["webhook-signature"].split(" ")), 2)
        self.assertIn("PayLedger-Signature", received.headers)


class RotationDuringReencryptionTests(TransactionTestCase):
    def test_a_secret_rotated_while_the_keys_are_rotated_is_not_written_back_over(self):
        endpoint = webhook_endpoint_create(
            seller=seller_make(),
            url="http://127.0.0.1:8400/h",
            event_types=["phone_charge.created"],
        )
        outcome: list = []

        def reencrypt():
            try:
                outcome.append(webhook_secrets_rotate())
            except Exception as error:  # asserted below, in the test's thread
                outcome.append(error)
            finally:
                connection.close()

        with transaction.atomic():
            rotated = webhook_endpoint_secret_rotate(endpoint=endpoint)
            worker = threading.Thread(target=reencrypt)
            worker.start()
            # Time for the re-encryption to read the row, or to wait for its lock.
            time.sleep(0.5)
        worker.join(timeout=30)
        self.assertEqual(outcome, [1])
        endpoint.refresh_from_db()
        self.assertEqual(
            (endpoint.secret, endpoint.previous_secret), (rotated.secret, rotated.previous_secret)
        )
