from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payledger_project.parsers import JSONBodyParser
from payledger_project.schema import RETRY_AFTER, error_responses
from payledger_project.throttles import AuthRateThrottle, LoginRateThrottle
from sellers.selectors import api_key_list, seller_list
from sellers.serializers import (
    ApiKeyOutputSerializer,
    SellerOutputSerializer,
    SellerRegisterInputSerializer,
    TokenObtainInputSerializer,
    TokenOutputSerializer,
)
from sellers.services import (
    API_KEY_PREFIX_LENGTH,
    api_key_create,
    api_key_revoke,
    seller_register,
)


@extend_schema_view(
    list=extend_schema(responses={200: SellerOutputSerializer, **error_responses(401, 404)}),
    retrieve=extend_schema(responses={200: SellerOutputSerializer, **error_responses(401, 404)}),
    create=extend_schema(
        summary="Register a seller",
        request=SellerRegisterInputSerializer,
        responses={201: SellerOutputSerializer, **error_responses(400, 401, 415, 429)},
        parameters=[RETRY_AFTER],
        examples=[
            OpenApiExample(
                "register",
                value={"username": "alice", "password": "a-long-passphrase", "name": "Alice Shop"},
                request_only=True,
            )
        ],
    ),
)
class SellerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Register (open to anyone); list and read sellers the caller may see."""

    serializer_class = SellerOutputSerializer

    def get_permissions(self):
        if self.action == "create":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_throttles(self):
        if self.action == "create":
            return [AuthRateThrottle()]
        return super().get_throttles()

    def get_queryset(self):
        return seller_list(user=self.request.user)

    def create(self, request: Request) -> Response:
        serializer = SellerRegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        seller = seller_register(**serializer.validated_data)
        return Response(SellerOutputSerializer(seller).data, status=status.HTTP_201_CREATED)


class TokenObtainApi(APIView):
    """Exchange a username and password for a new API key. Each login mints its own
    key (the database keeps only digests, so it cannot hand back an earlier one)."""

    @extend_schema(
        tags=["auth"],
        request=TokenObtainInputSerializer,
        responses={200: TokenOutputSerializer, **error_responses(400, 401, 415, 429)},
        parameters=[RETRY_AFTER],
        examples=[
            OpenApiExample(
                "log in",
                value={"username": "alice", "password": "a-long-passphrase"},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = TokenObtainInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        _, key = api_key_create(
            user=serializer.validated_data["user"],
            second_factor="otp_code" in serializer.validated_data,
        )
        return Response(TokenOutputSerializer({"token": key}).data)

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]
    parser_classes = [JSONBodyParser]


class LogoutApi(APIView):
    """Revoke the key the request came with; the caller's other keys keep working."""

    @extend_schema(request=None, responses={204: None, **error_responses(401)})
    def post(self, request: Request) -> Response:
        api_key_revoke(api_key=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="The caller's API keys, newest first, each named by its prefix",
        responses={200: ApiKeyOutputSerializer, **error_responses(401, 404)},
    ),
    destroy=extend_schema(
        summary="Revoke one of the caller's API keys by its prefix",
        responses={204: None, **error_responses(401, 404)},
    ),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's own API keys: listed by prefix (never the key), and revoked."""

    serializer_class = ApiKeyOutputSerializer
    lookup_field = "prefix"
    lookup_value_regex = f"[0-9a-f]{{{API_KEY_PREFIX_LENGTH}}}"

    def get_queryset(self):
        return api_key_list(user=self.request.user)

    def perform_destroy(self, instance) -> None:
        api_key_revoke(api_key=instance)
