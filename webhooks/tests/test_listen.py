"""`manage.py listen_webhooks`, the developer's local receiver: run as the docs
say, in a process of its own, with a real worker delivering to it."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import TestCase, TransactionTestCase, override_settings, tag
from django.urls import reverse

from payments.models import Event
from payments.services import phone_charge_create
from testing.factories import client_for, seller_make
from testing.servers import database_url_of_the_tests, free_port
from webhooks.listener import delivery_line
from webhooks.models import WebhookEndpoint
from webhooks.services import (
    webhook_endpoint_create,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_test_send,
)
from webhooks.signing import webhook_headers

ROOT = Path(settings.BASE_DIR)
WAIT = 30


def developer_environment() -> dict[str, str]:
    """A developer's shell: DEBUG on (so manage.py takes the development settings),
    their database, and the keys the test's rows were encrypted with."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DEBUG": "true",
        "DATABASE_URL": database_url_of_the_tests(),
        "PAYLEDGER_WEBHOOK_SECRET_KEYS": ",".join(settings.PAYLEDGER_WEBHOOK_SECRET_KEYS),
    }


class Listener:
    """`python manage.py listen_webhooks --username <name> --port <port>`, its output."""

    def __init__(self, username: str, port: int | None = None):
        self.port = port or free_port()
        self.directory = tempfile.TemporaryDirectory(prefix="payledger-listen-")
        self.log = Path(self.directory.name) / "listen.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "listen_webhooks", "--username", username,
                 "--port", str(self.port)],
                cwd=ROOT,
                env=developer_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.wait_for("Listening on")

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + WAIT
        while text not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from the listener:\n{self.output()}")
            time.sleep(0.05)
        return self.output()

    def interrupt(self) -> int:
        """Ctrl-C, as a developer stops it; its exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=WAIT)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.directory.cleanup()


def deliver_until_idle() -> subprocess.CompletedProcess:
    """One pass of the worker as a developer runs it: `manage.py deliver_webhooks --until-idle`."""
    return subprocess.run(
        [sys.executable, "manage.py", "deliver_webhooks", "--until-idle"],
        cwd=ROOT,
        env=developer_environment(),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


@tag("long")
class ListenWebhooksTests(TransactionTestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.listener = Listener(self.seller.user.username)
        self.addCleanup(self.listener.cleanup)

    def test_it_registers_a_loopback_endpoint_and_shows_its_secret_once(self):
        endpoint = WebhookEndpoint.objects.get(seller=self.seller)
        self.assertEqual(endpoint.url, f"http://127.0.0.1:{self.listener.port}/")
        self.assertEqual(self.listener.output().count(endpoint.secret), 1)

    def test_it_prints_each_delivery_the_worker_makes_as_verified(self):
        phone_charge_create(seller_id=self.seller.pk, phone_number="+14155550123", amount=25)
        event = Event.objects.filter(seller=self.seller).latest("id")
        worker = deliver_until_idle()
        self.assertEqual(worker.returncode, 0, worker.stderr)
        self.assertIn("1 deliveries attempted", worker.stdout)
        output = self.listener.wait_for(f"id={event.pk}")
        self.assertIn(f"verified phone_charge.created id={event.pk} data=", output)

    def test_it_prints_a_test_event_sent_to_its_endpoint(self):
        test_event = webhook_endpoint_test_send(endpoint=WebhookEndpoint.objects.get())
        self.assertEqual(deliver_until_idle().returncode, 0)
        output = self.listener.wait_for(f"id={test_event.pk}")
        endpoint_id = WebhookEndpoint.objects.get().pk
        self.assertIn(
            f'verified webhook.test id={test_event.pk} data={{"endpoint":{endpoint_id}}}', output
        )

    def test_it_refuses_a_delivery_with_a_wrong_signature(self):
        body = b'{"id": 1, "type": "phone_charge.created"}'
        headers = webhook_headers(
            secrets=["whsec_" + "A" * 43 + "="],
            message_id="1",
            timestamp=int(time.time()),
            body=body,
            today=WebhookEndpoint.objects.get().created_at.date(),
        )
        answer = requests.post(
            f"http://127.0.0.1:{self.listener.port}/", data=body, headers=headers, timeout=10
        )
        self.assertEqual(answer.status_code, 400)
        self.assertIn("refused: No matching signature found", self.listener.wait_for("refused"))

    def test_a_negative_body_length_is_refused_at_once(self):
        # Read as "until the sender closes", it would hang the one-thread listener.
        with socket.create_connection(("127.0.0.1", self.listener.port), timeout=10) as peer:
            peer.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n")
            self.assertTrue(peer.recv(64).startswith(b"HTTP/1.0 400"))

    def test_ctrl_c_stops_it_and_removes_the_endpoint_it_registered(self):
        self.assertEqual(self.listener.interrupt(), 0)
        self.assertFalse(WebhookEndpoint.objects.exists())
        self.assertIn("Removed endpoint", self.listener.output())


@tag("long")
class ListenOnARegisteredEndpointTests(TransactionTestCase):
    """As the docs' example: the seller registers the loopback URL through the API
    first, then listens on it."""

    def test_it_uses_the_endpoint_registered_before_and_keeps_it_when_stopped(self):
        seller = seller_make(balance=100)
        port = free_port()
        registered = client_for(seller.user).post(
            reverse("webhook-endpoint-list"),
            {"url": f"http://127.0.0.1:{port}/", "event_types": ["phone_charge.created"]},
            format="json",
        )
        self.assertEqual(registered.status_code, 201, registered.content)
        listener = Listener(seller.user.username, port=port)
        self.addCleanup(listener.cleanup)
        phone_charge_create(seller_id=seller.pk, phone_number="+14155550123", amount=5)
        self.assertEqual(deliver_until_idle().returncode, 0)
        listener.wait_for("verified phone_charge.created")
        self.assertEqual(listener.interrupt(), 0)
        self.assertIn(f"Using endpoint #{registered.json()['id']}", listener.output())
        self.assertNotIn(registered.json()["secret"], listener.output())
        self.assertTrue(WebhookEndpoint.objects.filter(pk=registered.json()["id"]).exists())


class ListenWebhooksRefusalTests(TestCase):
    def listen(self, username: str) -> None:
        call_command("listen_webhooks", "--username", username, "--port", "0", stdout=StringIO())

    def test_an_unknown_user_is_named(self):
        with self.assertRaisesMessage(CommandError, "No user named 'nobody'."):
            self.listen("nobody")

    def test_a_user_without_a_seller_is_refused(self):
        get_user_model().objects.create_user(username="staffer")
        with self.assertRaisesMessage(CommandError, "'staffer' is not a seller."):
            self.listen("staffer")

    def test_a_port_out_of_range_is_refused(self):
        with self.assertRaisesMessage(CommandError, "--port 70000"):
            call_command("listen_webhooks", "--username", "alice", "--port", "70000")

    @override_settings(PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK=False)
    def test_without_the_loopback_switch_it_says_which_setting_to_turn_on(self):
        with self.assertRaisesMessage(CommandError, "PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK=true"):
            self.listen(seller_make().user.username)
        self.assertFalse(WebhookEndpoint.objects.exists())


class DeliveryLineTests(TestCase):
    """What the listener prints for one delivery, verified by the library."""

    def setUp(self):
        self.endpoint = webhook_endpoint_create(
            seller=seller_make(), url="http://127.0.0.1:8400/", event_types=["phone_charge.created"]
        )
        self.body = b'{"id":7,"type":"phone_charge.created","data":{"amount":5}}'

    def headers(self, secret: str, timestamp: int | None = None) -> dict[str, str]:
        return webhook_headers(
            secrets=[secret],
            message_id="7",
            timestamp=timestamp or int(time.time()),
            body=self.body,
            today=self.endpoint.created_at.date(),
        )

    def line(self, headers: dict[str, str], body: bytes | None = None) -> tuple[bool, str]:
        return delivery_line(endpoint_id=self.endpoint.pk, headers=headers, body=body or self.body)

    def test_a_signed_delivery_is_one_verified_line_with_its_event(self):
        self.assertEqual(
            self.line(self.headers(self.endpoint.secret)),
            (True, 'verified phone_charge.created id=7 data={"amount":5}'),
        )

    def test_a_changed_body_is_refused(self):
        verified, line = self.line(self.headers(self.endpoint.secret), body=self.body + b" ")
        self.assertEqual((verified, line.split(":")[0]), (False, "refused"))

    def test_an_old_timestamp_is_refused(self):
        old = self.headers(self.endpoint.secret, timestamp=int(time.time()) - 3600)
        self.assertEqual(
            self.line(old), (False, "refused: Message timestamp too old (webhook-id 7)")
        )

    def test_the_secret_is_read_again_so_a_rotation_is_followed(self):
        new = webhook_endpoint_secret_rotate(endpoint=self.endpoint).secret
        self.assertTrue(self.line(self.headers(new))[0])
