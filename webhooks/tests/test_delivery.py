"""One worker step at a time (``webhook_deliver_next``) against a local receiver."""

import json
import threading
import time
from datetime import timedelta
from unittest import mock

from django.core.management import call_command
from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings
from django.urls import reverse
from django.utils import timezone

from payments.services import credit_request_create, phone_charge_create
from testing.factories import client_for, seller_make
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    webhook_deliver_next,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_retry_delay,
)
from webhooks.tests.receiver import HANG, Receiver

PHONE = "+14155550123"


class DeliveryTests(TestCase):
    def setUp(self):
        self.answers: list[int | str] = []
        self.receiver = Receiver(lambda event_id, nth: self.answers.pop(0) if self.answers else 200)
        self.addCleanup(self.receiver.stop)
        self.seller = seller_make(balance=1_000)
        self.endpoint = webhook_endpoint_create(
            seller=self.seller, url=self.receiver.url("hooks"), event_types=["phone_charge.created"]
        )
        self.receiver.secrets["hooks"] = self.endpoint.secret

    def charge(self, amount: int = 1):
        return phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=amount)

    def make_due(self) -> None:
        WebhookEndpoint.objects.update(next_attempt_at=timezone.now())

    def test_an_event_is_posted_as_the_feed_shows_it_signed_with_its_id(self):
        self.charge()
        self.assertTrue(webhook_deliver_next())
        received = self.receiver.received[0]
        feed = client_for(self.seller.user).get(
            reverse("event-list"), {"type": "phone_charge.created"}
        )
        self.assertEqual(json.loads(received.body), feed.json()["results"][0])
        self.assertEqual(received.event_id, feed.json()["results"][0]["id"])
        self.assertTrue(received.signature_valid)

    def test_a_delivered_event_moves_the_cursor_and_records_the_attempt(self):
        charge = self.charge()
        webhook_deliver_next()
        self.endpoint.refresh_from_db()
        delivery = WebhookDelivery.objects.get()
        self.assertEqual(self.endpoint.last_event_id, delivery.event_id)
        self.assertEqual(delivery.event.payload["id"], charge.pk)
        self.assertEqual(
            (delivery.delivered, delivery.status_code, delivery.attempt), (True, 200, 1)
        )

    def test_nothing_due_does_nothing(self):
        self.assertFalse(webhook_deliver_next())
        self.assertEqual(self.receiver.arrivals, [])

    def test_an_error_answer_is_retried_later_and_the_cursor_waits(self):
        self.answers = [500]
        self.charge()
        before = self.endpoint.last_event_id
        webhook_deliver_next()
        self.endpoint.refresh_from_db()
        self.assertEqual(self.endpoint.last_event_id, before)
        self.assertEqual(self.endpoint.failed_attempts, 1)
        self.assertGreater(self.endpoint.next_attempt_at, timezone.now() - timedelta(seconds=1))
        self.make_due()
        webhook_deliver_next()
        attempts = WebhookDelivery.objects.order_by("id")
        self.assertEqual([(d.attempt, d.status_code) for d in attempts], [(1, 500), (2, 200)])

    def test_a_retry_waits_for_its_backoff(self):
        self.answers = [500]
        self.charge()
        webhook_deliver_next()
        WebhookEndpoint.objects.update(next_attempt_at=timezone.now() + timedelta(hours=1))
        self.assertFalse(webhook_deliver_next())
        self.assertEqual(len(self.receiver.arrivals), 1)

    def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(self):
        self.answers = [HANG]
        self.charge()
        webhook_deliver_next()
        delivery = WebhookDelivery.objects.get()
        self.assertEqual((delivery.delivered, delivery.error), (False, "deadline exceeded"))

    def test_a_redirect_is_not_followed(self):
        self.answers = [302]
        self.charge()
        webhook_deliver_next()
        self.assertEqual(len(self.receiver.arrivals), 1)
        self.assertFalse(WebhookDelivery.objects.get().delivered)

    @override_settings(PAYLEDGER_WEBHOOK_RETRY_WINDOW=0)
    def test_an_endpoint_failing_past_the_retry_window_is_marked_failing_and_left_alone(self):
        self.answers = [500, 500]
        self.charge()
        webhook_deliver_next()
        self.make_due()
        webhook_deliver_next()
        self.endpoint.refresh_from_db()
        self.assertEqual(self.endpoint.status, WebhookEndpoint.Status.FAILING)
        self.assertIsNotNone(self.endpoint.failing_since)
        self.assertFalse(webhook_deliver_next())

    def test_events_of_types_not_subscribed_are_skipped(self):
        credit_request_create(seller=self.seller, amount=5)
        self.charge()
        webhook_deliver_next()
        self.assertEqual(len(self.receiver.arrivals), 1)
        self.assertEqual(WebhookDelivery.objects.get().event.type, "phone_charge.created")

    def test_the_address_is_checked_again_at_delivery(self):
        self.charge()
        with override_settings(PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK=False):
            webhook_deliver_next()
        self.assertEqual(self.receiver.arrivals, [])
        delivery = WebhookDelivery.objects.get()
        self.assertFalse(delivery.delivered)
        self.assertTrue(delivery.error.startswith("refused"))


