from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.urls import reverse
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenProxy
from rest_framework.authtoken.models import Token

from payments.selectors import sellers_with_totals
from sellers.models import Seller

User = get_user_model()
# DRF's token admin shows every key in clear and lets staff mint a token for any
# user, that is, spend any seller's balance. Tokens come only from logging in.
admin.site.unregister(TokenProxy)
admin.site.unregister(User)
HIDDEN_TOKEN = f"{Token._meta.verbose_name.capitalize()}: (hidden)"


def _hide_token_keys(deleted: list, keys: set[str]) -> list:
    """The delete page's nested list of what goes, with each token's key hidden:
    Django names every related row by its str(), and a token's is its key."""
    return [
        _hide_token_keys(item, keys)
        if isinstance(item, list)
        else HIDDEN_TOKEN
        if any(key in item for key in keys)
        else item
        for item in deleted
    ]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin, except that deleting a user never shows its API token."""

    def get_deleted_objects(self, objs, request):
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        keys = set(Token.objects.filter(user__in=objs).values_list("key", flat=True))
        return _hide_token_keys(deleted, keys), model_count, perms_needed, protected


@admin.register(Seller)
class SellerAdmin(admin.ModelAdmin):
    """Sellers register through the API; balances move only through payments services."""

    list_display = [
        "id",
        "name",
        "user",
        "balance",
        "credited",
        "charged",
        "reversed",
        "records",
        "created_at",
    ]
    search_fields = ["name", "user__username"]
    fields = ["name", "user", "balance", "credited", "charged", "reversed", "records", "created_at"]
    readonly_fields = [field for field in fields if field != "name"]
    list_select_related = ["user"]

    def get_queryset(self, request):
        return sellers_with_totals(super().get_queryset(request))

    @admin.display(description="credited in all", ordering="credited")
    def credited(self, seller: Seller) -> int:
        return seller.credited

    @admin.display(description="charged in all", ordering="charged")
    def charged(self, seller: Seller) -> int:
        return seller.charged

    @admin.display(description="given back by reversals", ordering="reversed")
    def reversed(self, seller: Seller) -> int:
        return seller.reversed

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
