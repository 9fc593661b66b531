"""A receiver on the developer's machine that verifies and prints deliveries
(``manage.py listen_webhooks``, in the spirit of ``stripe listen``).

It answers plain HTTP on a loopback port, checks each delivery with the
published ``standardwebhooks`` library against the endpoint's current secret
(read from the database on every request, so a rotation while it listens is
followed), and writes one line per delivery: ``verified`` with the event, or
``refused`` with the reason. A verified delivery is answered 204, anything else
400, as a real receiver would.
"""

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer

from django.db import close_old_connections
from standardwebhooks import Webhook, WebhookVerificationError

from webhooks.models import WebhookEndpoint

# A delivery is a few kilobytes; a local receiver need not read more.
BODY_MAX = 1 << 20


def delivery_line(*, endpoint_id: int, headers: dict[str, str], body: bytes) -> tuple[bool, str]:
    """Whether the delivery verifies under the endpoint's current secret, and the
    line to print about it."""
    secret = WebhookEndpoint.objects.filter(pk=endpoint_id).values_list("secret", flat=True).first()
    if secret is None:
        return False, f"refused: endpoint #{endpoint_id} no longer exists"
    try:
        event = Webhook(secret).verify(body, headers)
    except WebhookVerificationError as error:
        return False, f"refused: {error} (webhook-id {headers.get('webhook-id', '-')})"
    except ValueError:
        return False, "refused: the body is not JSON"
    compact = json.dumps(event.get("data"), separators=(",", ":"), sort_keys=True)
    return True, f"verified {event.get('type')} id={event.get('id')} data={compact}"


class Listener(HTTPServer):
    endpoint_id: int  # set once the endpoint is known: after the port is bound


def listener_make(*, host: str, port: int, write: Callable[[str], None]) -> Listener:
    """An HTTP server on (host, port) that checks each POST against the secret of
    its ``endpoint_id`` and reports it with ``write``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass  # one line per delivery, written below

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= BODY_MAX:
                # A negative length would read until the sender closes: the one-thread
                # listener would hang.
                write(f"refused: a body length of {self.headers.get('Content-Length')!r}")
                self._answer(413 if length > BODY_MAX else 400)
                return
            body = self.rfile.read(length)
            close_old_connections()
            verified, line = delivery_line(
                endpoint_id=self.server.endpoint_id, headers=dict(self.headers.items()), body=body
            )
            write(line)
            self._answer(204 if verified else 400)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Listener((host, port), Handler)
