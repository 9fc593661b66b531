from base64 import b64encode
from urllib.parse import urlencode

from django.urls import reverse
from rest_framework import status
from rest_framework.test import APITestCase

from payments.models import Event
from payments.services import phone_charge_create
from testing.assertions import ErrorShapeAssertions
from testing.factories import client_for, seller_make
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create


def cursor(**tokens: str) -> str:
    """A cursor as the paginator writes one: a querystring in base64."""
    return b64encode(urlencode(tokens).encode()).decode()


# What a client can put in ?cursor= that the paginator never wrote.
FORGED_CURSORS = {
    "position in the clear": "p=abc",
    "float position in the clear": "p=1e5",
    "empty": "",
    "not base64": "%%%",
    "base64 of bytes that are not text": b64encode(b"\xff\xfe\x00").decode(),
    "a word as position": cursor(p="abc"),
    "a float as position": cursor(p="1e5"),
    "a negative position": cursor(p="-1"),
    "a position past any integer column": cursor(p="9" * 30),
    "a date-time before year 1 in UTC": cursor(p="0001-01-01 00:00:00+01:00"),
    "a date-time without an offset": cursor(p="2026-01-01 00:00:00"),
    "a negative offset": cursor(o="-1"),
    "a word as direction": cursor(r="x"),
}


class ForgedCursorTests(ErrorShapeAssertions, APITestCase):
    """Every cursor-paginated list refuses a cursor it did not write: 400, one shape."""

    @classmethod
    def setUpTestData(cls):
        cls.seller = seller_make(balance=100)
        phone_charge_create(seller_id=cls.seller.pk, phone_number="+14155550123", amount=5)
        endpoint = webhook_endpoint_create(
            seller=cls.seller, url="http://127.0.0.1:8400/", event_types=["phone_charge.created"]
        )
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event=Event.objects.latest("id"),
            attempt=1,
            delivered=True,
            status_code=200,
            duration_ms=5,
        )
        cls.lists = {
            "journal": reverse("transaction-list"),
            "events": reverse("event-list"),
            "deliveries": reverse("webhook-endpoint-deliveries", args=[endpoint.pk]),
        }

    def setUp(self):
        self.client = client_for(self.seller.user)

    def test_each_list_answers_its_first_page(self):
        for name, url in self.lists.items():
            with self.subTest(name):
                response = self.client.get(url)
                self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
                self.assertTrue(response.json()["results"])

    def test_each_list_follows_its_own_next_link(self):
        for name, url in self.lists.items():
            with self.subTest(name):
                first = self.client.get(url, {"limit": 1}).json()
                if first["next"] is not None:
                    second = self.client.get(first["next"])
                    self.assertEqual(second.status_code, status.HTTP_200_OK, second.content)

    def test_a_position_in_an_offset_the_database_cannot_store_is_read_in_utc(self):
        # PostgreSQL stores offsets up to 15:59; the same instant in UTC it can.
        journal = self.client.get(
            self.lists["journal"], {"cursor": cursor(p="2000-01-01 00:00:00-23:00")}
        )
        self.assertEqual(journal.status_code, status.HTTP_200_OK, journal.content)
        self.assertEqual(journal.json()["results"], [])

    def test_a_forged_cursor_is_refused_on_every_list(self):
        for name, url in self.lists.items():
            for forgery, value in FORGED_CURSORS.items():
                with self.subTest(list=name, cursor=forgery):
                    errors = self.assertFieldError(
                        self.client.get(url, {"cursor": value}), "cursor"
                    )
                    self.assertEqual(errors[0]["code"], "invalid")
