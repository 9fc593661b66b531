from django.db import models
from django.db.models import Q
from django.utils import timezone

from payments.models import Event
from sellers.models import Seller
from webhooks.fields import EncryptedTextField


class WebhookEndpoint(models.Model):
    """A seller's HTTPS URL that receives the events it subscribed to, in order.

    The endpoint row is also its delivery queue: ``last_event_id`` is the
    cursor (every earlier event of the seller was delivered or not wanted),
    and the retry state of the event at the head sits beside it. A worker
    leases the row while it delivers by pushing ``next_attempt_at`` to the
    lease's end, so one endpoint is served by one worker at a time (see
    webhooks/services.py).
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        FAILING = "failing"

    seller = models.ForeignKey(Seller, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    event_types = models.JSONField(help_text="The event types delivered here.")
    # HMAC key: encrypted in the database, plain here because signing needs it;
    # shown to the seller once.
    secret = EncryptedTextField()
    # After a rotation, the secret before it, also signing deliveries until
    # previous_secret_expires_at (PAYLEDGER_WEBHOOK_SECRET_GRACE_SECONDS).
    previous_secret = EncryptedTextField(null=True, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    last_event_id = models.BigIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    failed_attempts = models.PositiveIntegerField(default=0)
    retrying_since = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhookendpoint_due"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["active", "failing"]), name="webhookendpoint_status_valid"
            ),
            # One URL once per seller: a copy would be sent every event again.
            models.UniqueConstraint(fields=["seller", "url"], name="webhookendpoint_seller_url"),
            models.CheckConstraint(
                condition=Q(previous_secret__isnull=True, previous_secret_expires_at__isnull=True)
                | Q(previous_secret__isnull=False, previous_secret_expires_at__isnull=False),
                name="webhookendpoint_previous_secret_expires",
            ),
        ]

    def __str__(self) -> str:
        return f"Webhook endpoint #{self.pk} {self.url}"


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one endpoint, and how it went."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries")
    attempt = models.PositiveIntegerField(help_text="1 for the first try of this event.")
    delivered = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # NULL, not "": most attempts have no error.
    error = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    duration_ms = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["endpoint", "-id"], name="webhookdelivery_endpoint")]

    def __str__(self) -> str:
        return f"Delivery of event #{self.event_id} to endpoint #{self.endpoint_id}"
