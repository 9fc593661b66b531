"""`make prod-local` as the docs tell a newcomer to run it: the production settings
behind a TLS-terminating proxy on localhost, with a webhook worker.

One run for the class: through the proxy's HTTPS the test reads /healthz, logs a
staff user in to the admin, charges a phone by the API and makes the worker fail a
delivery; then it stops the recipe and reads everything it wrote. Every line on
stdout must be one JSON object, none skipped.
"""

import json
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import requests
from django.test import TransactionTestCase, tag

from payments.services import phone_charge_create
from testing.factories import PASSWORD, api_key_make, authenticator_make, otp_code, seller_make
from testing.servers import (
    Server,
    closed_port,
    csrf_token,
    free_port,
    production_environment,
    superuser_make,
)
from webhooks.services import webhook_endpoint_create

START_TIMEOUT = 90
PHONE = "+14155550123"


@tag("long")
class ProdLocalTests(TransactionTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.state_dir = tempfile.TemporaryDirectory(prefix="payledger-prod-local-")
        cls.addClassCleanup(cls.state_dir.cleanup)
        https_port = free_port()
        cls.base_url = f"https://localhost:{https_port}"
        # The recipe's own defaults: no SECRET_KEY (it makes one), no ALLOWED_HOSTS.
        # The webhook keys are the tests', so the worker reads the secret written here.
        environment = production_environment()
        del environment["SECRET_KEY"], environment["ALLOWED_HOSTS"]
        cls.server = Server(
            ["make", "prod-local", f"VENV={sys.prefix}", f"HTTPS_PORT={https_port}",
             f"PROD_LOCAL_DIR={cls.state_dir.name}"],
            environment,
            stderr_apart=True,
        )  # fmt: skip
        cls.addClassCleanup(cls.server.cleanup)
        # The recipe's self-signed certificate, trusted for this session alone
        # (no REQUESTS_CA_BUNDLE from the environment).
        cls.certificate = str(Path(cls.state_dir.name) / "localhost.pem")
        cls.session = requests.Session()
        cls.session.trust_env = False
        cls.session.verify = cls.certificate
        cls.proxy_wait()

        cls.healthz = cls.session.get(cls.url("/healthz"))
        cls.admin_login()
        cls.charge_by_the_api()
        cls.failed_delivery()
        cls.server.stop()
        cls.stdout = cls.server.output()
        cls.stderr = cls.server.errors()

    @classmethod
    def url(cls, path: str) -> str:
        return f"{cls.base_url}{path}"

    @classmethod
    def proxy_wait(cls) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        answer = None
        while time.monotonic() < deadline:
            if cls.server.process.poll() is not None:
                raise AssertionError(f"make prod-local exited:\n{cls.server.errors()}")
            try:
                answer = cls.session.get(cls.url("/healthz"), timeout=5)
                if answer.status_code == 200:
                    return
            except (requests.RequestException, OSError) as error:  # OSError: no certificate yet
                answer = error
            time.sleep(0.2)
        cls.server.stop()
        raise AssertionError(
            f"the proxy did not answer ({answer!r}):\n{cls.server.errors()}{cls.server.output()}"
        )

    @classmethod
    def admin_login(cls) -> None:
        # Production asks staff for their second factor: an enrolled authenticator's code.
        authenticator = authenticator_make(superuser_make())
        login_page = cls.session.get(cls.url("/admin/login/?next=/admin/"))
        cls.logged_in = cls.session.post(
            cls.url("/admin/login/?next=/admin/"),
            data={
                "csrfmiddlewaretoken": csrf_token(login_page),
                "username": "root",
                "password": PASSWORD,
                "otp_code": otp_code(authenticator),
                "next": "/admin/",
            },
            headers={"Origin": cls.base_url, "Referer": cls.url("/admin/login/")},
            allow_redirects=False,
        )
        cls.admin_index = cls.session.get(cls.url("/admin/"), allow_redirects=False)
        cls.cookies = {cookie.name: cookie for cookie in cls.session.cookies}

    @classmethod
    def charge_by_the_api(cls) -> None:
        cls.seller = seller_make(balance=1_000)
        cls.charge = requests.post(
            cls.url("/api/payments/phone-charge/"),
            json={"phone_number": PHONE, "amount": 25},
            headers={"Authorization": f"Token {api_key_make(cls.seller.user)}"},
            verify=cls.certificate,
        )

    @classmethod
    def failed_delivery(cls) -> None:
        """An endpoint on a closed loopback port: the production worker refuses to
        post there and records a failed attempt, which it must log."""
        cls.endpoint = webhook_endpoint_create(
            seller=cls.seller,
            url=f"http://127.0.0.1:{closed_port()}/hooks",
            event_types=["phone_charge.created"],
        )
        phone_charge_create(seller_id=cls.seller.pk, phone_number=PHONE, amount=1)
        cls.failure_lines = cls.server.wait_for_lines(
            lambda line: line.get("webhook_endpoint") == cls.endpoint.pk, 1
        )

    def test_healthz_answers_through_the_proxy_over_https(self):
        self.assertEqual(self.healthz.status_code, 200)
        self.assertEqual(self.healthz.json(), {"status": "ok"})
        self.assertIn("max-age=", self.healthz.headers["Strict-Transport-Security"])

    def test_staff_log_in_to_the_admin_with_secure_cookies(self):
        self.assertEqual(self.logged_in.status_code, 302, self.logged_in.text[:2000])
        self.assertEqual(self.logged_in.headers["Location"], "/admin/")
        self.assertEqual(self.admin_index.status_code, 200)
        self.assertTrue(self.cookies["sessionid"].secure)
        self.assertTrue(self.cookies["csrftoken"].secure)

    def test_a_charge_by_the_api_is_created(self):
        self.assertEqual(self.charge.status_code, 201, self.charge.text)
        self.assertEqual(self.charge.json()["balance"], 975)

    def test_the_worker_logs_the_failed_delivery(self):
        self.assertEqual(len(self.failure_lines), 1, self.stdout[-5000:])
        (line,) = self.failure_lines
        self.assertEqual(line["level"], "warning")
        self.assertEqual(line["attempt"], 1)
        self.assertTrue(line["error"].startswith("refused"), line)
        self.assertIn("next_attempt_at", line)

    def test_every_line_on_stdout_is_one_json_object(self):
        lines = self.stdout.splitlines()
        loggers = set()
        for number, line in enumerate(lines, 1):
            with self.subTest(line=number):
                entry = json.loads(line)
                self.assertIsInstance(entry, dict, line)
                self.assertEqual(list(entry)[:4], ["timestamp", "level", "logger", "message"])
                loggers.add(entry["logger"])
        # The server's, the application's and the worker's lines are all there.
        self.assertLessEqual(
            {
                "gunicorn.error",
                "django_structlog.middlewares.request",
                "payments.services",
                "webhooks.services",
                "webhooks.management.commands.deliver_webhooks",
            },
            loggers,
        )

    def test_stderr_says_where_to_browse_and_shows_no_traceback(self):
        self.assertIn(f"{self.base_url}/admin/", self.stderr)
        self.assertNotIn("Traceback", self.stderr)

    def test_the_throwaway_secrets_are_written_for_the_owner_alone(self):
        secrets = Path(self.state_dir.name) / "secrets.env"
        self.assertEqual(stat.S_IMODE(os.stat(secrets).st_mode), 0o600)
        self.assertIn("SECRET_KEY=", secrets.read_text())

    def test_sigterm_stops_the_server_and_the_worker(self):
        messages = [json.loads(line)["message"] for line in self.stdout.splitlines()]
        self.assertIn("Shutting down: Master", messages)
        self.assertTrue(any(m.startswith("deliver_webhooks stopped") for m in messages))
