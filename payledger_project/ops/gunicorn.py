"""Gunicorn's logs as JSON lines on stdout (gunicorn.conf.py keeps its error log only).

Named by ``logger_class`` in ``gunicorn.conf.py`` and imported by gunicorn's
master process, before and without Django: standard library only.
"""

import json
import logging
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
