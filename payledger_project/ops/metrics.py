"""Prometheus metrics, served at /metrics to whoever holds METRICS_TOKEN.

HTTP: django-prometheus's middleware counts requests by view, method and
status and times them (histograms by view and method), and nothing else. Business: the
counters below. Under gunicorn every worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py) and /metrics adds them
up, so the numbers are the service's, not one worker's.

Money is counted from the lines ``payments.services`` logs for each money
movement: they are written by ``transaction.on_commit``, so a movement that
rolls back is never counted, and the count always agrees with the log.
``BusinessMetricsHandler`` is attached to that logger in LOGGING, which lets
every INFO record through whatever PAYLEDGER_LOG_LEVEL says.
"""

import hmac
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_prometheus.middleware import Metrics, PrometheusAfterMiddleware
from prometheus_client import Counter

PHONE_CHARGES = Counter("payledger_phone_charges", "Phone charges committed.")
PHONE_CHARGED_AMOUNT = Counter(
    "payledger_phone_charged_amount",
    "Amount of the committed phone charges, in the currency's smallest unit.",
)
CREDIT_REQUESTS_DECIDED = Counter(
    "payledger_credit_requests_decided",
    "Credit requests decided (committed), by decision: approved or rejected.",
    ["decision"],
)
CREDITED_AMOUNT = Counter(
    "payledger_credited_amount",
    "Amount of the committed credit approvals, in the currency's smallest unit.",
)
REFUSALS = Counter(
    "payledger_api_refusals",
    "API requests answered with an error, by error code (insufficient_balance, "
    "throttled, validation_error, ...).",
    ["code"],
)
THROTTLE_CACHE_ERRORS = Counter(
    "payledger_throttle_cache_errors",
    "Requests let through unthrottled because the cache was unavailable.",
)


class _Unrecorded:
    """Stands in for a django-prometheus series this service does not keep."""

    def labels(self, **labels) -> "_Unrecorded":
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


class HttpMetrics(Metrics):
    """The two django-prometheus series /metrics promises, and none of the others.

    Requests by view, method and status, and latency by view and method. The
    library's other series (body sizes, charsets, transports, totals before
    the middleware) cost every request a write to the shared sample files and
    answer no question asked of this service; they are left unrecorded
    through the library's ``metrics_cls`` hook.
    """

    KEPT = {
        "django_http_responses_total_by_status_view_method",
        "django_http_requests_latency_seconds_by_view_method",
    }
    _instance = None

    def register_metric(self, metric_cls, name, documentation, labelnames=(), **kwargs):
        if name not in self.KEPT:
            return _Unrecorded()
        return super().register_metric(metric_cls, name, documentation, labelnames, **kwargs)


class HttpMetricsMiddleware(PrometheusAfterMiddleware):
    metrics_cls = HttpMetrics


class BusinessMetricsHandler(logging.Handler):
    """Counts the money movements ``payments.services`` logs after each commit."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "kind", None) == "charge":
            PHONE_CHARGES.inc()
            PHONE_CHARGED_AMOUNT.inc(record.amount)
        decision = getattr(record, "decision", None)
        if decision is not None:
            CREDIT_REQUESTS_DECIDED.labels(decision).inc()
            if decision == "approved":
                CREDITED_AMOUNT.inc(record.amount)


def refusal_count(code: str) -> None:
    REFUSALS.labels(code).inc()


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text, for ``Authorization: Bearer <METRICS_TOKEN>`` only.

    Without a token configured, or with any other header, it is a 404 like
    any unknown URL: the endpoint does not advertise itself.
    """
    expected = f"Bearer {settings.METRICS_TOKEN}".encode()
    supplied = request.headers.get("Authorization", "").encode()
    if not settings.METRICS_TOKEN or not hmac.compare_digest(supplied, expected):
        return JsonResponse({"code": "not_found", "message": "No such resource."}, status=404)
    from django_prometheus.exports import ExportToDjangoView

    return ExportToDjangoView(request)
