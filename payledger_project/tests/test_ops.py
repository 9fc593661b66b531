"""Probes, request ids, logs and metrics through Django's test client."""

from django.test import TestCase, override_settings
from django.urls import reverse

from sellers.tests.assertions import ErrorShapeAssertions
from sellers.tests.factories import PASSWORD, client_for, seller_make

STRICT_RATES = {"charge": "1/minute", "anon_auth": "1/minute"}

# A Redis nobody listens on: what the service sees when its cache goes away.
CACHE_DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/5",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


class ProbeTests(ErrorShapeAssertions, TestCase):
    def test_healthz_answers_without_touching_the_database(self):
        with self.assertNumQueries(0):
            response = self.client.get(reverse("healthz"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok"})

    def test_readyz_answers_when_the_database_and_the_cache_do(self):
        response = self.client.get(reverse("readyz"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ready"})

    @override_settings(CACHES=CACHE_DOWN)
    def test_readyz_is_503_naming_the_cache_when_the_cache_is_down(self):
        with self.assertLogs("health_check", "WARNING"):
            response = self.client.get(reverse("readyz"))
        body = self.assertErrorResponse(response, 503, "not_ready")
        self.assertEqual(body["message"], "Unavailable: cache.")

    def test_probes_need_no_token(self):
        for name in ["healthz", "readyz"]:
            with self.subTest(name):
                self.assertEqual(self.client.get(reverse(name)).status_code, 200)

    def test_the_root_redirects_to_the_api_docs(self):
        response = self.client.get("/")
        self.assertRedirects(response, reverse("docs"), fetch_redirect_response=False)


@override_settings(CACHES=CACHE_DOWN, PAYLEDGER_THROTTLE_RATES=STRICT_RATES)
class CacheOutageTests(TestCase):
    """Redis away: the throttles fail open, with an error line for each request let through."""

    def test_a_charge_still_goes_through_and_the_outage_is_logged(self):
        seller = seller_make(balance=100)
        client = client_for(seller.user)
        with self.assertLogs("payledger_project.throttles", "ERROR") as logs:
            response = client.post(
                reverse("phone-charge"),
                {"phone_number": "+14155550123", "amount": 10},
                format="json",
            )
        self.assertEqual(response.status_code, 201, response.content)
        self.assertIn("throttle charge not applied: the cache is unavailable", logs.output[0])
        seller.refresh_from_db()
        self.assertEqual(seller.balance, 90)

    def test_logging_in_still_works(self):
        seller = seller_make()
        credentials = {"username": seller.user.username, "password": PASSWORD}
        with self.assertLogs("payledger_project.throttles", "ERROR"):
            response = self.client.post(
                reverse("api-token-auth"), credentials, content_type="application/json"
            )
        self.assertEqual(response.status_code, 200)
        self.assertIn("token", response.json())
