from django.contrib import admin

from sellers.models import ApiKey
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
