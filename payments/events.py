"""Each event type's payload, defined once.

An event's payload (its ``data`` in the feed and in a webhook's body) is a JSON
object of plain values: ids and amounts as integers, text, and dates as RFC 3339
text exactly as the API shows them (UTC, "Z", microseconds only when there are
any). ``PAYLOADS`` names, for each event type, its fields in order and the kind
of each; everything that writes or shows an event follows it:

- the services render a payload from plain values with ``event_payload``;
- a charge, whose event is written by its one SQL statement, builds the same
  JSON in PostgreSQL with ``event_payload_sql``, from SQL expressions for the
  same fields (ids, numbers, the database's timestamp);
- the feed and the webhooks send an event as ``event_message`` wraps it;
- the docs' table of fields is checked against it
  (payments/tests/test_event_payloads.py, which also checks that every path
  writing an event writes exactly this).

The payloads are what the API shows for the same object (a credit request with
the seller's ``balance``, a charge as its answer, a reversed charge as its page),
so that clients read one shape; tests hold the two equal.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from payments.models import Event


class Kind(StrEnum):
    """A field's JSON type, as the docs name it."""

    INTEGER = "integer"
    TEXT = "string"
    TIMESTAMP = "RFC 3339 date"
    BOOLEAN = "boolean"
    OBJECT = "object"


def rfc3339(moment: datetime) -> str:
    """``moment`` as the API shows a date (DRF's text): in UTC with "Z", with
    microseconds only when there are any."""
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _rfc3339_sql(expression: str) -> str:
    """What ``rfc3339`` makes of a ``timestamptz``, in PostgreSQL."""
    utc = f"({expression}) AT TIME ZONE 'UTC'"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN to_char({utc}, 'US') = '000000' THEN '' ELSE to_char({utc}, '.US') END"
        " || 'Z'"
    )


