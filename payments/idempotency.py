"""Idempotency-Key support: a retried request gets the first answer, never a second charge.

The key row is inserted in the same transaction as the work it guards. Two
requests with one key meet at the unique index: the second waits for the
first to commit, then finds the row and replays its answer. Refusals by the
domain (e.g. insufficient balance) are stored and replayed too; invalid input
is not, as nothing ran.
"""

import functools
import hashlib
import json
import re
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from payledger_project.batches import in_batches_delete
from payledger_project.exceptions import DomainError, api_exception_handler
from payments.exceptions import IdempotencyKeyReused
from payments.models import IdempotencyKey

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_FORMAT = re.compile(r"[\x20-\x7e]{1,255}")


def request_fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _expired() -> QuerySet[IdempotencyKey]:
    cutoff = timezone.now() - timedelta(seconds=settings.PAYLEDGER_IDEMPOTENCY_TTL)
    return IdempotencyKey.objects.filter(created_at__lt=cutoff)


def idempotency_keys_purge() -> int:
    """Delete keys older than the replay window, in short batches; return how many went."""
    return in_batches_delete(_expired())


def _replay(record: IdempotencyKey) -> Response:
    response = Response(record.response_body, status=record.response_status)
    response[REPLAYED_HEADER] = "true"
    return response


def _claim(user: AbstractBaseUser, key: str, fingerprint: str) -> tuple[IdempotencyKey, bool]:
    """Insert the key row and return it with True, or return the committed row
    that holds the key already with False. A holder that is gone by the time
    we look (purged after our insert failed) means the key is free again."""
    while True:
        try:
            with transaction.atomic():
                claimed = IdempotencyKey.objects.create(
                    user=user,
                    key=key,
                    request_fingerprint=fingerprint,
                    response_status=0,
                    response_body={},
                )
            return claimed, True
        except IntegrityError:
            holder = IdempotencyKey.objects.filter(user=user, key=key).first()
            if holder is not None:
                return holder, False


def idempotent(view_method):
    """Make a POST handler replay its answer for a repeated Idempotency-Key.

    Without the header the handler runs as usual. Keys belong to the caller:
    two users' keys never meet.
    """

    @functools.wraps(view_method)
    def handler(view, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return view_method(view, request, *args, **kwargs)
        if not KEY_FORMAT.fullmatch(key):
            raise exceptions.ValidationError(
                {IDEMPOTENCY_HEADER: ["Must be 1-255 printable ASCII characters."]}
            )
        user = request.user
        fingerprint = request_fingerprint(request)
        with transaction.atomic():
            _expired().filter(user=user, key=key).delete()
            record, claimed = _claim(user, key, fingerprint)
            if not claimed:
                if record.request_fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                return _replay(record)
            try:
                response = view_method(view, request, *args, **kwargs)
            except DomainError as error:
                response = api_exception_handler(error, {"view": view, "request": request})
            record.response_status = response.status_code
            record.response_body = response.data
            record.save(update_fields=["response_status", "response_body"])
        return response

    return handler
