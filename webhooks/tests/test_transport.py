"""How a delivery reaches its receiver: only the address that was checked, with
TLS verified for the URL's name, within one deadline however the receiver
answers."""

import socket
import time
from unittest import mock

from django.conf import settings
from django.test import TestCase, override_settings

from payments.services import phone_charge_create
from testing.factories import seller_make
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_deliver_next, webhook_endpoint_create
from webhooks.tests.receiver import DRIP, TLS, TLS_NAME, Receiver
from webhooks.tests.resolver import rebinding, resolving, resolving_to

PHONE = "+14155550123"
PUBLIC = "93.184.215.14"
# How far past its deadline a delivery may end on a busy machine.
SLACK = 0.5


class DeliveryCase(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=100)

    def receiver(self, behaviour=lambda event_id, nth: 200, **options) -> Receiver:
        receiver = Receiver(behaviour, **options)
        self.addCleanup(receiver.stop)
        return receiver

    def endpoint_for(self, url: str) -> None:
        webhook_endpoint_create(seller=self.seller, url=url, event_types=["phone_charge.created"])
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)

    def deliver(self) -> tuple[WebhookDelivery, float]:
        """One delivery step; its recorded attempt and how long the step took."""
        started = time.monotonic()
        self.assertTrue(webhook_deliver_next())
        return WebhookDelivery.objects.get(), time.monotonic() - started


@override_settings(PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK=False)
class RebindingTests(DeliveryCase):
    def test_a_name_that_changes_its_answer_after_the_check_is_not_followed_inside(self):
        internal = self.receiver()
        url = f"https://rebind.example.com:{internal.port}/hooks"
        with resolving_to(PUBLIC):
            self.endpoint_for(url)
        real_connect = socket.socket.connect
        attempts = []

        def connect(sock, address):
            # The public host is out of the test's reach: refuse as it would.
            attempts.append(address[:2])
            if address[0] == PUBLIC:
                raise ConnectionRefusedError("the public address, reached in the test")
            return real_connect(sock, address)

        with rebinding(PUBLIC, "127.0.0.1"), mock.patch.object(socket.socket, "connect", connect):
            delivery, _ = self.deliver()
        self.assertEqual(internal.connections, 0)
        self.assertEqual(attempts, [(PUBLIC, internal.port)])
        self.assertFalse(delivery.delivered)


class PinnedTlsTests(DeliveryCase):
    def setUp(self):
        super().setUp()
        self.tls_receiver = self.receiver(tls=True)
        self.enterContext(override_settings(PAYLEDGER_WEBHOOK_CA_BUNDLE=str(TLS / "ca.pem")))

    def test_https_to_the_checked_address_verifies_the_certificate_for_the_url_name(self):
        url = f"https://{TLS_NAME}:{self.tls_receiver.port}/hooks"
        with resolving(TLS_NAME, "127.0.0.1"):
            self.endpoint_for(url)
            delivery, _ = self.deliver()
        self.assertTrue(delivery.delivered, delivery.error)
        self.assertEqual(self.tls_receiver.server_names, [TLS_NAME])
        self.assertEqual(self.tls_receiver.received[0].host, f"{TLS_NAME}:{self.tls_receiver.port}")

    def test_a_certificate_for_another_name_is_not_trusted(self):
        url = f"https://other.payledger.test:{self.tls_receiver.port}/hooks"
        with resolving("other.payledger.test", "127.0.0.1"):
            self.endpoint_for(url)
            delivery, _ = self.deliver()
        self.assertFalse(delivery.delivered)
        self.assertIn("Hostname mismatch", delivery.error)
        self.assertEqual(self.tls_receiver.received, [])


class DeadlineTests(DeliveryCase):
    def test_a_receiver_dripping_its_answer_is_cut_off_at_the_deadline(self):
        receiver = self.receiver(lambda event_id, nth: DRIP)
        self.endpoint_for(receiver.url("hooks"))
        delivery, took = self.deliver()
        self.assertLess(took, settings.PAYLEDGER_WEBHOOK_TIMEOUT + SLACK)
        self.assertEqual((delivery.delivered, delivery.error), (False, "deadline exceeded"))
        self.assertLess(delivery.duration_ms, (settings.PAYLEDGER_WEBHOOK_TIMEOUT + SLACK) * 1000)

    def test_a_slow_dns_answer_counts_against_the_deadline(self):
        receiver = self.receiver()
        url = f"http://slow-dns.example.com:{receiver.port}/hooks"
        with resolving("slow-dns.example.com", "127.0.0.1"):
            self.endpoint_for(url)
        with resolving("slow-dns.example.com", "127.0.0.1", delay=2):
            delivery, took = self.deliver()
        self.assertLess(took, settings.PAYLEDGER_WEBHOOK_TIMEOUT + SLACK)
        self.assertEqual((delivery.delivered, delivery.error), (False, "deadline exceeded"))


class RequestTests(DeliveryCase):
    def test_a_path_with_spaces_and_non_ascii_letters_is_sent_percent_encoded(self):
        receiver = self.receiver()
        self.endpoint_for(receiver.url("shop hooks/ünï?x=a b"))
        delivery, _ = self.deliver()
        self.assertTrue(delivery.delivered, delivery.error)
        self.assertEqual(receiver.received[0].path, "shop%20hooks/%C3%BCn%C3%AF?x=a%20b")
