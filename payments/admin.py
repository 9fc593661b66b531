from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from payledger_project.exceptions import DomainError
from payledger_project.money import money_column, money_format
from payments.models import (
    CreditRequest,
    PhoneAccount,
    PhoneCharge,
    PhoneChargeReversal,
    Transaction,
)
from payments.permissions import APPROVE_CREDIT, REVERSE_CHARGE, staff_may
from payments.selectors import credit_requests_with_seller_activity, seller_recent_journal
from payments.services import (
    REJECTION_REASON_MAX_LENGTH,
    REVERSAL_REASON_MAX_LENGTH,
    credit_request_approve,
    credit_request_reject,
    phone_charge_reverse,
)


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


def _posted_reason(request) -> str | None:
    return request.POST.get("reason", "").strip() or None


def _reason_form_errors(reason: str | None, error: ValidationError) -> dict:
    """What the confirmation page shows again when the service refused the reason:
    its errors on the field, and the text as typed (a NUL, which the page cannot
    carry, as the replacement character, so the staff member sees where it was)."""
    return {
        "reason": (reason or "").replace("\x00", "\ufffd"),
        "reason_errors": error.messages,
    }


class CreditRequestStatusFilter(admin.SimpleListFilter):
    """Opens on what approvers work on: pending requests (choose "All" for the rest)."""

    title = "status"
    parameter_name = "status"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [*CreditRequest.Status.choices, (self.ALL, "All")]

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        # The default is for browsing; an action acts on exactly what was ticked
        # (so a request decided meanwhile is reported as skipped, not dropped).
        self.acting = request.method == "POST"

    def value(self):
        return super().value() or CreditRequest.Status.PENDING

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == self.ALL or (self.acting and super().value() is None):
            return queryset
        return queryset.filter(status=self.value())


