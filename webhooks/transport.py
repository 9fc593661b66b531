"""One webhook POST: to an address that was checked, within one deadline.

Why not ``requests``, which sent webhooks before:

- it resolves the host again when it connects, so a DNS answer that changes
  between the check and the connection (rebinding) reaches an address nobody
  checked;
- its timeout bounds each socket read, not the request: a receiver sending its
  answer a byte at a time held a delivery as long as it liked;
- it honours proxy environment variables, and a proxy resolves the name itself.

So a delivery resolves the URL once (``webhook_url_resolve``, which refuses the
URL if any answer is refused) and opens a TCP connection to those addresses, in
the resolver's order. Over HTTPS the socket is wrapped with the URL's host name
as ``server_hostname``: that name is sent as SNI and the certificate is verified
against it (``check_hostname``), whatever address was dialled. The request is
the standard library's ``http.client`` over that socket, with the URL's host in
the ``Host`` header; it never follows a redirect (a 3xx is just not a 2xx).
urllib3 can pin an address too (a pool for the IP with ``server_hostname`` and
``assert_hostname``), but the deadline below would need its private connection
hooks, and a pool buys nothing for one request per connection.

The deadline: before each blocking socket operation (connect, TLS handshake,
every send and every read) the socket's timeout is set to the time left, and
an operation started after the deadline fails at once. CPython bounds a TLS
handshake, an SSL read or write and ``sendall`` as a whole by the timeout,
and a plain read returns as soon as a byte arrives, so however the receiver
drips, nothing waits past the deadline. The lookup runs in a thread it may
leave behind (see ``url_safety._lookup``). The answer's body is never read.
"""

import functools
import http.client
import socket
import ssl
import time

import certifi
from django.conf import settings

from webhooks.url_safety import WebhookTarget, webhook_url_resolve

DEADLINE_EXCEEDED = "deadline exceeded"


class DeliveryFailed(Exception):
    """The receiver was not reached, or did not answer in time; the message says how."""


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(DEADLINE_EXCEEDED)
    return left


class _DeadlineSocket(socket.socket):
    """A TCP socket none of whose sends or reads waits past ``deadline``."""

    deadline: float  # time.monotonic()

    def recv(self, *args):
        self.settimeout(_time_left(self.deadline))
        return super().recv(*args)

    def recv_into(self, *args):
        self.settimeout(_time_left(self.deadline))
        return super().recv_into(*args)

    def send(self, *args):
        self.settimeout(_time_left(self.deadline))
        return super().send(*args)

    def sendall(self, *args):
        self.settimeout(_time_left(self.deadline))
        return super().sendall(*args)


class _DeadlineTLSSocket(ssl.SSLSocket):
    """The TLS counterpart: ``recv``, ``recv_into`` and ``sendall`` come down to
    ``read`` and ``send``."""

    deadline: float

    def do_handshake(self, *args):
        self.settimeout(_time_left(self.deadline))
        return super().do_handshake(*args)

    def read(self, *args):
        self.settimeout(_time_left(self.deadline))
        return super().read(*args)

    def send(self, *args):
        self.settimeout(_time_left(self.deadline))
        return super().send(*args)


@functools.cache
def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle)
    context.sslsocket_class = _DeadlineTLSSocket
    return context


def _connect(target: WebhookTarget, deadline: float) -> socket.socket:
    """A connection to the first vetted address that accepts, over TLS for https."""
    refused: OSError = ConnectionError("no address to connect to")
    for family, kind, proto, _, sockaddr in target.addresses:
        plain = _DeadlineSocket(family, kind, proto)
        plain.deadline = deadline
        try:
            plain.settimeout(_time_left(deadline))
            plain.connect(sockaddr)
        except TimeoutError:
            plain.close()
            raise
        except OSError as error:
            plain.close()
            refused = error
            continue
        if target.scheme != "https":
            return plain
        ca_bundle = settings.PAYLEDGER_WEBHOOK_CA_BUNDLE or certifi.where()
        try:
            tls = _tls_context(ca_bundle).wrap_socket(
                plain, server_hostname=target.host, do_handshake_on_connect=False
            )
        except BaseException:
            plain.close()
            raise
        tls.deadline = deadline
        try:
            tls.do_handshake()
        except BaseException:
            tls.close()
            raise
        return tls
    raise refused


class _PinnedConnection(http.client.HTTPConnection):
    """``http.client``'s HTTP/1.1 over a connection to the vetted addresses."""

    def __init__(self, target: WebhookTarget, deadline: float):
        super().__init__(target.host, target.port)
        self.target = target
        self.deadline = deadline

    def connect(self) -> None:
        self.sock = _connect(self.target, self.deadline)


def _failure(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return DEADLINE_EXCEEDED
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"{type(error).__name__}: {error.verify_message}"
    return type(error).__name__


def webhook_post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` and return the answer's status code.

    Raises ``ValidationError`` if the URL may not receive webhooks (its host
    now resolves to a refused address, or not at all), ``DeliveryFailed`` if
    the receiver was not reached or its status and headers did not arrive
    within ``timeout`` seconds of the call."""
    deadline = time.monotonic() + timeout
    try:
        target = webhook_url_resolve(url, timeout=timeout)
        connection = _PinnedConnection(target, deadline)
        try:
            connection.request(
                "POST", target.path, body=body, headers={**headers, "Host": target.host_header}
            )
            return connection.getresponse().status
        finally:
            connection.close()
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise DeliveryFailed(_failure(error)) from None
