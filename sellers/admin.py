from django.contrib import admin
from rest_framework.authtoken.admin import TokenProxy

from sellers.models import Seller

# DRF's token admin shows every key in clear and lets staff mint a token for any
# user, that is, spend any seller's balance. Tokens come only from logging in.
admin.site.unregister(TokenProxy)


@admin.register(Seller)
class SellerAdmin(admin.ModelAdmin):
    """Sellers register through the API; balances move only through payments services."""

    list_display = ["id", "name", "user", "balance", "created_at"]
    search_fields = ["name", "user__username"]
    readonly_fields = ["user", "balance", "created_at"]
    list_select_related = ["user"]

    def save_model(self, request, obj, form, change) -> None:
        # Only the fields the form edits, never a balance read when the page loaded.
        obj.save(update_fields=form.changed_data)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
