"""PayLedger as it is deployed: gunicorn, gunicorn.conf.py, the production environment.

Each class starts its own server on a free loopback port, polls until it
answers, and stops it by its process group id. The servers use the test
database, so the tests set up rows with the ORM and check what the server
wrote. DEBUG is never set: production is the default. The server that needs
Redis gets a private redis-server, started and stopped the same way.
"""

import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from unittest import skipUnless

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import SimpleTestCase
from prometheus_client.parser import text_string_to_metric_families

from audit.models import AuditEvent
from payments.models import CreditRequest
from payments.services import credit_request_create
from sellers.models import Seller
from testing.factories import PASSWORD, api_key_make, authenticator_make, otp_code, seller_make
from testing.servers import (
    HOST,
    REDIS_SERVER,
    STORM,
    ProxiedSession,
    RedisServer,
    ServerTestCase,
    charge_storm,
    closed_port,
    csrf_token,
    production_environment,
    statuses_by_worker,
    superuser_make,
)

ROOT = Path(settings.BASE_DIR)
CHARGE_RATE = 10
METRICS_TOKEN = "scrape-" + "x" * 32
User = get_user_model()


class GunicornBindTests(SimpleTestCase):
    """The app server listens where only a proxy on the same machine reaches it,
    unless the operator says otherwise: PROXY_COUNT=1 believes X-Forwarded-For,
    so a client reaching the app port directly could pick its own address."""

    def bind_of(self, **variables: str) -> str:
        """The address gunicorn.conf.py binds, as gunicorn reads it."""
        with tempfile.TemporaryDirectory(prefix="payledger-metrics-") as metrics_dir:
            # The directory given, reading the config makes none of its own.
            environment = production_environment(PROMETHEUS_MULTIPROC_DIR=metrics_dir, **variables)
            printed = subprocess.run(
                [str(Path(sys.executable).with_name("gunicorn")), "--print-config",
                 "-c", "gunicorn.conf.py"],
                cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
                check=True,
            ).stdout  # fmt: skip
        return re.search(r"^bind\s+= (.*)$", printed, re.MULTILINE).group(1)

    def test_gunicorn_listens_on_loopback_by_default(self):
        self.assertEqual(self.bind_of(PORT="8000"), "['127.0.0.1:8000']")

    def test_host_and_port_choose_another_address(self):
        self.assertEqual(self.bind_of(HOST="0.0.0.0", PORT="8100"), "['0.0.0.0:8100']")


