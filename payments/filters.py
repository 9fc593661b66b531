import django_filters

from payments.models import CreditRequest, Transaction


class CreditRequestFilter(django_filters.FilterSet):
    class Meta:
        model = CreditRequest
        fields = ["status", "seller"]


class TransactionFilter(django_filters.FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    phone_number = django_filters.CharFilter(field_name="phone_charge__phone_account_id")

    class Meta:
        model = Transaction
        fields = ["kind", "seller", "created_after", "created_before", "phone_number"]
