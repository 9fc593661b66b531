"""The receiver example in docs/webhooks.md, run as written against a real delivery."""

import re
import time
from pathlib import Path

from django.conf import settings
from django.test import TestCase

from payments.services import phone_charge_create
from testing.factories import seller_make
from webhooks.services import webhook_deliver_next, webhook_endpoint_create
from webhooks.signing import webhook_headers
from webhooks.tests.receiver import Receiver

WEBHOOKS_DOC = Path(settings.BASE_DIR) / "docs" / "webhooks.md"


def documented_receiver_example() -> dict:
    """Run the first Python block after "## Verifying a delivery"; return its names."""
    text = WEBHOOKS_DOC.read_text()
    section = text[text.index("## Verifying a delivery") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    names: dict = {}
    exec(compile(code, str(WEBHOOKS_DOC), "exec"), names)  # noqa: S102
    return names


class DocumentedReceiverExampleTests(TestCase):
    def setUp(self):
        self.example = documented_receiver_example()
        self.receiver = Receiver(lambda event_id, nth: 200)
        self.addCleanup(self.receiver.stop)
        seller = seller_make(balance=100)
        self.endpoint = webhook_endpoint_create(
            seller=seller, url=self.receiver.url("shop"), event_types=["phone_charge.created"]
        )
        phone_charge_create(seller_id=seller.pk, phone_number="+14155550123", amount=5)
        webhook_deliver_next()
        self.delivery = self.receiver.received[0]

    def verified(self, secret: str, headers: dict[str, str], body: bytes) -> dict | None:
        return self.example["verified_event"](secret, headers, body)

    def test_the_example_accepts_a_real_delivery_and_returns_its_event(self):
        event = self.verified(self.endpoint.secret, self.delivery.headers, self.delivery.body)
        self.assertEqual(event["id"], self.delivery.event_id)

    def test_the_example_refuses_a_changed_body(self):
        changed = self.delivery.body.replace(b'"amount":5', b'"amount":6')
        self.assertNotEqual(changed, self.delivery.body)
        self.assertIsNone(self.verified(self.endpoint.secret, self.delivery.headers, changed))

    def test_the_example_refuses_another_secret(self):
        other = "whsec_" + "A" * 43 + "="
        self.assertIsNone(self.verified(other, self.delivery.headers, self.delivery.body))

    def test_the_example_refuses_an_old_signature(self):
        old = webhook_headers(
            secrets=[self.endpoint.secret],
            message_id=str(self.delivery.event_id),
            timestamp=int(time.time()) - 3600,
            body=self.delivery.body,
            today=self.endpoint.created_at.date(),
        )
        self.assertIsNone(self.verified(self.endpoint.secret, old, self.delivery.body))

    def test_the_example_refuses_a_delivery_without_its_signature(self):
        unsigned = {k: v for k, v in self.delivery.headers.items() if k != "webhook-signature"}
        self.assertIsNone(self.verified(self.endpoint.secret, unsigned, self.delivery.body))

    def test_the_example_acts_once_per_event_id(self):
        seen: set[str] = set()
        first_time = self.example["first_time"]
        event_id = self.delivery.headers["webhook-id"]
        self.assertEqual([first_time(event_id, seen), first_time(event_id, seen)], [True, False])
