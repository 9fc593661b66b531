from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payledger_project.fields import StrictCharField
from payments.models import CreditRequest, Transaction


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


class CreditRequestInputSerializer(serializers.Serializer):
    amount = MoneyField()


class CreditRequestRejectInputSerializer(serializers.Serializer):
    reason = StrictCharField(
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


class PhoneChargeInputSerializer(serializers.Serializer):
    phone_number = StrictCharField(max_length=32)
    amount = MoneyField()


class PhoneChargeOutputSerializer(serializers.Serializer):
    # Plain fields, not a ModelSerializer: this answers every charge, and
    # building a ModelSerializer's fields costs more than the rest of it.
    id = serializers.IntegerField(read_only=True)
    seller = serializers.IntegerField(source="seller_id", read_only=True)
    phone_number = serializers.CharField(read_only=True)
    amount = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    transaction_id = serializers.IntegerField(source="transaction.id", read_only=True)
    balance = serializers.IntegerField(source="transaction.balance_after", read_only=True)


class TransactionOutputSerializer(serializers.ModelSerializer):
    phone_number = serializers.CharField(
        source="phone_charge.phone_account_id", default=None, allow_null=True
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
        ]
        read_only_fields = fields
