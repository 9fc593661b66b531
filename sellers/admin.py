from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from payledger_project.money import money_column
from payments.selectors import sellers_with_totals
from sellers.models import ApiKey, Seller
from sellers.services import api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff see whose keys exist, by prefix, and revoke them; no one sees a key (the
    database has only digests) or mints one for a user: a key is its seller's money,
    so keys come only from logging in."""

    list_display = ["prefix", "user", "created_at", "expires_at"]
    list_filter = ["created_at", "expires_at"]
    search_fields = ["prefix", "user__username"]
    list_select_related = ["user"]
    fields = ["prefix", "user", "created_at", "expires_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj: ApiKey) -> None:
        api_key_revoke(api_key=obj)

    def delete_queryset(self, request, queryset) -> None:
        for api_key in queryset:
            api_key_revoke(api_key=api_key)


@admin.register(Seller)
class SellerAdmin(admin.ModelAdmin):
    """Sellers register through the API; balances move only through payments services."""

    # On the list and on a seller's page alike.
    columns = ["balance_shown", "credited", "charged", "reversed", "records", "created_at"]
    list_display = ["id", "name", "user", *columns]
    search_fields = ["name", "user__username"]
    fields = ["name", "user", *columns]
    readonly_fields = [field for field in fields if field != "name"]
    list_select_related = ["user"]
    balance_shown = money_column("balance", "balance")
    # Totals the queryset adds up (sellers_with_totals), sortable by the integer.
    credited = money_column("credited", "credited in all")
    charged = money_column("charged", "charged in all")
    reversed = money_column("reversed", "given back by reversals")

    def get_queryset(self, request):
        return sellers_with_totals(super().get_queryset(request))

    @admin.display(description="records")
    def records(self, seller: Seller) -> str:
        journal = reverse("admin:payments_transaction_changelist")
        requests = reverse("admin:payments_creditrequest_changelist")
        return format_html(
            '<a href="{}?seller__id__exact={}">journal</a> · '
            '<a href="{}?seller__id__exact={}&amp;status=all">credit requests</a>',
            journal,
            seller.pk,
            requests,
            seller.pk,
        )

    def save_model(self, request, obj, form, change) -> None:
        # Only the fields the form edits, never a balance read when the page loaded.
        obj.save(update_fields=form.changed_data)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
