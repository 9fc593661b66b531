"""Domain errors and the one exception handler that turns every error into JSON.

Every error body has the same shape::

    {"code": "insufficient_balance", "message": "...", "fields": {...}}

``fields`` appears only on validation errors and maps each field to a list of
``{"code", "message"}`` objects (nested serializers nest the same way).
"""

from typing import Any

from django.core.exceptions import DisallowedHost, ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.http.request import split_domain_port
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from payledger_project.ops.metrics import refusal_count
from payledger_project.postgresql.prepared import StatementInvalidated


class DomainError(Exception):
    """A refused business operation; services raise it, the handler renders it."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "domain_error"
    message: str = "The operation was refused."

    def __init__(self, **details):
        super().__init__(self.message)
        # Facts the client acts on, added to the error body (e.g. an existing id).
        self.details = details


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class Forbidden(DomainError):
    """The actor may not do this to this record, whatever its permissions say."""

    status_code = status.HTTP_403_FORBIDDEN
    code = "forbidden"


class TryAgain(exceptions.APIException):
    """The database could not take a lock or finish in time; the transaction rolled back."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "try_again"
    default_detail = (
        "The service is busy and changed nothing; retry after Retry-After seconds"
        " (with the same Idempotency-Key)."
    )
    wait = 1  # DRF's handler turns this into the Retry-After header.


CONNECTION_LOST = (
    "The connection to the database was lost (it may be restarting). Retry after"
    " Retry-After seconds with the same Idempotency-Key: if the first attempt landed,"
    " the retry replays its answer; if not, it runs now."
)

# PostgreSQL: lock_timeout, statement_timeout.
TIMEOUT_PGCODES = {"55P03", "57014"}
# PostgreSQL shutting down, crashing or starting up (57P01-57P03); class 08 is a
# broken connection. An error with no code at all comes from the client library:
# the server or PgBouncer went away mid-request.
CONNECTION_LOST_PGCODES = {"57P01", "57P02", "57P03"}


def _is_timeout(error: OperationalError) -> bool:
    pgcode = getattr(error.__cause__, "pgcode", None)
    return pgcode in TIMEOUT_PGCODES or "database is locked" in str(error)


def _is_connection_lost(error: OperationalError | InterfaceError) -> bool:
    if isinstance(error, InterfaceError):
        return True
    pgcode = getattr(error.__cause__, "pgcode", None)
    return pgcode is None or pgcode in CONNECTION_LOST_PGCODES or pgcode.startswith("08")


def _field_errors(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _field_errors(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_field_errors(item) for item in detail]
    # Django errors raised without a code still get a machine-readable one.
    return {"code": detail.code or "invalid", "message": str(detail)}


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if not isinstance(detail, dict):
            detail = {"non_field_errors": detail}
        return {
            "code": "validation_error",
            "message": "The request has invalid fields.",
            "fields": _field_errors(detail),
        }
    return {"code": exc.get_codes(), "message": str(exc.detail)}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        refusal_count(exc.code)
        return Response(
            {"code": exc.code, "message": exc.message, **exc.details}, status=exc.status_code
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, StatementInvalidated) or (
        isinstance(exc, OperationalError) and _is_timeout(exc)
    ):
        exc = TryAgain()
    elif isinstance(exc, (OperationalError, InterfaceError)) and _is_connection_lost(exc):
        exc = TryAgain(CONNECTION_LOST)
    # DRF's handler sets headers such as WWW-Authenticate and Retry-After and
    # returns None for errors it does not know, which must stay loud.
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(exc)
        refusal_count(str(response.data["code"]))
    return response


def _json_error(code: str, message: str, status_code: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status_code)


# Django's own error views (outside DRF, e.g. an unknown URL or a bad Host
# header) answer in the same JSON shape.
def json_bad_request(request, exception=None) -> JsonResponse:
    if isinstance(exception, DisallowedHost):
        # A well-formed host name (letters, digits, dots, hyphens, or an IPv6
        # literal: nothing to escape) is named, so the operator knows what to add.
        domain, _port = split_domain_port(request._get_raw_host())
        if domain:
            return _json_error(
                "host_not_allowed",
                f"This service does not answer to the host {domain}: add it to the"
                " ALLOWED_HOSTS setting (comma-separated) and restart.",
                400,
            )
    return _json_error("bad_request", "The request could not be understood.", 400)


def json_permission_denied(request, exception=None) -> JsonResponse:
    return _json_error("permission_denied", "You may not do this.", 403)


def json_not_found(request, exception=None) -> JsonResponse:
    return _json_error("not_found", "No such resource.", 404)


def json_server_error(request) -> JsonResponse:
    return _json_error("server_error", "An unexpected error occurred.", 500)
