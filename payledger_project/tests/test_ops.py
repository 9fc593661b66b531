"""Probes, request ids, logs and metrics through Django's test client."""

import io
import json
import logging
import os
import uuid
from contextlib import contextmanager

from django.db import transaction
from django.test import TestCase, TransactionTestCase, override_settings
from django.urls import reverse
from prometheus_client import REGISTRY

from payledger_project.ops.logs import formatter
from payments.services import (
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
)
from testing.assertions import ErrorShapeAssertions
from testing.factories import PASSWORD, client_for, seller_make, staff_make

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


@contextmanager
def json_log_lines():
    """The JSON lines production would write while the block runs, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


CHARGE = {"phone_number": "+14155550123", "amount": 25}


class RequestIdTests(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)

    def charge(self, **headers):
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.post(reverse("phone-charge"), CHARGE, format="json", **headers)

    def test_a_well_formed_client_request_id_is_echoed(self):
        response = self.charge(HTTP_X_REQUEST_ID="order-42.retry_1")
        self.assertEqual(response["X-Request-ID"], "order-42.retry_1")

    def test_an_unusable_client_request_id_is_replaced_by_a_uuid(self):
        for supplied in ["", "has space", "semi;colon", "é", "x" * 129]:
            with self.subTest(supplied=supplied):
                response = self.client.get(reverse("seller-me"), HTTP_X_REQUEST_ID=supplied)
                self.assertEqual(uuid.UUID(response["X-Request-ID"]).version, 4)

    def test_a_request_without_one_gets_a_new_uuid_each_time(self):
        first = self.client.get(reverse("seller-me"))["X-Request-ID"]
        second = self.client.get(reverse("seller-me"))["X-Request-ID"]
        self.assertNotEqual(first, second)
        self.assertEqual(uuid.UUID(first).version, 4)

    def test_errors_and_redirects_carry_one_too(self):
        with self.subTest("404"):
            response = self.client.get("/no/such/page/", HTTP_X_REQUEST_ID="lost-1")
            self.assertEqual(response.status_code, 404)
            self.assertEqual(response["X-Request-ID"], "lost-1")
        with self.subTest("HTTPS redirect"), override_settings(SECURE_SSL_REDIRECT=True):
            # A new client loads the middleware with the overridden setting.
            response = self.client_class().get(reverse("seller-me"), HTTP_X_REQUEST_ID="plain-1")
            self.assertEqual(response.status_code, 301)
            self.assertEqual(response["X-Request-ID"], "plain-1")


class LogLineTests(TransactionTestCase):
    """Real commits, so the money line is written when it is in production: at commit,
    while the request is being served."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)

    def charge(self, **headers):
        return self.client.post(reverse("phone-charge"), CHARGE, format="json", **headers)

    def test_every_line_written_while_serving_a_charge_carries_its_id(self):
        with json_log_lines() as lines:
            response = self.charge(HTTP_X_REQUEST_ID="charge-7")
        self.assertEqual(response.status_code, 201)
        self.assertTrue(lines)
        self.assertEqual({line.get("request_id") for line in lines}, {"charge-7"}, lines)

    def test_the_charge_is_logged_with_seller_amount_transaction_and_kind(self):
        with json_log_lines() as lines:
            response = self.charge(HTTP_X_REQUEST_ID="charge-8")
        body = response.json()
        [money] = [line for line in lines if line["logger"] == "payments.services"]
        self.assertEqual(
            {key: money[key] for key in ["seller", "amount", "transaction_id", "kind"]},
            {
                "seller": self.seller.pk,
                "amount": 25,
                "transaction_id": body["transaction_id"],
                "kind": "charge",
            },
        )
        self.assertEqual(money["level"], "info")
        self.assertIn("timestamp", money)

    def test_the_request_line_has_method_path_status_duration_and_user(self):
        with json_log_lines() as lines:
            self.charge(HTTP_X_REQUEST_ID="charge-9")
        [finished] = [line for line in lines if line["message"] == "request_finished"]
        self.assertEqual(finished["method"], "POST")
        self.assertEqual(finished["path"], reverse("phone-charge"))
        self.assertEqual(finished["status"], 201)
        self.assertEqual(finished["user_id"], self.seller.user.pk)
        self.assertGreater(finished["duration_ms"], 0)
        self.assertEqual(list(finished)[:4], ["timestamp", "level", "logger", "message"])

    def test_the_request_line_names_the_socket_peer_and_the_worker(self):
        with json_log_lines() as lines:
            self.charge(HTTP_X_REQUEST_ID="charge-10", HTTP_X_FORWARDED_FOR="203.0.113.9")
        [finished] = [line for line in lines if line["message"] == "request_finished"]
        self.assertEqual((finished["remote_addr"], finished["pid"]), ("127.0.0.1", os.getpid()))

    def test_django_s_own_line_for_an_error_carries_the_id(self):
        with json_log_lines() as lines:
            self.client.get("/no/such/page/", HTTP_X_REQUEST_ID="lost-2")
        [not_found] = [line for line in lines if line["logger"] == "django.request"]
        self.assertEqual(not_found["request_id"], "lost-2")

    def test_no_password_token_or_body_is_ever_logged(self):
        token = self.client._credentials["HTTP_AUTHORIZATION"].split()[1]
        with json_log_lines() as lines:
            self.client.post(
                reverse("api-token-auth"),
                {"username": self.seller.user.username, "password": PASSWORD},
                format="json",
            )
            self.charge()
        written = json.dumps(lines)
        for secret in [PASSWORD, token, "+14155550123"]:
            self.assertNotIn(secret, written)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class MetricsEndpointTests(TestCase):
    def test_without_a_configured_token_there_is_no_metrics_page(self):
        response = self.client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer ")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json()["code"], "not_found")

    @override_settings(METRICS_TOKEN="scrape-secret")
    def test_the_token_is_required(self):
        for header in [None, "Bearer wrong", "scrape-secret", "Token scrape-secret"]:
            with self.subTest(header=header):
                extra = {"HTTP_AUTHORIZATION": header} if header else {}
                self.assertEqual(self.client.get(reverse("metrics"), **extra).status_code, 404)

    @override_settings(METRICS_TOKEN="scrape-secret")
    def test_with_the_token_it_is_prometheus_text_with_requests_by_view_method_and_status(self):
        self.client.get(reverse("healthz"))
        response = self.client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer scrape-secret")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response["Content-Type"].startswith("text/plain"))
        text = response.content.decode()
        self.assertIn(
            'django_http_responses_total_by_status_view_method_total{method="GET",'
            'status="200",view="healthz"}',
            text,
        )
        self.assertIn("django_http_requests_latency_seconds_by_view_method_bucket", text)
        self.assertIn("payledger_phone_charges_total", text)


