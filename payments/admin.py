from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from payledger_project.exceptions import DomainError
from payments.models import CreditRequest, PhoneAccount, PhoneCharge, Transaction
from payments.permissions import APPROVE_CREDIT
from payments.services import credit_request_approve, credit_request_reject


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money rows are written by services only; the admin shows them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _decide_selected(modeladmin, request, queryset, decide, verb: str) -> None:
    decided = 0
    # Each request is decided in its own transaction under its own row lock,
    # so a second staff member clicking at once gets "already decided".
    for credit_request_id in queryset.values_list("pk", flat=True):
        try:
            decide(credit_request_id=credit_request_id, decided_by=request.user)
        except (DomainError, ValidationError) as error:
            modeladmin.message_user(
                request, f"Credit request #{credit_request_id}: {error}", messages.WARNING
            )
        else:
            decided += 1
    if decided:
        modeladmin.message_user(request, f"{verb} {decided} credit request(s).", messages.SUCCESS)


@admin.register(CreditRequest)
class CreditRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "seller", "amount", "status", "created_at", "decided_at", "decided_by"]
    list_filter = ["status", "created_at"]
    search_fields = ["seller__name", "seller__user__username"]
    list_select_related = ["seller", "decided_by"]
    actions = ["approve_selected", "reject_selected"]

    def has_approve_permission(self, request) -> bool:
        # The same rule as the API's approve and reject endpoints.
        return request.user.has_perm(APPROVE_CREDIT)

    @admin.action(description="Approve selected credit requests", permissions=["approve"])
    def approve_selected(self, request, queryset):
        _decide_selected(self, request, queryset, credit_request_approve, "Approved")

    @admin.action(description="Reject selected credit requests", permissions=["approve"])
    def reject_selected(self, request, queryset):
        _decide_selected(self, request, queryset, credit_request_reject, "Rejected")


@admin.register(PhoneAccount)
class PhoneAccountAdmin(ReadOnlyAdmin):
    list_display = ["phone_number", "balance", "created_at"]
    search_fields = ["phone_number"]


@admin.register(PhoneCharge)
class PhoneChargeAdmin(ReadOnlyAdmin):
    list_display = ["id", "seller", "phone_account", "amount", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["phone_account__phone_number", "seller__name", "seller__user__username"]
    list_select_related = ["seller", "phone_account"]


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "seller",
        "kind",
        "amount",
        "balance_after",
        "credit_request",
        "phone_charge",
        "created_at",
    ]
    list_filter = ["kind", "created_at"]
    search_fields = ["seller__name", "seller__user__username"]
    list_select_related = ["seller", "credit_request", "phone_charge"]