def while_posting(during):
    """Patch the worker's post: run ``during(endpoint, event)`` while it waits for the
    receiver, then answer as a receiver would have (delivered, 200)."""

    def post(endpoint, event):
        during(endpoint, event)
        return services._Outcome(True, 200, None, 5)

    return mock.patch("webhooks.services._event_post", side_effect=post)


class LeaseTests(TestCase):
    """A worker leases an endpoint for one delivery instead of holding it locked."""

    def setUp(self):
        self.receiver = Receiver(lambda event_id, nth: 200)
        self.addCleanup(self.receiver.stop)
        self.seller = seller_make(balance=1_000)
        self.endpoint = webhook_endpoint_create(
            seller=self.seller, url=self.receiver.url("hooks"), event_types=["phone_charge.created"]
        )
        self.receiver.secrets["hooks"] = self.endpoint.secret

    def charge(self) -> int:
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)
        return WebhookEndpoint.objects.get().seller.events.latest("id").pk

    def test_a_leased_endpoint_is_not_claimed_again_while_its_lease_runs(self):
        self.charge()
        claimed_meanwhile = []
        with while_posting(
            lambda endpoint, event: claimed_meanwhile.append(webhook_deliver_next())
        ):
            self.assertTrue(webhook_deliver_next())
        self.assertEqual(claimed_meanwhile, [False])

    def test_a_late_outcome_after_the_lease_was_reclaimed_changes_nothing(self):
        first, second = self.charge(), self.charge()

        def lease_runs_out_and_another_worker_delivers_both(endpoint, event):
            later = timezone.now() + timedelta(hours=1)
            with (
                mock.patch("django.utils.timezone.now", return_value=later),
                mock.patch("webhooks.services._event_post", real_event_post),
            ):
                self.assertTrue(webhook_deliver_next())
                self.assertTrue(webhook_deliver_next())

        real_event_post = services._event_post
        with while_posting(lease_runs_out_and_another_worker_delivers_both):
            self.assertTrue(webhook_deliver_next())
        self.endpoint.refresh_from_db()
        self.assertEqual(self.endpoint.last_event_id, second)
        self.assertEqual(
            list(WebhookDelivery.objects.order_by("id").values_list("event_id", "attempt")),
            [(first, 1), (second, 1)],
        )
        self.assertEqual(self.receiver.arrivals, [("hooks", first), ("hooks", second)])

    def test_an_endpoint_deleted_during_its_delivery_records_nothing(self):
        self.charge()
        with while_posting(lambda endpoint, event: webhook_endpoint_delete(endpoint=endpoint)):
            self.assertTrue(webhook_deliver_next())
        self.assertFalse(WebhookEndpoint.objects.exists())
        self.assertFalse(WebhookDelivery.objects.exists())

    def test_after_the_outcome_the_endpoint_is_due_for_its_next_event(self):
        self.charge()
        second = self.charge()
        with while_posting(lambda endpoint, event: None):
            webhook_deliver_next()
            self.assertTrue(webhook_deliver_next())
        self.endpoint.refresh_from_db()
        self.assertEqual(self.endpoint.last_event_id, second)


