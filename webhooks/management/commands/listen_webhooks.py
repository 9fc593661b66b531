import signal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from payledger_project.exceptions import DomainError
from sellers.models import Seller
from webhooks.listener import Listener, listener_make
from webhooks.models import WebhookEndpoint
from webhooks.services import (
    SUBSCRIBABLE_EVENT_TYPES,
    webhook_endpoint_create,
    webhook_endpoint_delete,
)

HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class Command(BaseCommand):
    help = (
        "Receive a seller's webhooks on this machine: listen on a loopback port, register"
        " it as an endpoint for the seller (unless it is one already), verify each delivery"
        " with the Standard Webhooks library and print it on one line. Ctrl-C stops it and"
        " removes the endpoint it registered. Deliveries are made by the worker"
        " (`manage.py deliver_webhooks`). Needs DEBUG on and PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK"
        " (the development settings' default)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True, help="the seller's username")
        parser.add_argument(
            "--port", type=int, default=DEFAULT_PORT, help=f"loopback port (default {DEFAULT_PORT})"
        )
        parser.add_argument(
            "--event-types",
            nargs="+",
            choices=SUBSCRIBABLE_EVENT_TYPES,
            metavar="TYPE",
            help="event types to register for (default: all); test events always come",
        )

    def handle(self, *args, username: str, port: int, event_types: list[str] | None, **options):
        if not 0 <= port <= 65535:
            raise CommandError(f"--port {port}: a port is 0 (any free one) to 65535.")
        if not settings.PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK:
            raise CommandError(
                "Webhooks to loopback are off: run with DEBUG on and"
                " PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK=true (the development settings' default)."
            )
        seller = Seller.objects.filter(user__username=username).first()
        if seller is None:
            known = get_user_model().objects.filter(username=username).exists()
            raise CommandError(
                f"{username!r} is not a seller." if known else f"No user named {username!r}."
            )
        try:
            server = listener_make(host=HOST, port=port, write=self._line)
        except OSError as error:
            raise CommandError(f"Cannot listen on {HOST}:{port}: {error.strerror}.") from None
        port = server.server_address[1]
        url = f"http://{HOST}:{port}/"
        endpoint = WebhookEndpoint.objects.filter(seller=seller, url=url).first()
        created = endpoint is None
        if created:
            try:
                endpoint = webhook_endpoint_create(
                    seller=seller,
                    url=url,
                    event_types=event_types or SUBSCRIBABLE_EVENT_TYPES,
                )
            except (DomainError, ValidationError) as error:
                server.server_close()
                raise CommandError(f"Cannot register {url}: {error}") from None
            self._line(
                f"Registered endpoint #{endpoint.pk} for {username}'s events at {url}"
                f" (removed when this stops). Its signing secret, shown once: {endpoint.secret}"
            )
        else:
            self._line(
                f"Using endpoint #{endpoint.pk}, already registered for {username} at {url}"
                f" (kept when this stops)."
            )
        server.endpoint_id = endpoint.pk
        self._serve(server, url)
        if created:
            webhook_endpoint_delete(endpoint=endpoint)
            self._line(f"Removed endpoint #{endpoint.pk}.")

    def _serve(self, server: Listener, url: str) -> None:
        def stop(signum, frame):
            raise KeyboardInterrupt

        # SIGINT too: a shell starting this in the background sets it to be ignored.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self._line(
            f"Listening on {url}; deliveries come from the worker (`python manage.py"
            " deliver_webhooks`). Ctrl-C stops."
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()

    def _line(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