@admin.register(CreditRequest)
class CreditRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "seller",
        "amount_shown",
        "status",
        "age",
        "seller_balance",
        "charges_last_30_days",
        "decided_by",
    ]
    list_filter = [CreditRequestStatusFilter, "created_at"]
    search_fields = ["seller__name", "seller__user__username"]
    list_select_related = ["seller", "decided_by"]
    ordering = ["created_at", "id"]
    readonly_fields = ["amount_shown", "seller_balance", "seller_journal"]
    fields = [
        "seller",
        "amount_shown",
        "status",
        "created_at",
        "decided_at",
        "decided_by",
        "rejection_reason",
        "seller_balance",
        "seller_journal",
    ]
    actions = ["approve_selected", "reject_selected"]
    amount_shown = money_column("amount", "amount")

    def has_approve_permission(self, request) -> bool:
        # The same rule as the API's approve and reject endpoints.
        return staff_may(request.user, APPROVE_CREDIT)

    def get_queryset(self, request):
        return credit_requests_with_seller_activity(super().get_queryset(request))

    @admin.display(description="age")
    def age(self, credit_request: CreditRequest) -> str:
        return timesince(credit_request.created_at)

    @admin.display(description="seller's balance", ordering="seller__balance")
    def seller_balance(self, credit_request: CreditRequest) -> str:
        return money_format(credit_request.seller.balance)

    @admin.display(description="charges in 30 days", ordering="charges_last_30_days")
    def charges_last_30_days(self, credit_request: CreditRequest) -> int:
        return credit_request.charges_last_30_days

    @admin.display(description="seller's recent journal")
    def seller_journal(self, credit_request: CreditRequest) -> str:
        rows = seller_recent_journal(seller_id=credit_request.seller_id)
        if not rows:
            return "No movements yet."
        return format_html(
            '<table class="seller-journal"><thead><tr><th>when</th><th>kind</th>'
            "<th>amount</th><th>balance after</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        date_format(row.created_at, "DATETIME_FORMAT"),
                        row.kind,
                        money_format(row.amount),
                        money_format(row.balance_after),
                    )
                    for row in rows
                ),
            ),
        )

    def changelist_view(self, request, extra_context=None):
        pending = CreditRequest.objects.filter(status=CreditRequest.Status.PENDING).aggregate(
            count=Count("id"), total=Coalesce(Sum("amount"), 0)
        )
        return super().changelist_view(request, {**(extra_context or {}), "pending": pending})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(
            request,
            object_id,
            form_url,
            {**(extra_context or {}), "may_decide": self.has_approve_permission(request)},
        )

    def get_urls(self):
        decide = [
            path(
                f"<int:object_id>/{decision}/",
                self.admin_site.admin_view(self.decide_view),
                {"decision": decision},
                name=f"payments_creditrequest_{decision}",
            )
            for decision in ("approve", "reject")
        ]
        return decide + super().get_urls()

    def decide_confirmation(
        self, request, credit_request: CreditRequest, decision: str, **reason_form
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{decision.capitalize()} credit request #{credit_request.pk}?",
            "credit_request": credit_request,
            "decision": decision,
            "reason_max_length": REJECTION_REASON_MAX_LENGTH,
            **reason_form,
        }
        return TemplateResponse(request, "admin/payments/creditrequest/decide.html", context)

    def decide_view(self, request, object_id: int, decision: str):
        """Confirm, then approve or reject one request and go on to the next pending one."""
        if not self.has_approve_permission(request):
            raise PermissionDenied
        credit_request = get_object_or_404(
            CreditRequest.objects.select_related("seller"), pk=object_id
        )
        if request.method != "POST":
            return self.decide_confirmation(request, credit_request, decision)
        reason = _posted_reason(request)
        try:
            if decision == "approve":
                credit_request_approve(credit_request_id=credit_request.pk, decided_by=request.user)
            else:
                credit_request_reject(
                    credit_request_id=credit_request.pk, decided_by=request.user, reason=reason
                )
        except ValidationError as error:
            return self.decide_confirmation(
                request, credit_request, decision, **_reason_form_errors(reason, error)
            )
        except DomainError as error:
            self.message_user(
                request, f"Credit request #{credit_request.pk}: {error}", messages.WARNING
            )
            return redirect("admin:payments_creditrequest_change", credit_request.pk)
        verb = "Approved" if decision == "approve" else "Rejected"
        self.message_user(
            request,
            f"{verb} credit request #{credit_request.pk}"
            f" ({money_format(credit_request.amount)} for {credit_request.seller}).",
            messages.SUCCESS,
        )
        following = (
            CreditRequest.objects.filter(status=CreditRequest.Status.PENDING)
            .order_by("created_at", "id")
            .first()
        )
        if following is None:
            self.message_user(request, "No more pending credit requests.", messages.INFO)
            return redirect("admin:payments_creditrequest_changelist")
        return redirect("admin:payments_creditrequest_change", following.pk)

    @admin.action(description="Approve selected credit requests", permissions=["approve"])
    def approve_selected(self, request, queryset):
        _decide_selected(self, request, queryset, credit_request_approve, "Approved")

    @admin.action(description="Reject selected credit requests", permissions=["approve"])
    def reject_selected(self, request, queryset):
        _decide_selected(self, request, queryset, credit_request_reject, "Rejected")


@admin.register(PhoneAccount)
class PhoneAccountAdmin(ReadOnlyAdmin):
    list_display = ["phone_number", "balance_shown", "created_at"]
    fields = ["phone_number", "balance_shown", "created_at"]
    readonly_fields = ["balance_shown"]
    search_fields = ["phone_number"]
    date_hierarchy = "created_at"
    balance_shown = money_column("balance", "balance")


class ReversedFilter(admin.SimpleListFilter):
    title = "reversed"
    parameter_name = "reversed"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in {"yes", "no"}:
            return queryset.filter(reversal__isnull=self.value() == "no")
        return queryset