class NoTransactionAcrossThePostTests(TransactionTestCase):
    # Not in a TestCase transaction: whether the post runs inside one is the question.
    def test_the_post_runs_outside_any_transaction(self):
        seller = seller_make(balance=10)
        webhook_endpoint_create(
            seller=seller, url="http://127.0.0.1:8400/hooks", event_types=["phone_charge.created"]
        )
        phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=1)
        in_transaction = []
        with while_posting(
            lambda endpoint, event: in_transaction.append(connection.in_atomic_block)
        ):
            self.assertTrue(webhook_deliver_next())
        self.assertEqual(in_transaction, [False])
        self.assertEqual(WebhookDelivery.objects.get().delivered, True)


class DeleteWhileRecordingTests(TransactionTestCase):
    # Real transactions: the delete runs while a worker's outcome transaction is open.
    def test_a_delete_racing_the_record_of_an_outcome_removes_the_endpoint_and_its_attempt(
        self,
    ):
        seller = seller_make(balance=10)
        endpoint = webhook_endpoint_create(
            seller=seller, url="http://127.0.0.1:8400/hooks", event_types=["phone_charge.created"]
        )
        phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=1)
        recording = threading.Event()
        create_attempt = WebhookDelivery.objects.create

        def create_slowly(**fields):
            recording.set()
            time.sleep(0.5)  # the delete, meanwhile, reaches the endpoint's row
            return create_attempt(**fields)

        def worker():
            try:
                webhook_deliver_next()
            finally:
                connection.close()

        with (
            while_posting(lambda endpoint, event: None),
            mock.patch.object(WebhookDelivery.objects, "create", side_effect=create_slowly),
        ):
            delivering = threading.Thread(target=worker)
            delivering.start()
            self.assertTrue(recording.wait(10))
            webhook_endpoint_delete(endpoint=endpoint)
            delivering.join()
        self.assertFalse(WebhookEndpoint.objects.exists())
        self.assertFalse(WebhookDelivery.objects.exists())


class DeliverWebhooksCommandTests(TransactionTestCase):
    # Not in a TestCase transaction: the command closes stale connections between steps.
    def test_until_idle_delivers_what_is_due_and_exits(self):
        receiver = Receiver(lambda event_id, nth: 200)
        self.addCleanup(receiver.stop)
        seller = seller_make(balance=10)
        webhook_endpoint_create(
            seller=seller, url=receiver.url("hooks"), event_types=["phone_charge.created"]
        )
        for amount in (1, 2):
            phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=amount)
        with self.assertLogs("webhooks.management.commands.deliver_webhooks") as logs:
            call_command("deliver_webhooks", "--until-idle")
        self.assertEqual(len(receiver.arrivals), 2)
        self.assertIn("2 deliveries attempted", logs.output[-1])


class RetryDelayTests(TestCase):
    @override_settings(PAYLEDGER_WEBHOOK_RETRY_BASE=10, PAYLEDGER_WEBHOOK_RETRY_CAP=3600)
    def test_the_delay_doubles_with_each_failure_within_its_jitter(self):
        for failures, ceiling in [(1, 10), (2, 20), (5, 160), (20, 3600)]:
            with self.subTest(failures):
                delay = webhook_retry_delay(failures).total_seconds()
                self.assertTrue(ceiling / 2 <= delay <= ceiling, delay)

    @override_settings(PAYLEDGER_WEBHOOK_RETRY_BASE=10, PAYLEDGER_WEBHOOK_RETRY_CAP=3600)
    def test_the_delay_is_jittered(self):
        with mock.patch("webhooks.services.random.uniform", return_value=7.5) as uniform:
            self.assertEqual(webhook_retry_delay(1), timedelta(seconds=7.5))
        uniform.assert_called_once_with(5.0, 10)
