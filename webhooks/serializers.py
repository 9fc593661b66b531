from rest_framework import serializers

from payledger_project.fields import StrictCharField
from payments.models import Event
from webhooks.models import WebhookDelivery, WebhookEndpoint


class WebhookEndpointInputSerializer(serializers.Serializer):
    url = StrictCharField(max_length=2000, help_text="HTTPS; must resolve to a public address.")
    event_types = serializers.MultipleChoiceField(choices=Event.Type.choices, allow_empty=False)


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
        ]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointOutputSerializer):
    """The answer to a registration: the only time the signing secret is shown."""

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