@admin.register(PhoneCharge)
class PhoneChargeAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "seller",
        "phone_account",
        "amount_shown",
        "reference",
        "reversed",
        "created_at",
    ]
    list_filter = [ReversedFilter, "created_at"]
    search_fields = [
        "phone_account__phone_number",
        "seller__name",
        "seller__user__username",
        "reference",
    ]
    list_select_related = ["seller", "phone_account", "reversal"]
    date_hierarchy = "created_at"
    fields = [
        "seller",
        "phone_account",
        "amount_shown",
        "reference",
        "created_at",
        "reversal_summary",
    ]
    readonly_fields = ["amount_shown", "reversal_summary"]
    amount_shown = money_column("amount", "amount")

    def has_reverse_permission(self, request) -> bool:
        # The same rule as the API's reverse endpoint.
        return staff_may(request.user, REVERSE_CHARGE)

    @admin.display(description="reversed", boolean=True)
    def reversed(self, charge: PhoneCharge) -> bool:
        return hasattr(charge, "reversal")

    @admin.display(description="reversal")
    def reversal_summary(self, charge: PhoneCharge) -> str:
        if not hasattr(charge, "reversal"):
            return "Not reversed."
        reversal = charge.reversal
        return format_html(
            "Reversed {} by {}{}",
            date_format(reversal.created_at, "DATETIME_FORMAT"),
            reversal.reversed_by,
            f": {reversal.reason}" if reversal.reason else "",
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {
            **(extra_context or {}),
            "may_reverse": self.has_reverse_permission(request),
            "reversed": PhoneChargeReversal.objects.filter(charge_id=object_id).exists(),
        }
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self):
        reverse = path(
            "<int:object_id>/reverse/",
            self.admin_site.admin_view(self.reverse_view),
            name="payments_phonecharge_reverse",
        )
        return [reverse, *super().get_urls()]

    def reverse_confirmation(self, request, charge: PhoneCharge, **reason_form) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Reverse charge #{charge.pk}?",
            "charge": charge,
            "reason_max_length": REVERSAL_REASON_MAX_LENGTH,
            **reason_form,
        }
        return TemplateResponse(request, "admin/payments/phonecharge/reverse.html", context)

    def reverse_view(self, request, object_id: int):
        """Confirm with an optional reason, then reverse through the service."""
        if not self.has_reverse_permission(request):
            raise PermissionDenied
        charge = get_object_or_404(PhoneCharge.objects.select_related("seller"), pk=object_id)
        if request.method != "POST":
            return self.reverse_confirmation(request, charge)
        reason = _posted_reason(request)
        try:
            phone_charge_reverse(charge_id=charge.pk, reversed_by=request.user, reason=reason)
        except ValidationError as error:
            return self.reverse_confirmation(request, charge, **_reason_form_errors(reason, error))
        except DomainError as error:
            self.message_user(request, f"Charge #{charge.pk}: {error}", messages.WARNING)
        else:
            self.message_user(
                request,
                f"Reversed charge #{charge.pk}: {money_format(charge.amount)} back to"
                f" {charge.seller}.",
                messages.SUCCESS,
            )
        return redirect("admin:payments_phonecharge_change", charge.pk)


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    # On the list and on a row's page alike.
    columns = [
        "seller",
        "kind",
        "amount_shown",
        "balance_after_shown",
        "credit_request",
        "phone_charge",
        "reversal",
        "created_at",
    ]
    list_display = ["id", *columns]
    fields = columns
    readonly_fields = ["amount_shown", "balance_after_shown"]
    list_filter = ["kind", "created_at"]
    search_fields = [
        "seller__name",
        "seller__user__username",
        "phone_charge__phone_account__phone_number",
    ]
    list_select_related = ["seller", "credit_request", "phone_charge", "reversal"]
    date_hierarchy = "created_at"
    amount_shown = money_column("amount", "amount")
    balance_after_shown = money_column("balance_after", "balance after")