class BusinessMetricsTests(TransactionTestCase):
    """Counted after commit: a movement that rolls back is never counted."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)

    def test_a_committed_charge_counts_once_with_its_amount(self):
        charges, amount = (
            sample("payledger_phone_charges_total"),
            sample("payledger_phone_charged_amount_total"),
        )
        response = self.client.post(reverse("phone-charge"), CHARGE, format="json")
        self.assertEqual(response.status_code, 201)
        self.assertEqual(sample("payledger_phone_charges_total"), charges + 1)
        self.assertEqual(sample("payledger_phone_charged_amount_total"), amount + 25)

    def test_a_charge_rolled_back_after_the_service_returned_is_not_counted(self):
        charges = sample("payledger_phone_charges_total")
        with self.assertRaises(RuntimeError), transaction.atomic():
            phone_charge_create(seller_id=self.seller.pk, phone_number="+14155550123", amount=5)
            raise RuntimeError("the caller's transaction fails")
        self.assertEqual(sample("payledger_phone_charges_total"), charges)

    def test_a_refusal_is_counted_by_its_code_and_no_charge_is(self):
        charges = sample("payledger_phone_charges_total")
        refusals = sample("payledger_api_refusals_total", code="insufficient_balance")
        response = self.client.post(
            reverse("phone-charge"), {**CHARGE, "amount": 5_000}, format="json"
        )
        self.assertEqual(response.status_code, 409)
        self.assertEqual(
            sample("payledger_api_refusals_total", code="insufficient_balance"), refusals + 1
        )
        self.assertEqual(sample("payledger_phone_charges_total"), charges)

    def test_credit_decisions_are_counted_by_decision(self):
        approved = sample("payledger_credit_requests_decided_total", decision="approved")
        rejected = sample("payledger_credit_requests_decided_total", decision="rejected")
        credited = sample("payledger_credited_amount_total")
        staff = staff_make()
        for decide, amount in [
            (credit_request_approve, 300),
            (credit_request_reject, 400),
            (credit_request_reject, 500),
        ]:
            credit_request = credit_request_create(seller=self.seller, amount=amount)
            decide(credit_request_id=credit_request.pk, decided_by=staff)
        self.assertEqual(
            sample("payledger_credit_requests_decided_total", decision="approved"), approved + 1
        )
        self.assertEqual(
            sample("payledger_credit_requests_decided_total", decision="rejected"), rejected + 2
        )
        self.assertEqual(sample("payledger_credited_amount_total"), credited + 300)
