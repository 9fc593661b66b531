from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from payledger_project.pagination import StrictCursorPagination
from payledger_project.permissions import IsSeller
from payledger_project.schema import error_responses
from payledger_project.throttles import WebhookTestRateThrottle
from payments.serializers import EventOutputSerializer
from webhooks.exceptions import DuplicateUrl, EndpointFailing, EndpointLimit
from webhooks.selectors import webhook_delivery_list, webhook_endpoint_list
from webhooks.serializers import (
    WebhookDeliveryOutputSerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointInputSerializer,
    WebhookEndpointOutputSerializer,
)
from webhooks.services import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_test_send,
)

# Only the owner changes an endpoint, even if staff may see it.
OWNER_ACTIONS = {"create", "destroy", "rotate_secret", "send_test_event"}


class DeliveryPagination(StrictCursorPagination):
    ordering = ("-id",)


@extend_schema_view(
    list=extend_schema(
        responses={200: WebhookEndpointOutputSerializer, **error_responses(401, 404)}
    ),
    retrieve=extend_schema(
        responses={200: WebhookEndpointOutputSerializer, **error_responses(401, 404)}
    ),
    create=extend_schema(
        summary="Register an HTTPS URL for events; the answer shows the signing secret once",
        request=WebhookEndpointInputSerializer,
        responses={
            201: WebhookEndpointCreatedSerializer,
            **error_responses(400, 401, 403, 409, 415, conflicts=[DuplicateUrl, EndpointLimit]),
        },
        description=(
            "409 `duplicate_url`: the seller already has an endpoint for this URL;"
            " `endpoint_id` names it. 409 `endpoint_limit`: the seller has `limit` endpoints"
            " (PAYLEDGER_WEBHOOK_ENDPOINTS_MAX); delete one first."
        ),
        examples=[
            OpenApiExample(
                "register",
                value={
                    "url": "https://shop.example.com/payledger/webhooks",
                    "event_types": ["credit_request.approved", "phone_charge.created"],
                },
                request_only=True,
            )
        ],
    ),
    destroy=extend_schema(
        summary="Stop delivering to an endpoint",
        responses={204: None, **error_responses(401, 403, 404)},
    ),
    rotate_secret=extend_schema(
        summary="Replace the signing secret; the answer shows the new one once",
        request=None,
        responses={200: WebhookEndpointCreatedSerializer, **error_responses(401, 403, 404)},
        description=(
            "Until `previous_secret_expires_at` (PAYLEDGER_WEBHOOK_SECRET_GRACE_SECONDS,"
            " 24 h by default) every delivery is signed with the new and the previous"
            " secret (two `v1,` signatures in `webhook-signature`); after it, with the new"
            " one only. Rotating again within the window ends the previous secret's at once."
        ),
    ),
    send_test_event=extend_schema(
        summary="Queue a `webhook.test` event for this endpoint",
        request=None,
        responses={
            202: EventOutputSerializer,
            **error_responses(401, 403, 404, 409, 429, conflicts=[EndpointFailing]),
        },
        description=(
            'The event (`data`: `{"endpoint": <id>}`) goes to this endpoint only,'
            " whatever its `event_types`, and is delivered like any other: by the worker,"
            " in order after the endpoint's earlier events, signed, retried, listed under"
            " `deliveries/`. It appears in the seller's event feed and moves no money."
            " 409 `endpoint_failing`: deliveries to the endpoint stopped."
        ),
    ),
    deliveries=extend_schema(
        summary="An endpoint's delivery attempts, newest first",
        responses={
            200: WebhookDeliveryOutputSerializer(many=True),
            **error_responses(400, 401, 404),
        },
    ),
)
class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """A seller's webhook endpoints (staff who may view them: everyone's, without secrets)."""

    serializer_class = WebhookEndpointOutputSerializer

    def get_permissions(self):
        if self.action in OWNER_ACTIONS:
            return [IsAuthenticated(), IsSeller()]
        return [IsAuthenticated()]

    def get_queryset(self):
        endpoints = webhook_endpoint_list(user=self.request.user)
        if self.action in OWNER_ACTIONS:
            return endpoints.filter(seller__user_id=self.request.user.pk)
        return endpoints

    def create(self, request: Request) -> Response:
        serializer = WebhookEndpointInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(seller=request.user.seller, **serializer.validated_data)
        return Response(
            WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )

    def perform_destroy(self, instance) -> None:
        webhook_endpoint_delete(endpoint=instance)

    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        endpoint = webhook_endpoint_secret_rotate(endpoint=self.get_object())
        return Response(WebhookEndpointCreatedSerializer(endpoint).data)

    @action(
        detail=True, methods=["post"], url_path="test", throttle_classes=[WebhookTestRateThrottle]
    )
    def send_test_event(self, request: Request, pk: str) -> Response:
        event = webhook_endpoint_test_send(endpoint=self.get_object())
        return Response(EventOutputSerializer(event).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"], pagination_class=DeliveryPagination)
    def deliveries(self, request: Request, pk: str) -> Response:
        deliveries = webhook_delivery_list(endpoint=self.get_object())
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(WebhookDeliveryOutputSerializer(page, many=True).data)
