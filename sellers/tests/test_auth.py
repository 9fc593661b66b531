from django.test import TestCase, override_settings
from django.urls import reverse
from rest_framework.authtoken.models import Token

from sellers.tests.factories import PASSWORD, client_for, seller_make

STRICT_RATES = {"charge": "2/minute", "anon_auth": "2/minute"}


class LogoutTests(TestCase):
    def setUp(self):
        self.seller = seller_make()
        self.client = client_for(self.seller.user)

    def test_logout_deletes_the_callers_token(self):
        response = self.client.post(reverse("logout"))
        self.assertEqual(response.status_code, 204)
        self.assertFalse(Token.objects.filter(user=self.seller.user).exists())

    def test_the_old_token_no_longer_authenticates(self):
        self.client.post(reverse("logout"))
        response = self.client.get(reverse("seller-me"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["code"], "authentication_failed")

    def test_logout_leaves_other_users_tokens_alone(self):
        other = seller_make()
        client_for(other.user)
        self.client.post(reverse("logout"))
        self.assertTrue(Token.objects.filter(user=other.user).exists())

    def test_logout_without_a_token_is_refused(self):
        response = self.client_class().post(reverse("logout"))
        self.assertEqual(response.status_code, 401)


@override_settings(PAYLEDGER_THROTTLE_RATES=STRICT_RATES)
class ThrottleTests(TestCase):
    def test_token_requests_beyond_the_address_rate_get_429_with_retry_after(self):
        seller = seller_make()
        credentials = {"username": seller.user.username, "password": PASSWORD}
        for _ in range(2):
            self.client.post(reverse("api-token-auth"), credentials)
        response = self.client.post(reverse("api-token-auth"), credentials)
        self.assertEqual(response.status_code, 429)
        self.assertEqual(response.json()["code"], "throttled")
        self.assertIn("message", response.json())
        self.assertGreater(int(response["Retry-After"]), 0)

    def test_registration_is_limited_per_client_address(self):
        for number in range(3):
            response = self.client.post(
                reverse("seller-list"),
                {"username": f"new{number}", "password": PASSWORD, "name": "New"},
                content_type="application/json",
            )
        self.assertEqual(response.status_code, 429)

    def test_charges_beyond_the_sellers_rate_get_429_and_move_nothing(self):
        seller = seller_make(balance=1_000)
        client = client_for(seller.user)
        body = {"phone_number": "+14155550123", "amount": 10}
        for _ in range(2):
            client.post(reverse("phone-charge"), body, format="json")
        response = client.post(reverse("phone-charge"), body, format="json")
        self.assertEqual(response.status_code, 429)
        seller.refresh_from_db()
        self.assertEqual(seller.balance, 980)

    def test_one_sellers_charges_do_not_use_up_anothers_rate(self):
        body = {"phone_number": "+14155550123", "amount": 10}
        busy = client_for(seller_make(balance=1_000).user)
        for _ in range(3):
            busy.post(reverse("phone-charge"), body, format="json")
        response = client_for(seller_make(balance=1_000).user).post(
            reverse("phone-charge"), body, format="json"
        )
        self.assertEqual(response.status_code, 201)


class FrameworkErrorShapeTests(TestCase):
    def test_an_unknown_url_is_a_json_404(self):
        response = self.client.get("/no/such/page/")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"code": "not_found", "message": "No such resource."})

    def test_an_unknown_host_is_a_json_400(self):
        response = self.client.get(reverse("seller-list"), HTTP_HOST="evil.example")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["code"], "bad_request")

    def test_an_unacceptable_accept_header_is_a_json_406(self):
        client = client_for(seller_make().user)
        response = client.get(reverse("seller-me"), HTTP_ACCEPT="text/html")
        self.assertEqual(response.status_code, 406)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(response.json()["code"], "not_acceptable")
