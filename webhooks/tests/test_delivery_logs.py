"""Every recorded delivery attempt writes one log line, rendered as the server writes
it (``LOG_FORMAT=json``): a failure says which endpoint, event and attempt, what went
wrong and when the next attempt is; a delivery says so at INFO."""

import io
import json
import logging
from datetime import datetime
from io import StringIO

from django.core.management import call_command
from django.test import TestCase, TransactionTestCase, override_settings

from payledger_project.ops.logs import formatter
from payments.services import phone_charge_create
from testing.factories import seller_make
from testing.servers import closed_port
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_deliver_next, webhook_endpoint_create
from webhooks.tests.receiver import HANG, Receiver

PHONE = "+14155550123"


class JsonLines:
    """The JSON lines written to ``logger`` while it is attached."""

    def __init__(self, test: TestCase, logger: str):
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(formatter("json"))
        logging.getLogger(logger).addHandler(handler)
        test.addCleanup(logging.getLogger(logger).removeHandler, handler)

    def __call__(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


class DeliveryLogTests(TestCase):
    def setUp(self):
        self.answers: list[int | str] = []
        self.receiver = Receiver(lambda event_id, nth: self.answers.pop(0) if self.answers else 200)
        self.addCleanup(self.receiver.stop)
        self.seller = seller_make(balance=1_000)
        self.lines = JsonLines(self, "webhooks.services")

    def endpoint_for(self, url: str) -> WebhookEndpoint:
        return webhook_endpoint_create(
            seller=self.seller, url=url, event_types=["phone_charge.created"]
        )

    def charge_and_deliver(self) -> int:
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)
        webhook_deliver_next()
        return charge.pk

    def assertFailureLine(self, endpoint: WebhookEndpoint, *, status_code, error) -> dict:
        (line,) = self.lines()
        delivery = WebhookDelivery.objects.get()
        endpoint.refresh_from_db()
        self.assertEqual(line["level"], "warning")
        self.assertEqual(
            {key: line[key] for key in ["webhook_endpoint", "event_id", "attempt"]},
            {"webhook_endpoint": endpoint.pk, "event_id": delivery.event_id, "attempt": 1},
        )
        self.assertEqual((line["status_code"], line["error"]), (status_code, error))
        self.assertEqual(datetime.fromisoformat(line["next_attempt_at"]), endpoint.next_attempt_at)
        return line

    def test_a_receiver_error_is_logged_with_its_status_and_the_next_attempt(self):
        endpoint = self.endpoint_for(self.receiver.url("hooks"))
        self.answers = [500]
        self.charge_and_deliver()
        line = self.assertFailureLine(endpoint, status_code=500, error=None)
        self.assertIn("answered 500", line["message"])

    def test_a_receiver_that_times_out_is_logged_with_the_error(self):
        endpoint = self.endpoint_for(self.receiver.url("hooks"))
        self.answers = [HANG]
        self.charge_and_deliver()
        self.assertFailureLine(endpoint, status_code=None, error="deadline exceeded")

    def test_a_refused_connection_is_logged_with_the_error(self):
        endpoint = self.endpoint_for(f"http://127.0.0.1:{closed_port()}/hooks")
        self.charge_and_deliver()
        error = WebhookDelivery.objects.get().error
        self.assertTrue(error)
        self.assertFailureLine(endpoint, status_code=None, error=error)

    def test_a_delivery_is_logged_at_info(self):
        endpoint = self.endpoint_for(self.receiver.url("hooks"))
        self.charge_and_deliver()
        (line,) = self.lines()
        self.assertEqual(
            {key: line[key] for key in ["level", "webhook_endpoint", "attempt", "status_code"]},
            {"level": "info", "webhook_endpoint": endpoint.pk, "attempt": 1, "status_code": 200},
        )

    @override_settings(PAYLEDGER_WEBHOOK_RETRY_WINDOW=0)
    def test_an_endpoint_marked_failing_is_logged_as_an_error(self):
        endpoint = self.endpoint_for(self.receiver.url("hooks"))
        self.answers = [500]
        self.charge_and_deliver()
        (line,) = self.lines()
        self.assertEqual(line["level"], "error")
        self.assertEqual(line["webhook_endpoint"], endpoint.pk)
        self.assertIn("failing", line["message"])
        self.assertNotIn("next_attempt_at", line)

    def test_the_log_line_never_carries_the_url_or_the_secret(self):
        endpoint = self.endpoint_for(self.receiver.url("hooks?token=private"))
        self.answers = [500]
        self.charge_and_deliver()
        output = json.dumps(self.lines())
        self.assertNotIn("private", output)
        self.assertNotIn(endpoint.secret, output)


class WorkerCommandLogTests(TransactionTestCase):
    def test_the_worker_logs_its_start_and_how_many_deliveries_it_attempted(self):
        lines = JsonLines(self, "webhooks.management.commands.deliver_webhooks")
        stdout = StringIO()
        call_command("deliver_webhooks", "--until-idle", stdout=stdout)
        self.assertEqual(stdout.getvalue(), "")
        started, stopped = lines()
        self.assertIn("started", started["message"])
        self.assertEqual(stopped["deliveries"], 0)
