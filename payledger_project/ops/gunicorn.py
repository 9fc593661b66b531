"""Gunicorn's own output in the project's shapes: its logs as JSON lines on stdout
(gunicorn.conf.py keeps its error log only), and its refusals as JSON errors.

Named by ``logger_class`` and ``worker_class`` in ``gunicorn.conf.py`` and
imported by gunicorn's master process, before and without Django: standard
library and gunicorn only.
"""

import json
import logging
import sys
from datetime import UTC, datetime

from gunicorn import glogging, util
from gunicorn.workers.sync import SyncWorker


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the keys the application's lines use."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class JsonLogger(glogging.Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())
                if getattr(handler, "stream", None) is sys.stderr:
                    handler.setStream(sys.stdout)


# What gunicorn refuses before the application sees the request (a malformed
# request line, one longer than limit_request_line, a header over
# limit_request_field_size or more than limit_request_fields), by status: the
# code and message of the one error shape. Other statuses take gunicorn's reason.
REFUSALS = {
    400: ("bad_request", "The request could not be understood."),
    414: (
        "uri_too_long",
        "The request line (method, path and query string) is longer than the server accepts.",
    ),
    431: (
        "request_header_fields_too_large",
        "A header, or the number of headers, is over the server's limit.",
    ),
    500: ("server_error", "An unexpected error occurred."),
}


def json_error_write(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, answering JSON in the one error shape.

    ``mesg`` (gunicorn's detail, which may quote the request) is left out: the
    worker's warning line in the log has it."""
    code, message = REFUSALS.get(status_int, (reason.lower().replace(" ", "_"), f"{reason}."))
    body = json.dumps({"code": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JsonErrorWorker(SyncWorker):
    """gunicorn's sync worker, whose own error answers are JSON, not HTML pages.

    gunicorn has no hook for its error pages: its ``handle_error`` chooses the
    status and logs, then calls ``util.write_error``, which this worker process
    replaces (docs/decisions/0009-gunicorn-json-errors.md)."""

    def init_process(self) -> None:
        util.write_error = json_error_write
        super().init_process()
