from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from payledger_project.permissions import staff_may
from webhooks.models import WebhookDelivery, WebhookEndpoint

VIEW_WEBHOOK_ENDPOINTS = "webhooks.view_webhookendpoint"


def webhook_endpoint_list(*, user: AbstractBaseUser) -> QuerySet[WebhookEndpoint]:
    """The caller's seller's endpoints; every endpoint for staff who may view them."""
    if not user.is_authenticated:
        return WebhookEndpoint.objects.none()
    if staff_may(user, VIEW_WEBHOOK_ENDPOINTS):
        return WebhookEndpoint.objects.all()
    return WebhookEndpoint.objects.filter(seller__user=user)


def webhook_delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """An endpoint's delivery attempts, newest first."""
    return endpoint.deliveries.order_by("-id")
