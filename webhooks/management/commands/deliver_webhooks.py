import logging
import os
import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from webhooks.services import webhook_deliver_next

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Deliver events to webhook endpoints until stopped (SIGTERM or SIGINT finish the"
        " delivery under way first). Run as many as you like: they never share an endpoint."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--poll", type=float, default=1.0, help="seconds to wait when nothing is due"
        )
        parser.add_argument(
            "--until-idle", action="store_true", help="exit once nothing is due (cron, tests)"
        )

    def handle(self, *args, poll: float, until_idle: bool, **options):
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # Log lines, not stdout: with LOG_FORMAT=json every line is one JSON object.
        logger.info("deliver_webhooks started, pid %s", os.getpid())
        attempted = 0
        while not stopping:
            close_old_connections()
            if webhook_deliver_next():
                attempted += 1
                continue
            if until_idle:
                break
            time.sleep(poll)
        logger.info(
            "deliver_webhooks stopped: %s deliveries attempted",
            attempted,
            extra={"deliveries": attempted},
        )
