"""Real `manage.py deliver_webhooks` processes against a flaky local receiver:
at least once, in order per endpoint, signed, never twice at once, nothing
lost when a worker is killed mid-delivery, and no transaction held while a
receiver takes its time."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase, tag
from django.urls import reverse
from rest_framework import status

from payments.models import Event
from payments.services import (
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
    phone_charge_reverse,
)
from testing.factories import client_for, seller_make, staff_make
from testing.servers import database_url_of_the_tests
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import LEASE_MARGIN, SUBSCRIBABLE_EVENT_TYPES, webhook_endpoint_create
from webhooks.tests.receiver import HANG, Receiver

ROOT = Path(settings.BASE_DIR)
ALL_TYPES = SUBSCRIBABLE_EVENT_TYPES
DELIVERY_DEADLINE = 90


def flaky(event_id: int, nth: int) -> int | str:
    """Some first tries fail with 500 or outlast the sender's timeout; a few fail twice."""
    if nth == 1 and event_id % 3 == 0:
        return 500
    if nth == 1 and event_id % 10 == 5:
        return HANG
    if nth == 2 and event_id % 7 == 0:
        return 502
    return 200


class Workers:
    """`manage.py deliver_webhooks` processes on the test database, and their logs."""

    def __init__(self):
        self.processes: list[subprocess.Popen] = []
        self.logs = tempfile.TemporaryDirectory(prefix="payledger-workers-")

    def start(self, command: list[str] | None = None, **environment: str) -> subprocess.Popen:
        command = command or [sys.executable, "manage.py", "deliver_webhooks", "--poll", "0.05"]
        with open(Path(self.logs.name) / f"worker{len(self.processes)}.log", "wb") as log:
            worker = subprocess.Popen(
                command,
                cwd=ROOT,
                env={
                    "PATH": os.environ["PATH"],
                    "HOME": os.environ.get("HOME", "/tmp"),
                    "LANG": "C.UTF-8",
                    "DJANGO_SETTINGS_MODULE": "payledger_project.test_settings",
                    "DATABASE_URL": database_url_of_the_tests(),
                    # The worker's own lines (started, stopped) are at INFO.
                    "PAYLEDGER_LOG_LEVEL": "INFO",
                    **environment,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(worker)
        return worker

    def stop(self) -> None:
        """SIGTERM, so each finishes the delivery under way; SIGKILL after 20 s."""
        for worker in self.processes:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)  # its group: `make` and the worker
        for worker in self.processes:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

    def output(self) -> str:
        return "\n".join(path.read_text() for path in sorted(Path(self.logs.name).iterdir()))

    def cleanup(self) -> None:
        self.stop()
        self.logs.cleanup()


def endpoint_register(receiver: Receiver, seller, name: str, types: list[str]) -> WebhookEndpoint:
    endpoint = webhook_endpoint_create(seller=seller, url=receiver.url(name), event_types=types)
    receiver.secrets[name] = endpoint.secret
    return endpoint


def activity(seller, charges: int) -> None:
    """Every kind of event: a request approved, charges, one reversed, a request rejected."""
    staff = staff_make(reverser=True)
    approved = credit_request_create(seller=seller, amount=10_000)
    credit_request_approve(credit_request_id=approved.pk, decided_by=staff)
    for number in range(charges):
        charge = phone_charge_create(
            seller_id=seller.pk, phone_number="+14155550123", amount=number + 1
        )
    phone_charge_reverse(charge_id=charge.pk, reversed_by=staff)
    rejected = credit_request_create(seller=seller, amount=5)
    credit_request_reject(credit_request_id=rejected.pk, decided_by=staff, reason="No")


def wanted_by(endpoint: WebhookEndpoint) -> list[int]:
    """The ids of the events ``endpoint`` subscribed to, written after it was registered."""
    events = Event.objects.filter(
        seller=endpoint.seller_id, id__gt=endpoint.last_event_id, type__in=endpoint.event_types
    )
    return list(events.order_by("id").values_list("id", flat=True))


def accepted(receiver: Receiver, name: str) -> set[int]:
    return {
        r.event_id
        for r in receiver.received
        if r.path == name and r.answered and 200 <= r.answered < 300
    }


def delivered_everything(
    receiver: Receiver, wanted: dict[str, list[int]], timeout: float = DELIVERY_DEADLINE
) -> bool:
    return receiver.wait_for(
        lambda: all(set(ids) <= accepted(receiver, name) for name, ids in wanted.items()),
        timeout=timeout,
    )


def cursors_passed_the_last_events(endpoints, timeout: float = 10) -> None:
    """Wait until each endpoint's cursor is at its seller's newest event, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(
            WebhookEndpoint.objects.get(pk=endpoint.pk).last_event_id
            == Event.objects.filter(seller=endpoint.seller_id).latest("id").pk
            for endpoint in endpoints
        ):
            return
        time.sleep(0.05)


def arrival_order(receiver: Receiver, name: str) -> list[int]:
    return [event_id for path, event_id in receiver.arrivals if path == name]


@tag("long")
class TwoWorkersTests(TransactionTestCase):
    """Two workers drain three endpoints of two sellers through a flaky receiver,
    once for the class; each test checks one promise of what happened."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.receiver = Receiver(flaky)
        cls.addClassCleanup(cls.receiver.stop)
        workers = Workers()
        cls.addClassCleanup(workers.cleanup)
        alice, bob = seller_make(), seller_make()
        endpoints = {
            "alice-all": endpoint_register(cls.receiver, alice, "alice-all", ALL_TYPES),
            "alice-charges": endpoint_register(
                cls.receiver, alice, "alice-charges", ["phone_charge.created"]
            ),
            "bob-all": endpoint_register(cls.receiver, bob, "bob-all", ALL_TYPES),
        }
        activity(alice, charges=8)
        activity(bob, charges=8)
        cls.wanted = {name: wanted_by(endpoint) for name, endpoint in endpoints.items()}
        workers.start()
        workers.start()
        cls.delivered = delivered_everything(cls.receiver, cls.wanted)
        # An endpoint's last wanted event may be followed by some it does not want:
        # its cursor passes them in the worker's next step, which may still be to come.
        cursors_passed_the_last_events(endpoints.values())
        workers.stop()
        cls.worker_output = workers.output()
        # The database as the workers left it (each test's teardown empties it).
        cls.cursors = {
            name: (endpoint.last_event_id, Event.objects.filter(seller=endpoint.seller).last().pk)
            for name, endpoint in (
                (name, WebhookEndpoint.objects.get(pk=e.pk)) for name, e in endpoints.items()
            )
        }
        cls.attempts_recorded = WebhookDelivery.objects.count()

    def test_every_event_reaches_every_endpoint_that_wants_it(self):
        self.assertTrue(self.delivered, self.worker_output)
        for name, ids in self.wanted.items():
            self.assertEqual(sorted(set(arrival_order(self.receiver, name))), ids, name)

    def test_each_endpoint_gets_its_events_in_order(self):
        for name in self.wanted:
            arrived = arrival_order(self.receiver, name)
            self.assertEqual(arrived, sorted(arrived), name)

    def test_the_receiver_really_failed_and_timed_out_some_deliveries(self):
        answers = {r.answered for r in self.receiver.received}
        self.assertTrue({500, 502, None} <= answers, answers)

    def test_every_delivery_is_signed_with_the_endpoint_secret(self):
        self.assertTrue(all(r.signature_valid for r in self.receiver.received))

    def test_no_event_is_delivered_twice_at_the_same_time(self):
        spans: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for r in self.receiver.received:
            spans.setdefault((r.path, r.event_id), []).append((r.started, r.ended))
        for key, attempts in spans.items():
            attempts.sort()
            for (_, ended), (started, _) in zip(attempts, attempts[1:], strict=False):
                self.assertGreaterEqual(started, ended, key)

    def test_every_attempt_is_recorded_and_each_cursor_passes_the_seller_last_event(self):
        self.assertEqual(self.attempts_recorded, len(self.receiver.received))
        for name, (cursor, newest) in self.cursors.items():
            self.assertEqual(cursor, newest, name)


@tag("long")
class KilledWorkerTests(TransactionTestCase):
    def test_a_worker_killed_mid_delivery_loses_nothing(self):
        held = {}
        receiver = Receiver(
            lambda event_id, nth: HANG if (event_id, nth) == (held.get("id"), 1) else 200,
            hang_seconds=60,
        )
        self.addCleanup(receiver.stop)
        workers = Workers()
        self.addCleanup(workers.cleanup)
        seller = seller_make()
        endpoint = endpoint_register(receiver, seller, "s", ALL_TYPES)
        activity(seller, charges=4)
        wanted = wanted_by(endpoint)
        held["id"] = wanted[2]
        # A timeout far beyond the kill: the worker is surely waiting for the answer.
        timeout = 3.0
        doomed = workers.start(TEST_WEBHOOK_TIMEOUT=str(timeout))
        arrived = receiver.wait_for(lambda: ("s", held["id"]) in receiver.arrivals, timeout=60)
        self.assertTrue(arrived, workers.output())
        doomed.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        doomed.wait()
        # The attempt left no trace: no delivery row, the cursor before it.
        endpoint.refresh_from_db()
        self.assertEqual(endpoint.last_event_id, wanted[1])
        self.assertFalse(WebhookDelivery.objects.filter(event_id=held["id"]).exists())

        workers.start()
        self.assertTrue(delivered_everything(receiver, {"s": wanted}), workers.output())
        workers.stop()
        self.assertEqual(arrival_order(receiver, "s"), sorted(arrival_order(receiver, "s")))
        self.assertEqual(receiver.arrivals.count(("s", held["id"])), 2)
        endpoint.refresh_from_db()
        self.assertEqual(endpoint.last_event_id, wanted[-1])
        # Sent again only once the dead worker's lease ran out (claimed just before the kill).
        again = [r for r in receiver.received if r.event_id == held["id"] and r.answered]
        self.assertGreater(again[0].started - killed_at, timeout + LEASE_MARGIN - 1)


def worker_sessions(application_name: str) -> list[tuple[str, object]]:
    """PostgreSQL: (state, xact_start) of each connection of ``application_name``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, xact_start FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return cursor.fetchall()


def seconds_to(work) -> tuple[object, float]:
    started = time.monotonic()
    result = work()
    return result, time.monotonic() - started


@tag("long")
class HeldDeliveryTests(TransactionTestCase):
    """A receiver holds a delivery longer than a request waits for a lock while its
    seller goes on charging and deletes the endpoint; once for the class, each test
    checks one promise of what happened."""

    WORKER = "payledger-held-worker"
    PROMPT = 2.0  # seconds: the answer did not wait for the delivery

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hold = settings.PAYLEDGER_LOCK_TIMEOUT_MS / 1000 + 1
        receiver = Receiver(lambda event_id, nth: HANG, hang_seconds=cls.hold)
        cls.addClassCleanup(receiver.stop)
        workers = Workers()
        cls.addClassCleanup(workers.cleanup)
        seller = seller_make(balance=100)
        endpoint = endpoint_register(receiver, seller, "slow", ["phone_charge.created"])
        phone_charge_create(seller_id=seller.pk, phone_number="+14155550123", amount=1)
        # libpq names the worker's connection, for pg_stat_activity.
        workers.start(TEST_WEBHOOK_TIMEOUT=str(cls.hold + 10), PGAPPNAME=cls.WORKER)
        cls.arrived = receiver.wait_for(lambda: receiver.arrivals, timeout=30)
        cls.sessions = worker_sessions(cls.WORKER)
        cls.charges = [
            seconds_to(
                lambda: phone_charge_create(
                    seller_id=seller.pk, phone_number="+14155550123", amount=1
                )
            )[1]
            for _ in range(3)
        ]
        client = client_for(seller.user)
        cls.deleted, cls.delete_seconds = seconds_to(
            lambda: client.delete(reverse("webhook-endpoint-detail", args=[endpoint.pk]))
        )
        cls.sessions += worker_sessions(cls.WORKER)
        cls.still_held = not receiver.received
        receiver.wait_for(lambda: receiver.received, timeout=cls.hold + 10)
        workers.stop()  # SIGTERM: the worker first finishes the delivery under way
        cls.worker_output = workers.output()
        cls.deliveries_recorded = WebhookDelivery.objects.count()

    def test_the_receiver_held_the_delivery_throughout(self):
        self.assertTrue(self.arrived, self.worker_output)
        self.assertTrue(self.still_held)

    def test_the_worker_holds_no_transaction_while_it_waits(self):
        self.assertTrue(self.sessions, "the worker's connection was not found")
        for state, transaction_started in self.sessions:
            self.assertEqual((state, transaction_started), ("idle", None))

    def test_charges_go_on_meanwhile(self):
        self.assertEqual(len(self.charges), 3)
        self.assertLess(max(self.charges), self.PROMPT, self.charges)

    def test_the_seller_deletes_the_endpoint_without_waiting(self):
        self.assertEqual(self.deleted.status_code, status.HTTP_204_NO_CONTENT, self.deleted.content)
        self.assertLess(self.delete_seconds, self.PROMPT)

    def test_the_outcome_for_the_deleted_endpoint_is_dropped_and_the_worker_goes_on(self):
        self.assertEqual(self.deliveries_recorded, 0)
        self.assertNotIn("Traceback", self.worker_output)
        self.assertIn("1 deliveries attempted", self.worker_output)


@tag("long")
class MakeWorkerTests(TransactionTestCase):
    def test_make_worker_delivers_and_stops_on_sigterm(self):
        receiver = Receiver(lambda event_id, nth: 200)
        self.addCleanup(receiver.stop)
        workers = Workers()
        self.addCleanup(workers.cleanup)
        seller = seller_make()
        endpoint = endpoint_register(receiver, seller, "s", ALL_TYPES)
        credit_request_create(seller=seller, amount=5)
        worker = workers.start(["make", "worker"])
        self.assertTrue(
            delivered_everything(receiver, {"s": wanted_by(endpoint)}), workers.output()
        )
        workers.stop()
        self.assertIn("1 deliveries attempted", workers.output())
        self.assertIsNotNone(worker.returncode)
