from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payledger_project.parsers import JSONBodyParser
from payledger_project.throttles import AnonymousAuthRateThrottle
from sellers.selectors import seller_list
from sellers.serializers import SellerOutputSerializer, SellerRegisterInputSerializer
from sellers.services import auth_token_revoke, seller_register


class SellerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Register (open to anyone); list and read sellers the caller may see."""

    serializer_class = SellerOutputSerializer

    def get_permissions(self):
        if self.action == "create":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_throttles(self):
        if self.action == "create":
            return [AnonymousAuthRateThrottle()]
        return super().get_throttles()

    def get_queryset(self):
        return seller_list(user=self.request.user)

    def create(self, request: Request) -> Response:
        serializer = SellerRegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        seller = seller_register(**serializer.validated_data)
        return Response(SellerOutputSerializer(seller).data, status=status.HTTP_201_CREATED)

    @action(detail=False)
    def me(self, request: Request) -> Response:
        seller = get_object_or_404(self.get_queryset(), user=request.user)
        return Response(self.get_serializer(seller).data)


class TokenObtainApi(ObtainAuthToken):
    """Exchange a username and password for the API token."""

    throttle_classes = [AnonymousAuthRateThrottle]
    parser_classes = [JSONBodyParser]


class LogoutApi(APIView):
    """Delete the caller's token."""

    def post(self, request: Request) -> Response:
        auth_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