class BehindAProxyTests(ServerTestCase):
    """`make serve` behind one TLS-terminating proxy (PROXY_COUNT=1)."""

    command = ["make", "--no-print-directory", "serve", f"VENV={sys.prefix}"]
    environment = {
        "PROXY_COUNT": "1",
        "WEB_CONCURRENCY": "4",
        "PAYLEDGER_CHARGE_RATE": f"{CHARGE_RATE}/minute",
        "METRICS_TOKEN": METRICS_TOKEN,
    }

    @classmethod
    def server_environment(cls) -> dict[str, str]:
        if not REDIS_SERVER:
            return cls.environment
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.stop)
        return {**cls.environment, "REDIS_URL": cls.redis.url}

    def scrape(self) -> dict[tuple, float]:
        response = requests.get(
            self.url("/metrics"), headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        self.assertEqual(response.status_code, 200)
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def test_metrics_need_the_token(self):
        for headers in [{}, {"Authorization": "Bearer not-the-token"}]:
            with self.subTest(headers=headers):
                response = requests.get(self.url("/metrics"), headers=headers)
                self.assertEqual(response.status_code, 404)
                self.assertEqual(response.json()["code"], "not_found")

    def test_metrics_add_up_the_charges_of_every_worker(self):
        charges = ("payledger_phone_charges_total", ())
        amount = ("payledger_phone_charged_amount_total", ())
        answered = (
            "django_http_responses_total_by_status_view_method_total",
            (("method", "POST"), ("status", "201"), ("view", "phone-charge")),
        )
        before = self.scrape()
        seller = seller_make(balance=1_000)

        results = charge_storm(self.server, seller, 8, Host=HOST, **{"X-Forwarded-Proto": "https"})

        self.assertEqual(Counter(results), Counter({(201, ""): 8}))
        self.assertGreaterEqual(len(statuses_by_worker(self.server, seller, 8)), 2)
        after = self.scrape()
        for key in [charges, amount, answered]:
            with self.subTest(key[0]):
                self.assertEqual(after.get(key, 0) - before.get(key, 0), 8)

    def test_plain_http_without_the_proxy_header_is_redirected_to_https(self):
        response = requests.get(
            self.url("/api/sellers/me/"), headers={"Host": HOST}, allow_redirects=False
        )
        self.assertEqual(response.status_code, 301)
        self.assertEqual(response.headers["Location"], f"https://{HOST}/api/sellers/me/")

    def test_a_request_the_proxy_marks_https_is_served_with_hsts(self):
        seller = seller_make()
        token = api_key_make(seller.user)
        response = ProxiedSession().get(
            self.url("/api/sellers/me/"),
            headers={"Authorization": f"Token {token}"},
            allow_redirects=False,
        )
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["id"], seller.pk)
        self.assertEqual(
            response.headers["Strict-Transport-Security"],
            "max-age=31536000; includeSubDomains; preload",
        )

    def test_the_root_redirects_to_the_api_docs(self):
        response = ProxiedSession().get(self.url("/"), allow_redirects=False)
        self.assertEqual(response.status_code, 302)
        self.assertEqual(response.headers["Location"], "/api/docs/")
        docs = ProxiedSession().get(self.url("/api/docs/"))
        self.assertEqual(docs.status_code, 200)

    def test_probes_answer_plain_http_without_a_redirect(self):
        for path, body in [("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})]:
            with self.subTest(path):
                response = requests.get(self.url(path), allow_redirects=False)
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response.json(), body)

    def test_staff_log_in_to_the_admin_approve_credit_and_log_out(self):
        authenticator = authenticator_make(superuser_make())
        seller = seller_make()
        credit_request = credit_request_create(seller=seller, amount=7_000)
        origin = {"Origin": f"https://{HOST}", "Referer": f"https://{HOST}/admin/"}
        session = ProxiedSession()
        # The address the proxy saw the browser connect from.
        session.headers["X-Forwarded-For"] = "198.51.100.23"

        def log_in(**second_factor):
            login_page = session.get(self.url("/admin/login/?next=/admin/"))
            self.assertEqual(login_page.status_code, 200)
            return session.post(
                self.url("/admin/login/?next=/admin/"),
                data={
                    "csrfmiddlewaretoken": csrf_token(login_page),
                    "username": "root",
                    "password": PASSWORD,
                    "next": "/admin/",
                    **second_factor,
                },
                headers=origin,
                allow_redirects=False,
            )

        # Production asks staff for their second factor.
        self.assertIn("Enter a valid code", log_in().text)
        logged_in = log_in(otp_code=otp_code(authenticator))
        self.assertEqual(logged_in.status_code, 302, logged_in.text[:2000])
        self.assertEqual(logged_in.headers["Location"], "/admin/")

        changelist_url = self.url("/admin/payments/creditrequest/")
        changelist = session.get(changelist_url)
        self.assertEqual(changelist.status_code, 200)
        acted = session.post(
            changelist_url,
            data={
                "csrfmiddlewaretoken": csrf_token(changelist),
                "action": "approve_selected",
                "_selected_action": [credit_request.pk],
                "index": 0,
            },
            headers=origin,
            allow_redirects=False,
        )
        self.assertEqual(acted.status_code, 302, acted.text[:2000])
        approved = session.get(changelist_url)
        self.assertIn("Approved 1 credit request(s).", approved.text)
        credit_request.refresh_from_db()
        self.assertEqual(credit_request.status, CreditRequest.Status.APPROVED)
        self.assertEqual(Seller.objects.get(pk=seller.pk).balance, 7_000)
        recorded = AuditEvent.objects.get(
            pgh_label="credit_request.approved", pgh_obj_id=str(credit_request.pk)
        )
        self.assertEqual(
            (recorded.pgh_context["user"], recorded.pgh_context["remote_addr"]),
            (authenticator.user_id, "198.51.100.23"),
        )

        logged_out = session.post(
            self.url("/admin/logout/"),
            data={"csrfmiddlewaretoken": csrf_token(approved)},
            headers=origin,
        )
        self.assertEqual(logged_out.status_code, 200)
        self.assertIn("Logged out", logged_out.text)
        after = session.get(self.url("/admin/"), allow_redirects=False)
        self.assertEqual(after.status_code, 302)
        self.assertIn("/admin/login/", after.headers["Location"])

    def test_a_request_id_is_echoed_and_on_every_json_line_of_its_charge(self):
        seller = seller_make(balance=1_000)
        token = api_key_make(seller.user)
        response = ProxiedSession().post(
            self.url("/api/payments/phone-charge/"),
            json={"phone_number": "+14155550123", "amount": 40},
            headers={"Authorization": f"Token {token}", "X-Request-ID": "prod-charge-1"},
        )
        self.assertEqual(response.status_code, 201, response.text)
        self.assertEqual(response.headers["X-Request-ID"], "prod-charge-1")

        lines = self.server.wait_for_lines(
            lambda line: line.get("request_id") == "prod-charge-1", 2
        )
        by_logger = {line["logger"]: line for line in lines}
        self.assertEqual(
            set(by_logger), {"payments.services", "django_structlog.middlewares.request"}
        )
        money = by_logger["payments.services"]
        self.assertEqual(
            {key: money[key] for key in ["level", "seller", "amount", "transaction_id", "kind"]},
            {
                "level": "info",
                "seller": seller.pk,
                "amount": 40,
                "transaction_id": response.json()["transaction_id"],
                "kind": "charge",
            },
        )
        finished = by_logger["django_structlog.middlewares.request"]
        self.assertEqual(
            {key: finished[key] for key in ["method", "path", "status", "user_id", "remote_addr"]},
            {
                "method": "POST",
                "path": "/api/payments/phone-charge/",
                "status": 201,
                "user_id": seller.user.pk,
                "remote_addr": "127.0.0.1",
            },
        )
        self.assertIsInstance(finished["pid"], int)
        for line in lines:
            self.assertEqual(list(line)[:4], ["timestamp", "level", "logger", "message"])
        self.assertNotIn(token, self.server.output())

    @skipUnless(REDIS_SERVER, "redis-server is not installed (.ci/run installs it)")
    def test_the_charge_limit_holds_across_four_workers_with_redis(self):
        seller = seller_make(balance=1_000)

        results = charge_storm(self.server, seller, Host=HOST, **{"X-Forwarded-Proto": "https"})

        self.assertEqual(
            Counter(results),
            Counter({(201, ""): CHARGE_RATE, (429, "throttled"): STORM - CHARGE_RATE}),
        )
        workers = statuses_by_worker(self.server, seller)
        self.assertGreaterEqual(len(workers), 2, workers)
        self.assertEqual(Seller.objects.get(pk=seller.pk).balance, 1_000 - CHARGE_RATE)


class WithoutRedisTests(ServerTestCase):
    """Four workers, no REDIS_URL, no proxy declared, HTTPS redirect turned off."""

    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
    environment = {
        "WEB_CONCURRENCY": "4",
        "PAYLEDGER_CHARGE_RATE": f"{CHARGE_RATE}/minute",
        "SECURE_SSL_REDIRECT": "false",
    }

    def test_without_redis_each_worker_keeps_its_own_count_so_the_limit_multiplies(self):
        seller = seller_make(balance=1_000)

        results = charge_storm(self.server, seller)

        # Each worker process counts in its own memory: every worker that served
        # charges allowed up to the limit by itself, so together they let more
        # than the documented limit through. That is why production sets REDIS_URL.
        workers = statuses_by_worker(self.server, seller)
        self.assertGreaterEqual(len(workers), 2, workers)
        for served in workers.values():
            self.assertEqual(served[201], min(CHARGE_RATE, served.total()), workers)
        charged = sum(1 for status, _ in results if status == 201)
        self.assertEqual(charged, sum(served[201] for served in workers.values()))
        self.assertGreater(charged, CHARGE_RATE)
        self.assertEqual(Seller.objects.get(pk=seller.pk).balance, 1_000 - charged)

    def test_without_proxy_count_x_forwarded_proto_does_not_make_a_request_secure(self):
        response = requests.get(
            self.url("/api/schema/"), headers={"Host": HOST, "X-Forwarded-Proto": "https"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("Strict-Transport-Security", response.headers)


class DatabaseDownTests(ServerTestCase):
    """The production defaults, with the database at a port nothing listens on."""

    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
    environment = {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/payledger",
        "WEB_CONCURRENCY": "1",
    }

    def test_the_process_is_alive_but_not_ready_and_names_the_database(self):
        self.assertEqual(requests.get(self.url("/healthz")).status_code, 200)
        response = requests.get(self.url("/readyz"), allow_redirects=False)
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.headers["Content-Type"], "application/json")
        self.assertEqual(
            response.json(), {"code": "not_ready", "message": "Unavailable: database."}
        )

    def test_without_proxy_count_x_forwarded_proto_is_ignored(self):
        response = requests.get(
            self.url("/api/sellers/"),
            headers={"Host": HOST, "X-Forwarded-Proto": "https"},
            allow_redirects=False,
        )
        self.assertEqual(response.status_code, 301)
        self.assertEqual(response.headers["Location"], f"https://{HOST}/api/sellers/")