_SQL_CASTS = {Kind.INTEGER: "bigint", Kind.TEXT: "text", Kind.BOOLEAN: "boolean"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    description: str
    nullable: bool = False
    fields: tuple["Field", ...] = ()  # an object's own fields

    def render(self, value):
        if value is None:
            if not self.nullable:
                raise ValueError(f"{self.name} may not be null.")
            return None
        match self.kind:
            case Kind.INTEGER:
                return int(value)
            case Kind.TEXT:
                return str(value)
            case Kind.TIMESTAMP:
                return rfc3339(value)
            case Kind.BOOLEAN:
                return bool(value)
            case Kind.OBJECT:
                return _render(self.fields, value)

    def sql(self, expression) -> str:
        """The SQL that renders this field from ``expression`` (for an object, a
        mapping of its fields' expressions); SQL NULL is JSON null."""
        match self.kind:
            case Kind.TIMESTAMP:
                return _rfc3339_sql(expression)
            case Kind.OBJECT:
                return _json_build_object(self.fields, expression)
            case _:
                return f"({expression})::{_SQL_CASTS[self.kind]}"


def _names_check(fields: tuple[Field, ...], given: Mapping) -> None:
    names = [field.name for field in fields]
    missing = [name for name in names if name not in given]
    unexpected = [name for name in given if name not in names]
    if missing or unexpected:
        raise TypeError(f"Payload fields missing: {missing}; not in the payload: {unexpected}.")


def _render(fields: tuple[Field, ...], values: Mapping) -> dict:
    _names_check(fields, values)
    return {field.name: field.render(values[field.name]) for field in fields}


def _json_build_object(fields: tuple[Field, ...], expressions: Mapping) -> str:
    _names_check(fields, expressions)
    pairs = ", ".join(f"'{field.name}', {field.sql(expressions[field.name])}" for field in fields)
    return f"json_build_object({pairs})"


@dataclass(frozen=True)
class Payload:
    """The fields of one kind of event's ``data``, in order."""

    description: str
    fields: tuple[Field, ...]


CREDIT_REQUEST = Payload(
    "The credit request as `GET /api/payments/credit-requests/<id>/` shows it, with `balance`.",
    (
        Field("id", Kind.INTEGER, "The credit request's id."),
        Field("seller", Kind.INTEGER, "The seller's id."),
        Field("amount", Kind.INTEGER, "The credit asked for, in the smallest unit."),
        Field("status", Kind.TEXT, "`pending`, `approved` or `rejected`."),
        Field("created_at", Kind.TIMESTAMP, "When it was asked for."),
        Field("decided_at", Kind.TIMESTAMP, "When staff decided it.", nullable=True),
        Field("decided_by", Kind.INTEGER, "The staff user who decided it.", nullable=True),
        Field("rejection_reason", Kind.TEXT, "Why it was rejected, if said.", nullable=True),
        Field("balance", Kind.INTEGER, "The seller's balance after the event."),
    ),
)
_CHARGE_FIELDS = (
    Field("id", Kind.INTEGER, "The charge's id."),
    Field("seller", Kind.INTEGER, "The seller's id."),
    Field("phone_number", Kind.TEXT, "The phone topped up, in E.164."),
    Field("amount", Kind.INTEGER, "The amount charged, in the smallest unit."),
    Field("created_at", Kind.TIMESTAMP, "When the charge was made."),
    Field("reference", Kind.TEXT, "The seller's own id for the charge.", nullable=True),
    Field("transaction_id", Kind.INTEGER, "The charge's journal row."),
    Field("balance", Kind.INTEGER, "The seller's balance after the charge."),
)
PHONE_CHARGE_CREATED = Payload(
    "The charge as `POST /api/payments/phone-charge/` answered it.", _CHARGE_FIELDS
)
PHONE_CHARGE_REVERSED = Payload(
    "The charge as `GET /api/payments/phone-charges/<id>/` shows it once reversed; the"
    " seller's balance after the event is `reversal.balance_after`.",
    (
        *_CHARGE_FIELDS,
        Field("reversed", Kind.BOOLEAN, "Always `true`."),
        Field("reversed_at", Kind.TIMESTAMP, "When it was reversed."),
        Field(
            "reversal",
            Kind.OBJECT,
            "The reversal.",
            fields=(
                Field("transaction_id", Kind.INTEGER, "The reversal's journal row."),
                Field("reason", Kind.TEXT, "Why it was reversed, if said.", nullable=True),
                Field("reversed_at", Kind.TIMESTAMP, "When it was reversed."),
                Field("reversed_by", Kind.INTEGER, "The staff user who reversed it."),
                Field("balance_after", Kind.INTEGER, "The seller's balance after the reversal."),
            ),
        ),
    ),
)
WEBHOOK_TEST = Payload(
    "Sent by the seller to one webhook endpoint (`POST /api/webhook-endpoints/<id>/test/`"
    " or the admin), delivered to that endpoint only; moves no money.",
    (Field("endpoint", Kind.INTEGER, "The webhook endpoint it was sent to."),),
)
PAYLOADS: dict[str, Payload] = {
    Event.Type.CREDIT_REQUEST_CREATED: CREDIT_REQUEST,
    Event.Type.CREDIT_REQUEST_APPROVED: CREDIT_REQUEST,
    Event.Type.CREDIT_REQUEST_REJECTED: CREDIT_REQUEST,
    Event.Type.PHONE_CHARGE_CREATED: PHONE_CHARGE_CREATED,
    Event.Type.PHONE_CHARGE_REVERSED: PHONE_CHARGE_REVERSED,
    Event.Type.WEBHOOK_TEST: WEBHOOK_TEST,
}


def event_types_by_payload() -> dict[Payload, list[str]]:
    """Each payload with the event types that carry it, for the docs and the schema."""
    types_of: dict[Payload, list[str]] = {}
    for event_type, payload in PAYLOADS.items():
        types_of.setdefault(payload, []).append(event_type)
    return types_of


def event_payload(event_type: str, **values) -> dict:
    """The payload of an ``event_type`` event, from each field's plain value
    (an object's as a mapping); TypeError unless every field and no other is given."""
    return _render(PAYLOADS[event_type].fields, values)


def event_payload_sql(event_type: str, **expressions) -> str:
    """A PostgreSQL expression building the payload of an ``event_type`` event (as
    ``json``) from an SQL expression for each field, as ``event_payload`` would."""
    return _json_build_object(PAYLOADS[event_type].fields, expressions)


def event_message(event: Event) -> dict:
    """An event as the feed lists it and a webhook posts it."""
    return {
        "id": event.pk,
        "type": event.type,
        "seller": event.seller_id,
        "created_at": rfc3339(event.created_at),
        "data": event.payload,
    }
