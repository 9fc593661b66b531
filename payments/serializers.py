from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payledger_project.fields import StrictCharField
from payments import events, filters
from payments.models import CreditRequest, Event, Transaction


@extend_schema_field(
    {"type": "integer", "format": "int64", "minimum": 1, "maximum": settings.PAYLEDGER_MAX_AMOUNT}
)
class MoneyField(serializers.Field):
    """An integer count of the smallest currency unit, as a JSON integer.

    Floats (even 10.0), booleans and strings are refused rather than coerced,
    so a client's rounding or typing bug cannot move money. Range rules live
    in the service, which every caller goes through.
    """

    default_error_messages = {
        "invalid": "Enter a whole number of the smallest currency unit, as a JSON integer.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "string", "format": "date-time"})
class RFC3339DateTimeField(serializers.Field):
    """An RFC 3339 timestamp with an offset, read like the journal's date filters."""

    def to_internal_value(self, data):
        try:
            return filters.RFC3339DateTimeField().clean(data)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error

    def to_representation(self, value):
        return serializers.DateTimeField().to_representation(value)


class CreditRequestInputSerializer(serializers.Serializer):
    amount = MoneyField()


# DRF refuses NUL characters in any text; the schema says so.
@extend_schema_field({"type": "string", "maxLength": 500, "pattern": "^[^\\x00]*$"})
class ReasonField(StrictCharField):
    """Why staff decided as they did, in free text."""


class CreditRequestRejectInputSerializer(serializers.Serializer):
    reason = ReasonField(
        max_length=500, required=False, allow_blank=True, help_text="Shown to the seller."
    )


class CreditRequestOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditRequest
        fields = [
            "id",
            "seller",
            "amount",
            "status",
            "created_at",
            "decided_at",
            "decided_by",
            "rejection_reason",
        ]
        read_only_fields = fields


@extend_schema_field(filters.REFERENCE_SCHEMA)
class ReferenceField(StrictCharField):
    """The client's own id for a charge: 1-64 printable ASCII characters."""

    def __init__(self, **kwargs):
        super().__init__(max_length=64, trim_whitespace=False, **kwargs)
        self.validators.append(filters.reference_validator)


class PhoneChargeInputSerializer(serializers.Serializer):
    phone_number = StrictCharField(max_length=32)
    amount = MoneyField()
    reference = ReferenceField(required=False)


# One instance checks every charge's input: DRF builds a serializer's fields
# anew for each instance (deep copies of the declared ones, about 0.04 ms, four
# times what checking the input takes), and run_validation keeps no state on it.
_phone_charge_input = PhoneChargeInputSerializer()


def phone_charge_input_validate(data) -> dict:
    """The charge's validated input, or the ValidationError ``is_valid`` raises.

    Invalid input is checked again by a fresh instance, so that its errors are
    DRF's usual ones ("No data provided" for a JSON null, say)."""
    try:
        return _phone_charge_input.run_validation(data)
    except serializers.ValidationError:
        PhoneChargeInputSerializer(data=data).is_valid(raise_exception=True)
        raise


class PhoneChargeOutputSerializer(serializers.Serializer):
    # Plain fields, not a ModelSerializer: this answers every charge, and
    # building a ModelSerializer's fields costs more than the rest of it.
    id = serializers.IntegerField(read_only=True)
    seller = serializers.IntegerField(source="seller_id", read_only=True)
    phone_number = serializers.CharField(read_only=True)
    amount = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    reference = serializers.CharField(read_only=True, allow_null=True)
    transaction_id = serializers.IntegerField(source="transaction.id", read_only=True)
    balance = serializers.IntegerField(source="transaction.balance_after", read_only=True)


# One instance answers every charge: DRF builds a serializer's fields anew for
# each instance (deep copies of the declared ones, about 0.13 ms, several times
# what rendering the charge takes), and to_representation keeps no state on it.
phone_charge_output = PhoneChargeOutputSerializer()


class PhoneChargeReverseInputSerializer(serializers.Serializer):
    reason = ReasonField(
        max_length=500, required=False, allow_blank=True, help_text="Kept with the reversal."
    )


class PhoneChargeReversalOutputSerializer(serializers.Serializer):
    transaction_id = serializers.IntegerField(source="transaction.id", read_only=True)
    reason = serializers.CharField(read_only=True, allow_null=True)
    reversed_at = serializers.DateTimeField(source="created_at", read_only=True)
    reversed_by = serializers.IntegerField(source="reversed_by_id", read_only=True)
    balance_after = serializers.IntegerField(
        source="transaction.balance_after",
        read_only=True,
        help_text="The seller's balance once the amount came back.",
    )


class PhoneChargeDetailSerializer(PhoneChargeOutputSerializer):
    """A charge as the charge list shows it: with whether and when it was reversed."""

    reversed = serializers.SerializerMethodField()
    reversed_at = serializers.DateTimeField(
        source="reversal.created_at", read_only=True, allow_null=True
    )
    reversal = PhoneChargeReversalOutputSerializer(read_only=True, allow_null=True)

    def get_reversed(self, charge) -> bool:
        return hasattr(charge, "reversal")


class TransactionOutputSerializer(serializers.ModelSerializer):
    phone_number = serializers.CharField(
        source="phone_charge.phone_account_id", default=None, allow_null=True
    )
    reference = serializers.CharField(
        source="phone_charge.reference", default=None, allow_null=True
    )
    reversed_charge = serializers.IntegerField(
        source="reversal.charge_id",
        default=None,
        allow_null=True,
        help_text="For a reversal: the charge it gave back.",
    )

    class Meta:
        model = Transaction
        fields = [
            "id",
            "seller",
            "kind",
            "amount",
            "balance_after",
            "created_at",
            "credit_request",
            "phone_charge",
            "phone_number",
            "reference",
            "reversed_charge",
        ]
        read_only_fields = fields


class BalanceAtQuerySerializer(serializers.Serializer):
    at = RFC3339DateTimeField()


class StatementQuerySerializer(serializers.Serializer):
    """?from=&to= (RFC 3339, from <= to); staff also name the seller."""

    def get_fields(self):
        # "from" is a Python keyword, so the fields are declared here.
        return {
            "from": RFC3339DateTimeField(),
            "to": RFC3339DateTimeField(),
            "seller": serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1),
        }

    def validate(self, data):
        if data["to"] < data["from"]:
            raise serializers.ValidationError({"to": ["Must not be earlier than from."]})
        return data


