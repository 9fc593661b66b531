import re
from datetime import UTC, datetime

import django_filters
from django import forms
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field

from payments.models import CreditRequest, Event, PhoneCharge, Transaction

BIGINT_MAX = 2**63 - 1


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": BIGINT_MAX})
class IdFilter(django_filters.NumberFilter):
    """Filter by a row id: a whole number, so an unknown id simply matches nothing."""

    field_class = forms.IntegerField
    min_value = 1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=self.min_value, max_value=BIGINT_MAX, **kwargs)


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 0, "maximum": BIGINT_MAX})
class AfterIdFilter(IdFilter):
    """Rows after this id; 0 (or leaving it out) starts at the first."""

    min_value = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, lookup_expr="gt", **kwargs)


class RFC3339DateTimeField(forms.DateTimeField):
    """Only full RFC 3339 timestamps with an offset: no guessing at local time."""

    FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not self.FORMAT.fullmatch(value):
            raise forms.ValidationError(
                "Enter an RFC 3339 date-time with an offset, e.g. 2026-11-27T16:00:00Z.",
                code="invalid",
            )
        try:
            # In UTC: databases cap UTC offsets (PostgreSQL at 15:59), RFC 3339 at 23:59.
            return datetime.fromisoformat(value.upper()).astimezone(UTC)
        except (ValueError, OverflowError) as error:
            raise forms.ValidationError(
                "Enter a date-time between years 1 and 9999 UTC.", code="invalid"
            ) from error


@extend_schema_field({"type": "string", "format": "date-time"})
class DateTimeFilter(django_filters.Filter):
    field_class = RFC3339DateTimeField


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 16})
class PhoneNumberFilter(django_filters.CharFilter):
    """An exact E.164 number, e.g. +14155550123."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, max_length=16, **kwargs)


# A charge's client reference: 1-64 printable ASCII characters.
REFERENCE_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "pattern": "^[\\x20-\\x7e]{1,64}$",
}
reference_validator = RegexValidator(
    r"^[\x20-\x7e]{1,64}\Z", "Use 1-64 printable ASCII characters."
)


@extend_schema_field(REFERENCE_SCHEMA)
class ReferenceFilter(django_filters.CharFilter):
    """A charge's client reference, exactly."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, max_length=64, validators=[reference_validator], **kwargs)


class StrictFilterSet(django_filters.FilterSet):
    """A filter parameter that is present must carry a value.

    django-filter reads ``?kind=`` as "no filter"; a client that sent it
    meant something, so it gets a 400 rather than everyone's rows.
    """

    def is_valid(self) -> bool:
        valid = super().is_valid()
        empty = [name for name in self.filters if self.data.get(name) == ""]
        for name in empty:
            self.form.add_error(
                name, forms.ValidationError("This parameter may not be empty.", code="empty")
            )
        return valid and not empty


class CreditRequestFilter(StrictFilterSet):
    seller = IdFilter(field_name="seller_id")

    class Meta:
        model = CreditRequest
        fields = ["status", "seller"]


class TransactionFilter(StrictFilterSet):
    seller = IdFilter(field_name="seller_id")
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")
    phone_number = PhoneNumberFilter(field_name="phone_charge__phone_account_id")
    reference = ReferenceFilter(field_name="phone_charge__reference")

    class Meta:
        model = Transaction
        fields = ["kind", "seller", "created_after", "created_before", "phone_number", "reference"]


class PhoneChargeFilter(StrictFilterSet):
    seller = IdFilter(field_name="seller_id")
    phone_number = PhoneNumberFilter(field_name="phone_account_id")
    reference = ReferenceFilter()
    # "true" or "false" only: django-filter's BooleanFilter reads "null" as no filter.
    reversed = django_filters.ChoiceFilter(
        choices=[("true", "reversed"), ("false", "not reversed")], method="filter_reversed"
    )

    class Meta:
        model = PhoneCharge
        fields = ["seller", "phone_number", "reference", "reversed"]

    def filter_reversed(self, queryset, name: str, value: str):
        return queryset.filter(reversal__isnull=value == "false")


class EventFilter(StrictFilterSet):
    after = AfterIdFilter(field_name="id", help_text="The last event id the client has seen.")
    seller = IdFilter(field_name="seller_id")

    class Meta:
        model = Event
        fields = ["after", "type", "seller"]
