"""Logs: one JSON object per line on stdout in production, readable lines in development.

structlog renders every record, structlog events and standard-library records
alike: django-structlog's line per request, the money movements of
``payments.services``, Django's and the libraries' warnings. Each line has
``timestamp``, ``level``, ``logger`` and ``message``; while a request is
served, django-structlog's context adds ``request_id`` and ``user_id`` to
every line, and its closing line (``request_finished``) adds ``method``,
``path``, ``status`` and ``duration_ms`` (``request_id`` module). Money
movements add ``seller``, ``amount``, ``transaction_id`` and ``kind``, passed
as ``extra`` by the services: only the fields in ``RECORD_FIELDS`` are ever
written, so no body, password or token reaches a line.

Imported by ``settings.py``: structlog and the standard library only.
"""

import logging

import structlog

FORMATS = ("json", "console")
# The ``extra`` fields of standard-library records that make it into a line.
RECORD_FIELDS = (
    "seller",
    "amount",
    "transaction_id",
    "kind",
    "phone_charge",
    "credit_request",
    "decision",
    "status_code",
    # webhooks.services, one line per delivery attempt; deliver_webhooks
    "webhook_endpoint",
    "event_id",
    "attempt",
    "error",
    "next_attempt_at",
    "duration_ms",
    "deliveries",
)

FIRST_KEYS = ("timestamp", "level", "logger", "message")


def _request_id_from_record(logger, method_name: str, event_dict: dict) -> dict:
    """Django logs a response's status after the middleware has returned, when the
    request's context is gone; its record carries the request, and so its id."""
    record = event_dict.get("_record")
    request_id = getattr(getattr(record, "request", None), "request_id", None)
    if request_id and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


def _first_keys(logger, method_name: str, event_dict: dict) -> dict:
    ordered = {key: event_dict.pop(key) for key in FIRST_KEYS if key in event_dict}
    return {**ordered, **event_dict}


_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
]


def formatter(log_format: str) -> structlog.stdlib.ProcessorFormatter:
    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(event_key="message")
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_SHARED,
            structlog.stdlib.ExtraAdder(allow=RECORD_FIELDS),
            _request_id_from_record,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            _first_keys,
            renderer,
        ],
    )


def logging_configure(*, log_format: str, level: str) -> dict:
    """Configure structlog and return the LOGGING setting.

    ``level`` is the lowest level written to stdout. Loggers themselves pass
    INFO and up whatever it is, so handlers that count (metrics) see every
    money movement.
    """
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}.")
    lowest = min(logging.INFO, _level_number(level))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Drops what no logger passes (django-structlog's request_started, at
        # DEBUG) at the call, before any processor runs: it costs every request.
        wrapper_class=structlog.make_filtering_bound_logger(lowest),
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "line": {"()": formatter, "log_format": log_format},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "line",
                "level": level,
            },
            "business_metrics": {"class": "payledger_project.ops.metrics.BusinessMetricsHandler"},
        },
        "root": {"handlers": ["stdout"], "level": lowest},
        "loggers": {
            # Django's own console handler would write its lines a second time.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            # Counts money movements for /metrics (ops/metrics.py), and passes
            # the records on to stdout.
            "payments.services": {"handlers": ["business_metrics"], "level": "INFO"},
        },
    }


def migrations_applied_log(sender, plan=None, **kwargs) -> None:
    """``post_migrate`` receiver (connected in ``ops.apps``): one line per app whose
    migrations were applied, so ``migrate --verbosity 0`` (``make serve``) says what
    it did in the log's format rather than in plain lines of its own."""
    applied = [
        migration.name
        for migration, backwards in plan or []
        if migration.app_label == sender.label and not backwards
    ]
    if applied:
        logging.getLogger("payledger_project.ops.migrations").info(
            "migrated %s: %s", sender.label, ", ".join(applied)
        )


def _level_number(level: str) -> int:
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"Unknown log level {level!r}.")
    return number