class KindTotalSerializer(serializers.Serializer):
    amount = serializers.IntegerField()
    count = serializers.IntegerField()


class StatementTotalsSerializer(serializers.Serializer):
    credit = KindTotalSerializer()
    charge = KindTotalSerializer()
    reversal = KindTotalSerializer()


class StatementOutputSerializer(serializers.Serializer):
    def get_fields(self):
        return {
            "seller": serializers.IntegerField(source="seller_id"),
            "from": serializers.DateTimeField(source="start"),
            "to": serializers.DateTimeField(source="end"),
            "opening_balance": serializers.IntegerField(),
            "closing_balance": serializers.IntegerField(),
            "totals": StatementTotalsSerializer(),
            "journal": serializers.SerializerMethodField(
                help_text="The journal page of the same range."
            ),
        }

    def get_journal(self, statement) -> str:
        return self.context["journal_url"]


def _payload_field_schema(field: events.Field) -> dict:
    if field.kind == events.Kind.OBJECT:
        schema = _payload_object_schema(field.fields)
    else:
        schema = dict(_PAYLOAD_KIND_SCHEMAS[field.kind])
    schema["description"] = field.description
    if field.nullable:
        schema["nullable"] = True
    return schema


_PAYLOAD_KIND_SCHEMAS = {
    events.Kind.INTEGER: {"type": "integer"},
    events.Kind.TEXT: {"type": "string"},
    events.Kind.TIMESTAMP: {"type": "string", "format": "date-time"},
    events.Kind.BOOLEAN: {"type": "boolean"},
}


def _payload_object_schema(fields: tuple[events.Field, ...]) -> dict:
    return {
        "type": "object",
        "properties": {field.name: _payload_field_schema(field) for field in fields},
        "required": [field.name for field in fields],
    }


def _event_data_schema() -> dict:
    """The payloads payments/events.py defines, one schema for the types sharing one."""
    return {
        "anyOf": [
            {
                **_payload_object_schema(payload.fields),
                "title": ", ".join(event_types),
                "description": payload.description,
            }
            for payload, event_types in events.event_types_by_payload().items()
        ]
    }


@extend_schema_field(_event_data_schema())
class EventDataField(serializers.JSONField):
    """An event's payload, as payments/events.py defines it for the event's type."""


class EventOutputSerializer(serializers.ModelSerializer):
    """An event as the feed lists it and a webhook delivers it."""

    data = EventDataField(
        source="payload",
        read_only=True,
        help_text="The object the event is about; the seller's balance after the event.",
    )

    class Meta:
        model = Event
        fields = ["id", "type", "seller", "created_at", "data"]
        read_only_fields = fields

    def to_representation(self, event: Event) -> dict:
        return events.event_message(event)
