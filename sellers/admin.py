from django.contrib import admin

from sellers.models import Seller


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
