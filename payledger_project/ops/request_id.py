"""X-Request-ID on every response and on every log line written while serving it.

django-structlog's RequestMiddleware (first in MIDDLEWARE, so it sees every
response, redirects and errors included) binds the request's context and
writes its closing line; these receivers of its signals choose the id and
complete that line. The id is the client's ``X-Request-ID`` when it is 1-128
characters of ``[A-Za-z0-9._-]`` (safe in a header and a log line), else a new
UUID.
"""

import os
import re
import time
import uuid

import structlog
from django.dispatch import receiver
from django_structlog import signals

HEADER = "X-Request-ID"
CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


@receiver(signals.bind_extra_request_metadata)
def request_id_bind(request, logger, log_kwargs, **kwargs) -> None:
    supplied = request.headers.get(HEADER, "")
    request.request_id = supplied if CLIENT_ID.fullmatch(supplied) else str(uuid.uuid4())
    request.started = time.perf_counter()
    structlog.contextvars.bind_contextvars(request_id=request.request_id)


def _request_fields(request, status: int) -> dict:
    return {
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round((time.perf_counter() - request.started) * 1000, 3),
        # The socket's peer (the proxy, behind one) and the worker that answered.
        "remote_addr": request.META.get("REMOTE_ADDR"),
        "pid": os.getpid(),
    }


@receiver(signals.bind_extra_request_finished_metadata)
def request_finished_complete(request, logger, response, log_kwargs, **kwargs) -> None:
    response[HEADER] = request.request_id
    # The path without its query string, in place of django-structlog's "request".
    log_kwargs.pop("request", None)
    log_kwargs.pop("code", None)
    log_kwargs.update(_request_fields(request, response.status_code))


@receiver(signals.bind_extra_request_failed_metadata)
def request_failed_complete(request, logger, exception, log_kwargs, **kwargs) -> None:
    log_kwargs.pop("request", None)
    log_kwargs.pop("code", None)
    log_kwargs.update(_request_fields(request, 500))


@receiver(signals.update_failure_response)
def failure_response_request_id(request, response, logger, exception, **kwargs) -> None:
    response[HEADER] = request.request_id
