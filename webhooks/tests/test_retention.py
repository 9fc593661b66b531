"""Retention (issue 29): `manage.py purge_history` deletes, in short batches, what may
go once old, and never a row the books or a delivery still need."""

from datetime import timedelta
from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payledger_project.batches import in_batches_delete
from payments.models import Event, IdempotencyKey, PhoneCharge, Transaction
from payments.services import phone_charge_create
from testing.factories import seller_make
from webhooks.models import WebhookDelivery, WebhookEndpoint

User = get_user_model()
PHONE = "+14155550123"
LONG_AGO = timezone.now() - timedelta(days=400)


def purge_history(*args: str) -> str:
    out = StringIO()
    call_command("purge_history", *args, stdout=out)
    return out.getvalue()


class PurgeHistoryTests(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.endpoint = WebhookEndpoint.objects.create(
            seller=self.seller,
            url="https://shop.example.com/hooks",
            event_types=["phone_charge.created"],
            secret="whsec_test",
        )
        for _ in range(3):
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=10)
        self.events = list(Event.objects.filter(seller=self.seller).order_by("id"))

    def test_more_days_than_a_date_can_go_back_are_refused(self):
        with self.assertRaisesMessage(CommandError, "Keep 1 to 36500 days, not 10000000."):
            call_command("purge_history", "--deliveries-days", "10000000", stdout=StringIO())

    def attempt(self, event: Event, *, days_ago: int) -> WebhookDelivery:
        return WebhookDelivery.objects.create(
            endpoint=self.endpoint,
            event=event,
            attempt=1,
            delivered=True,
            status_code=200,
            duration_ms=5,
            created_at=timezone.now() - timedelta(days=days_ago),
        )

    def age_events(self) -> None:
        Event.objects.update(created_at=LONG_AGO)

    def test_delivery_attempts_older_than_the_window_go_and_recent_ones_stay(self):
        old, recent = (
            self.attempt(self.events[0], days_ago=91),
            self.attempt(self.events[1], days_ago=1),
        )
        output = purge_history()
        self.assertIn("Deleted 1 delivery attempt(s).", output)
        self.assertEqual(list(WebhookDelivery.objects.values_list("pk", flat=True)), [recent.pk])
        self.assertFalse(WebhookDelivery.objects.filter(pk=old.pk).exists())

    def test_events_are_kept_unless_asked(self):
        self.age_events()
        self.endpoint.last_event_id = self.events[-1].pk
        self.endpoint.save(update_fields=["last_event_id"])
        before = Event.objects.count()
        purge_history()
        self.assertEqual(Event.objects.count(), before)

    def test_old_events_every_endpoint_passed_go_when_asked(self):
        self.age_events()
        self.endpoint.last_event_id = self.events[1].pk
        self.endpoint.save(update_fields=["last_event_id"])
        before = Event.objects.count()
        output = purge_history("--events-days", "365")
        gone = before - Event.objects.count()
        self.assertIn(f"Deleted {gone} delivered event(s).", output)
        self.assertFalse(Event.objects.filter(pk__in=[e.pk for e in self.events[:2]]).exists())

    def test_an_event_an_endpoint_has_yet_to_deliver_is_kept(self):
        self.age_events()
        self.endpoint.last_event_id = self.events[1].pk
        self.endpoint.save(update_fields=["last_event_id"])
        purge_history("--events-days", "365")
        self.assertTrue(Event.objects.filter(pk=self.events[2].pk).exists())

    def test_an_event_a_kept_attempt_names_is_kept(self):
        self.age_events()
        self.endpoint.last_event_id = self.events[-1].pk
        self.endpoint.save(update_fields=["last_event_id"])
        self.attempt(self.events[0], days_ago=1)
        purge_history("--events-days", "365")
        self.assertTrue(Event.objects.filter(pk=self.events[0].pk).exists())

    def test_the_journal_and_charges_are_never_touched(self):
        self.age_events()
        Transaction.objects.update(created_at=LONG_AGO)
        PhoneCharge.objects.update(created_at=LONG_AGO)
        journal, charges = Transaction.objects.count(), PhoneCharge.objects.count()
        purge_history("--events-days", "1", "--deliveries-days", "1")
        self.assertEqual(
            (Transaction.objects.count(), PhoneCharge.objects.count()), (journal, charges)
        )

    def test_expired_idempotency_keys_go(self):
        IdempotencyKey.objects.create(
            user=self.seller.user,
            key="old",
            request_fingerprint="f",
            response_status=201,
            response_body={},
        )
        IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(days=2))
        output = purge_history()
        self.assertIn("Deleted 1 expired idempotency key(s).", output)
        self.assertFalse(IdempotencyKey.objects.exists())

    def test_a_window_under_a_day_is_refused(self):
        with self.assertRaisesMessage(CommandError, "Keep 1 to 36500 days, not 0."):
            purge_history("--deliveries-days", "0")


class InBatchesDeleteTests(TestCase):
    def test_deletes_every_row_in_batches_of_the_given_size(self):
        seller = seller_make()
        for number in range(5):
            IdempotencyKey.objects.create(
                user=seller.user,
                key=f"k{number}",
                request_fingerprint="f",
                response_status=201,
                response_body={},
            )
        with CaptureQueriesContext(connection) as queries:
            deleted = in_batches_delete(IdempotencyKey.objects.all(), batch=2)
        deletes = [query["sql"] for query in queries if query["sql"].startswith("DELETE")]
        self.assertEqual(len(deletes), 3)  # 2 + 2 + 1, each its own transaction
        self.assertEqual(deleted, 5)
        self.assertFalse(IdempotencyKey.objects.exists())
