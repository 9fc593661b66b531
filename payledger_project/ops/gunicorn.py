"""Gunicorn's access and error logs as JSON lines on stdout.

Named by ``logger_class`` in ``gunicorn.conf.py`` and imported by gunicorn's
master process, before and without Django: standard library only.
"""

import json
import logging
import os
import sys
from datetime import UTC, datetime

from gunicorn import glogging


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
            **getattr(record, "access", {}),
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

    def access(self, resp, req, environ: dict, request_time) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = int(status.split(None, 1)[0])
        headers = dict((name.lower(), value) for name, value in resp.headers)
        # Method, path and sizes only: never the query string, headers or body.
        self.access_log.info(
            "request",
            extra={
                "access": {
                    "request_id": headers.get("x-request-id"),
                    "method": environ.get("REQUEST_METHOD"),
                    "path": environ.get("PATH_INFO"),
                    "status": status,
                    "bytes": getattr(resp, "sent", None),
                    "duration_ms": round(request_time.total_seconds() * 1000, 3),
                    "remote_addr": environ.get("REMOTE_ADDR"),
                    "pid": os.getpid(),
                }
            },
        )
