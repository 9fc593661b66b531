"""A local webhook receiver for the delivery tests: loopback only, bounded in
requests and lifetime, stopping by itself.

Each endpoint is a path (``/<name>``); a ``behaviour(event_id, nth_request)``
decides what each request gets: an HTTP status, ``HANG`` to answer only
after the sender's timeout, or ``DRIP`` to answer 200 a byte every
``DRIP_INTERVAL``. Every request is recorded with when it arrived, when it
ended (about to be answered, or the sender hung up), its Host header and
whether the ``standardwebhooks`` library (not PayLedger's code) verifies it
with the endpoint's secret; every connection accepted is counted, whatever came
over it.

``Receiver(tls=True)`` answers HTTPS with the certificate in ``tls/`` for
``receiver.payledger.test`` (signed by ``tls/ca.pem``, whose key was thrown
away) and records the server name each client asked for (SNI).
"""

import contextlib
import select
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks import Webhook, WebhookVerificationError

HANG = "hang"
DRIP = "drip"
DRIP_INTERVAL = 0.2
DRIPPED_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
TLS = Path(__file__).parent / "tls"
TLS_NAME = "receiver.payledger.test"
PORTS = range(8400, 8500)  # this project's port range for test receivers
LIFETIME = 120.0
MAX_REQUESTS = 2_000


@dataclass
class Received:
    path: str
    event_id: int
    body: bytes
    signature: str  # the webhook-signature header
    signature_valid: bool
    answered: int | None  # None: the sender hung up first
    started: float
    ended: float
    host: str = ""
    headers: dict[str, str] | None = None


def signature_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether the Standard Webhooks library verifies this delivery with ``secret``."""
    if not secret:
        return False
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


class Receiver:
    def __init__(
        self,
        behaviour: Callable[[int, int], int | str],
        hang_seconds: float = 2.0,
        tls: bool = False,
    ):
        self.behaviour = behaviour
        self.hang_seconds = hang_seconds
        self.secrets: dict[str, str] = {}
        self.received: list[Received] = []
        self.arrivals: list[tuple[str, int]] = []
        self.connections = 0
        self.server_names: list[str | None] = []  # SNI, over TLS
        self.arrived = threading.Condition()
        self._counts: Counter = Counter()
        self.server = self._bind()
        self.port = self.server.server_address[1]
        if tls:
            self.server.socket = self._tls_context().wrap_socket(
                self.server.socket, server_side=True
            )
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self._timer = threading.Timer(LIFETIME, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(TLS / "receiver.pem")
        context.sni_callback = lambda tls_socket, name, _: self.server_names.append(name)
        return context

    def _bind(self) -> ThreadingHTTPServer:
        receiver = self

        class Server(ThreadingHTTPServer):
            def verify_request(self, request, client_address) -> bool:
                receiver.connections += 1
                return True

        handler = self._handler_class()
        for port in PORTS:
            try:
                server = Server(("127.0.0.1", port), handler)
            except OSError:
                continue
            server.daemon_threads = True
            return server
        raise OSError(f"no free port in {PORTS}")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``done()``, asked whenever a request arrives or ends."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.arrived.wait(remaining)
        return True

    def _record(self, received: Received) -> None:
        with self.arrived:
            self.received.append(received)
            self.arrived.notify_all()

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_POST(self):
                started = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                event_id = int(self.headers.get("webhook-id", 0))
                signature = self.headers.get("webhook-signature", "")
                headers = dict(self.headers.items())
                path = self.path.strip("/")
                with receiver.arrived:
                    receiver.arrivals.append((path, event_id))
                    receiver._counts[path, event_id] += 1
                    nth = receiver._counts[path, event_id]
                    over = sum(receiver._counts.values()) > MAX_REQUESTS
                    receiver.arrived.notify_all()
                answer = 503 if over else receiver.behaviour(event_id, nth)
                if answer == HANG:
                    answer = 200 if self._wait_unless_hung_up(receiver.hang_seconds) else None
                dripped = answer == DRIP
                if dripped:
                    answer = 200 if self._drip(DRIPPED_ANSWER) else None
                secret = receiver.secrets.get(path, "")
                # Recorded before the answer goes out (unless dripped), so a
                # sender that has its answer finds the request already recorded.
                receiver._record(
                    Received(
                        path=path,
                        event_id=event_id,
                        body=body,
                        signature=signature,
                        signature_valid=signature_valid(secret, headers, body),
                        answered=answer,
                        started=started,
                        ended=time.monotonic(),
                        host=self.headers.get("Host", ""),
                        headers=headers,
                    )
                )
                if answer is not None and not dripped:
                    with contextlib.suppress(OSError):
                        self.send_response(answer)
                        self.send_header("Content-Length", "0")
                        self.end_headers()

            def _drip(self, answer: bytes) -> bool:
                """Send ``answer`` a byte every DRIP_INTERVAL; False once the sender hangs up."""
                for byte in answer:
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return False
                    time.sleep(DRIP_INTERVAL)
                return True

            def _wait_unless_hung_up(self, seconds: float) -> bool:
                """Sleep ``seconds``; False as soon as the sender closes the connection."""
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    readable, _, _ = select.select([self.connection], [], [], 0.01)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        return False
                return True

        return Handler
