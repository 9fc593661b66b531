from django.contrib import admin, messages

from payledger_project.exceptions import DomainError
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_test_send


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["created_at", "event", "attempt", "delivered", "status_code", "error", "duration_ms"]
    readonly_fields = fields
    ordering = ["-id"]
    max_num = 0  # the newest first; attempts are written by the worker only
    can_delete = False
    show_change_link = False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Sellers' endpoints, read-only and never with their secrets; staff who may
    change them can send a test event to see a delivery arrive."""

    list_display = ["id", "seller", "url", "status", "created_at", "last_event_id"]
    list_filter = ["status"]
    search_fields = ["url", "seller__name"]
    # Never shown, not even to superusers: only the seller sees a secret, once.
    exclude = ["secret", "previous_secret"]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        # Written by the services and the worker only.
        return [
            field.name
            for field in WebhookEndpoint._meta.fields
            if field.name not in {"id", *self.exclude}
        ]

    inlines = [WebhookDeliveryInline]
    actions = ["send_test_event"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("seller")

    @admin.action(
        description="Send a test event (webhook.test) to the selected endpoints",
        permissions=["change"],
    )
    def send_test_event(self, request, queryset):
        sent = 0
        for endpoint in queryset:
            try:
                event = webhook_endpoint_test_send(endpoint=endpoint)
            except DomainError as error:
                self.message_user(request, f"{endpoint}: {error}", messages.WARNING)
            else:
                sent += 1
                self.message_user(
                    request,
                    f"Event #{event.pk} (webhook.test) queued for {endpoint}.",
                    messages.INFO,
                )
        if sent:
            self.message_user(
                request,
                f"Queued {sent} test event(s); the worker (deliver_webhooks) delivers them.",
                messages.SUCCESS,
            )
