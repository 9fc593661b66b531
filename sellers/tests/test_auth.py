from django.conf import settings
from django.test import TestCase, override_settings
from django.urls import reverse

from sellers.models import ApiKey
from testing.factories import PASSWORD, client_for, seller_make

STRICT_RATES = {"charge": "2/minute", "anon_auth": "2/minute"}


class LogoutTests(TestCase):
    def setUp(self):
        self.seller = seller_make()
        self.client = client_for(self.seller.user)

    def test_logout_deletes_the_callers_key(self):
        response = self.client.post(reverse("logout"))
        self.assertEqual(response.status_code, 204)
        self.assertFalse(ApiKey.objects.filter(user=self.seller.user).exists())

    def test_the_old_token_no_longer_authenticates(self):
        self.client.post(reverse("logout"))
        response = self.client.get(reverse("seller-me"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["code"], "authentication_failed")

    def test_logout_leaves_other_users_tokens_alone(self):
        other = seller_make()
        client_for(other.user)
        self.client.post(reverse("logout"))
        self.assertTrue(ApiKey.objects.filter(user=other.user).exists())

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

    def test_a_forged_x_forwarded_for_does_not_escape_the_login_limit(self):
        # No proxy is declared (PROXY_COUNT=0): the address is the socket peer,
        # whatever the client writes in X-Forwarded-For.
        credentials = {"username": "nobody", "password": "wrong"}
        statuses = [
            self.client.post(
                reverse("api-token-auth"),
                credentials,
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
            ).status_code
            for n in range(3)
        ]
        self.assertEqual(statuses, [400, 400, 429])

    def test_a_forged_x_forwarded_for_does_not_escape_the_registration_limit(self):
        statuses = [
            self.client.post(
                reverse("seller-list"),
                {"username": f"forged{n}", "password": PASSWORD, "name": "Forged"},
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
            ).status_code
            for n in range(3)
        ]
        self.assertEqual(statuses, [201, 201, 429])

    @override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1})
    def test_behind_one_proxy_the_client_is_the_address_the_proxy_appended(self):
        usernames = (f"nobody{n}" for n in range(4))  # not limited per username

        def login(forwarded_for: str) -> int:
            return self.client.post(
                reverse("api-token-auth"),
                {"username": next(usernames), "password": "wrong"},
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=forwarded_for,
            ).status_code

        # Whatever the client puts before it, the proxy's entry is the last one.
        self.assertEqual(login("10.0.0.1, 203.0.113.7"), 400)
        self.assertEqual(login("10.0.0.2, 203.0.113.7"), 400)
        self.assertEqual(login("10.0.0.3, 203.0.113.7"), 429)
        self.assertEqual(login("10.0.0.3, 203.0.113.8"), 400)

    def test_logins_to_one_username_are_limited_across_addresses(self):
        credentials = {"username": seller_make().user.username, "password": "wrong"}
        statuses = [
            self.client.post(
                reverse("api-token-auth"),
                credentials,
                content_type="application/json",
                REMOTE_ADDR=f"198.51.100.{n}",
            ).status_code
            for n in range(3)
        ]
        self.assertEqual(statuses, [400, 400, 429])

    def test_a_username_spelt_differently_counts_against_the_same_limit(self):
        username = seller_make().user.username
        statuses = [
            self.client.post(
                reverse("api-token-auth"),
                {"username": spelling, "password": "wrong"},
                content_type="application/json",
                REMOTE_ADDR=f"198.51.100.{n}",
            ).status_code
            for n, spelling in enumerate([username, f" {username.upper()} ", username.title()])
        ]
        self.assertEqual(statuses, [400, 400, 429])

    def test_registration_is_limited_per_address_even_with_a_token(self):
        client = client_for(seller_make().user)
        statuses = [
            client.post(
                reverse("seller-list"),
                {"username": f"tokened{n}", "password": PASSWORD, "name": "Tokened"},
                format="json",
            ).status_code
            for n in range(3)
        ]
        self.assertEqual(statuses, [201, 201, 429])

    def test_login_is_limited_per_address_even_with_a_token(self):
        seller = seller_make()
        client = client_for(seller.user)
        credentials = {"username": seller.user.username, "password": PASSWORD}
        statuses = [
            client.post(reverse("api-token-auth"), credentials, format="json").status_code
            for _ in range(3)
        ]
        self.assertEqual(statuses, [200, 200, 429])

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

    def test_an_unknown_host_is_a_json_400_that_names_the_allowed_hosts_setting(self):
        response = self.client.get(reverse("seller-list"), HTTP_HOST="evil.example")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.json(),
            {
                "code": "host_not_allowed",
                "message": "This service does not answer to the host evil.example: add it to"
                " the ALLOWED_HOSTS setting (comma-separated) and restart.",
            },
        )

    def test_an_unknown_host_that_is_not_a_host_name_is_not_echoed(self):
        response = self.client.get(reverse("seller-list"), HTTP_HOST="<script>x</script>")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["code"], "bad_request")
        self.assertNotIn("script", response.content.decode())

    def test_an_unacceptable_accept_header_is_a_json_406(self):
        client = client_for(seller_make().user)
        response = client.get(reverse("seller-me"), HTTP_ACCEPT="text/html")
        self.assertEqual(response.status_code, 406)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(response.json()["code"], "not_acceptable")
