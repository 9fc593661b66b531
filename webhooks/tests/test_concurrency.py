"""Registrations at once, on a real database: the per-seller limits hold under races."""

from django.test import TransactionTestCase, override_settings

from testing.concurrency import run_at_once
from testing.factories import seller_make
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_endpoint_create

THREADS = 8


def register(seller, url: str) -> int:
    return webhook_endpoint_create(seller=seller, url=url, event_types=["phone_charge.created"]).pk


class ConcurrentRegistrationTests(TransactionTestCase):
    @override_settings(PAYLEDGER_WEBHOOK_ENDPOINTS_MAX=3)
    def test_concurrent_registrations_stop_at_the_limit(self):
        seller = seller_make()
        outcomes = run_at_once(THREADS, lambda n: register(seller, f"http://127.0.0.1:8400/{n}"))
        self.assertEqual(sorted(map(str, outcomes)).count("endpoint_limit"), THREADS - 3, outcomes)
        self.assertEqual(WebhookEndpoint.objects.filter(seller=seller).count(), 3)

    def test_concurrent_registrations_of_one_url_make_one_endpoint(self):
        seller = seller_make()
        outcomes = run_at_once(THREADS, lambda n: register(seller, "http://127.0.0.1:8400/same"))
        self.assertEqual(sorted(map(str, outcomes)).count("duplicate_url"), THREADS - 1, outcomes)
        self.assertEqual(WebhookEndpoint.objects.filter(seller=seller).count(), 1)
