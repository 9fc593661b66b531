"""A payments API does not guess: a body it cannot read one way only is refused whole."""

from django.test import TestCase
from django.urls import reverse

from payments.models import PhoneCharge
from sellers.models import Seller
from testing.assertions import ErrorShapeAssertions
from testing.factories import client_for, seller_make


class JSONBodyTests(ErrorShapeAssertions, TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)

    def post_charge(self, body: str, **headers):
        return self.client.post(
            reverse("phone-charge"), body, content_type="application/json", **headers
        )

    def assertRefusedAndNothingCharged(self, response) -> None:
        self.assertErrorResponse(response, 400, "parse_error")
        self.assertEqual(Seller.objects.get(pk=self.seller.pk).balance, 1_000)
        self.assertFalse(PhoneCharge.objects.exists())

    def test_a_duplicated_key_is_refused_and_charges_nothing(self):
        response = self.post_charge('{"phone_number": "+14155550123", "amount": 5, "amount": 500}')
        self.assertRefusedAndNothingCharged(response)

    def test_a_duplicated_key_deep_inside_the_body_is_refused(self):
        response = self.post_charge(
            '{"phone_number": "+14155550123", "amount": 5, "meta": [{"order": {"id": 1, "id": 2}}]}'
        )
        self.assertRefusedAndNothingCharged(response)

    def test_a_lone_surrogate_with_an_idempotency_key_is_refused_not_a_server_error(self):
        response = self.post_charge(
            '{"phone_number": "+14155550123", "amount": 5, "note": "\\ud800"}',
            HTTP_IDEMPOTENCY_KEY="order-1",
        )
        self.assertRefusedAndNothingCharged(response)

    def test_a_lone_surrogate_is_refused_the_same_without_an_idempotency_key(self):
        response = self.post_charge(
            '{"phone_number": "+14155550123", "amount": 5, "note": "\\ud800"}'
        )
        self.assertRefusedAndNothingCharged(response)

    def test_a_paired_surrogate_escape_is_ordinary_text(self):
        response = self.post_charge(
            '{"phone_number": "+14155550123", "amount": 5, "note": "\\ud83d\\ude00"}',
            HTTP_IDEMPOTENCY_KEY="order-1",
        )
        self.assertEqual(response.status_code, 201, response.content)
