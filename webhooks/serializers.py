from rest_framework import serializers

from payledger_project.fields import StrictCharField
from payments.models import Event
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import SUBSCRIBABLE_EVENT_TYPES

# Named SubscribableEventTypeEnum in the schema (settings.SPECTACULAR_SETTINGS).
SUBSCRIBABLE_EVENT_TYPE_CHOICES = [
    (value, Event.Type(value).label) for value in SUBSCRIBABLE_EVENT_TYPES
]


class WebhookEndpointInputSerializer(serializers.Serializer):
    url = StrictCharField(max_length=2000, help_text="HTTPS; must resolve to a public address.")
    event_types = serializers.MultipleChoiceField(
        choices=SUBSCRIBABLE_EVENT_TYPE_CHOICES, allow_empty=False
    )


class WebhookEndpointOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "seller",
            "url",
            "event_types",
            "status",
            "created_at",
            "last_event_id",
            "next_attempt_at",
            "failing_since",
            "previous_secret_expires_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "previous_secret_expires_at": {
                "help_text": "After a rotation: until when the previous secret signs too."
            }
        }


class WebhookEndpointCreatedSerializer(WebhookEndpointOutputSerializer):
    """The answer to a registration or a rotation: the only time the signing secret
    is shown."""

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = [*WebhookEndpointOutputSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "attempt",
            "delivered",
            "status_code",
            "error",
            "duration_ms",
            "created_at",
        ]
        read_only_fields = fields
