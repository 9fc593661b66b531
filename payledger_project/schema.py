"""OpenAPI pieces shared by every API module: the error shape and common headers."""

from collections.abc import Sequence

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from payledger_project.exceptions import DomainError


class FieldErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(
        child=serializers.ListField(child=FieldErrorSerializer()),
        required=False,
        help_text="Validation errors only: each invalid field and what is wrong with it.",
    )


# status -> (when it happens, an example code)
ERRORS = {
    400: ("Invalid input or malformed JSON.", "validation_error"),
    401: ("No token, or an invalid one.", "not_authenticated"),
    403: ("The caller may not do this.", "permission_denied"),
    404: ("No such resource, or not the caller's.", "not_found"),
    409: ("Refused by a business rule; nothing changed.", "insufficient_balance"),
    415: ("The body is not application/json.", "unsupported_media_type"),
    422: ("The Idempotency-Key was used with a different request.", "idempotency_key_reused"),
    429: ("Too many requests; retry after Retry-After seconds.", "throttled"),
    503: (
        "The database could not take a lock in time; nothing changed. Retry after Retry-After"
        " seconds with the same Idempotency-Key.",
        "try_again",
    ),
}

RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429, 503],
    description="Seconds to wait before retrying.",
)  # fmt: skip


def error_responses(
    *statuses: int,
    conflicts: Sequence[type[DomainError]] = (),
    forbidden: Sequence[type[DomainError]] = (),
) -> dict[int, OpenApiResponse]:
    """The documented error answers of an operation, all in the one error shape;
    ``conflicts`` are the refusals its 409 can be, each shown as an example, and
    ``forbidden`` the refusals its 403 can be besides ``permission_denied``."""
    responses = {}
    for status in statuses:
        description, code = ERRORS[status]
        example = {"code": code, "message": description}
        if status == 400:
            example["fields"] = {
                "amount": [{"code": "invalid", "message": "Enter a whole number."}]
            }
        examples = [(code, example)]
        if status == 409 and conflicts:
            examples = [
                (conflict.code, {"code": conflict.code, "message": conflict.message})
                for conflict in conflicts
            ]
        if status == 403:
            examples += [
                (refusal.code, {"code": refusal.code, "message": refusal.message})
                for refusal in forbidden
            ]
        responses[status] = OpenApiResponse(
            ErrorSerializer,
            description=description,
            examples=[
                OpenApiExample(name, value=value, status_codes=[status], response_only=True)
                for name, value in examples
            ],
        )
    return responses


# What the servers in front of the views may answer to any operation, in the one
# error shape: Django refuses a Host not in ALLOWED_HOSTS (400 host_not_allowed),
# gunicorn malformed HTTP (400 bad_request), a request line over 4094 bytes (414)
# and a header over 8190 bytes or more than 100 headers (431).
SERVER_ERRORS = {
    400: "A Host not in ALLOWED_HOSTS (host_not_allowed), or malformed HTTP (bad_request).",
    414: "The request line is longer than the server accepts (uri_too_long).",
    431: "A header, or the number of headers, is over the server's limit"
    " (request_header_fields_too_large).",
}


def server_errors_add(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: every operation lists ``SERVER_ERRORS``
    (an operation's own 400 keeps its description)."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            for status, description in SERVER_ERRORS.items():
                responses.setdefault(str(status), {"content": error, "description": description})
            operation["responses"] = dict(sorted(responses.items()))
    return result


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]{1,255}$"},
    OpenApiParameter.HEADER,
    description=(
        "Optional client-chosen key (1-255 printable ASCII characters). Repeating a request "
        "with the same key and body replays the first answer instead of acting twice; the "
        "same key with a different body is refused (422). Keys are per user and expire "
        "after 24 hours."
    ),
)

IDEMPOTENT_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed", OpenApiTypes.STR, OpenApiParameter.HEADER, response=True,
    enum=["true"], description="Present when the answer is a replay of an earlier request.",
)  # fmt: skip
