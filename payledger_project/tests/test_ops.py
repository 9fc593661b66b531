"""Probes, request ids, logs and metrics through Django's test client."""

from django.test import TestCase, override_settings
from django.urls import reverse

from sellers.tests.assertions import ErrorShapeAssertions

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
