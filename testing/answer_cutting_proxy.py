"""A loopback TCP proxy that loses some answers after the server committed them.

Clients talk to the proxy, the proxy to an app server. For a POST sent with an
Idempotency-Key, the proxy may, once the server's answer starts to arrive (so
the server's transaction committed: PayLedger commits before it answers),
drop that answer and reset the client's connection: the client sees a lost
connection for work that was done, and must retry under the same key to learn
the answer. Each cut is recorded with the key and the status the client never
saw, for a checker to hold the retry's answer to.
"""

import contextlib
import random
import re
import socket
import struct
import threading
from dataclasses import dataclass

STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) ")
KEY_HEADER = re.compile(rb"\r\nidempotency-key: *([^\r\n]+)", re.IGNORECASE)
METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ", b"OPTIONS ")


@dataclass(frozen=True)
class Cut:
    key: str
    status: int  # the answer the client never got


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST, as a dropped link looks to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Link:
    """One client connection and its upstream one, and the request in flight."""

    def __init__(self, proxy: "AnswerCuttingProxy", client: socket.socket):
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.in_flight_key: str | None = None  # a keyed POST waiting for its answer
        self.awaiting_answer = False

    def run(self) -> None:
        try:
            self.upstream = socket.create_connection(self.proxy.upstream, timeout=None)
        except OSError:
            _reset(self.client)
            return
        threading.Thread(target=self.answers, daemon=True).start()
        self.requests()

    def requests(self) -> None:
        """Client to server: note each request's start (and its key, for a POST)."""
        try:
            while data := self.client.recv(65536):
                if data.startswith(METHODS):
                    key = KEY_HEADER.search(data) if data.startswith(b"POST ") else None
                    self.in_flight_key = key.group(1).decode().strip() if key else None
                    self.awaiting_answer = True
                self.upstream.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def answers(self) -> None:
        """Server to client: the first bytes of an answer to a keyed POST may be cut."""
        try:
            while data := self.upstream.recv(65536):
                if self.awaiting_answer:
                    self.awaiting_answer = False
                    status = STATUS_LINE.match(data)
                    if self.in_flight_key and status and self.proxy.cut_now(int(status[1])):
                        self.proxy.cut_record(Cut(self.in_flight_key, int(status[1])))
                        _reset(self.client)
                        break
                self.client.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is not None:
                sock.close()


class AnswerCuttingProxy:
    """Listens on a free loopback port and forwards to ``upstream`` (host, port),
    cutting answers of keyed POSTs with probability ``cut_probability`` once
    ``cutting`` is set; 2xx and 4xx answers only (those are committed and stored
    under the key; a 5xx is a fault of its own)."""

    def __init__(self, upstream: tuple[str, int], *, cut_probability: float):
        self.upstream = upstream
        self.cut_probability = cut_probability
        self.cutting = threading.Event()
        self.cuts: list[Cut] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_now(self, status: int) -> bool:
        return (
            self.cutting.is_set() and 200 <= status < 500 and random.random() < self.cut_probability
        )

    def cut_record(self, cut: Cut) -> None:
        with self._lock:
            self.cuts.append(cut)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=_Link(self, client).run, daemon=True).start()

    def stop(self) -> None:
        self._listener.close()
