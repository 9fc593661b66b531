from django.urls import path
from rest_framework.routers import SimpleRouter

from payments.api import (
    CreditRequestViewSet,
    EventListApi,
    PhoneChargeCreateApi,
    PhoneChargeViewSet,
    StatementApi,
    TransactionExportApi,
    TransactionListApi,
)

router = SimpleRouter()
router.register("credit-requests", CreditRequestViewSet, basename="credit-request")
router.register("phone-charges", PhoneChargeViewSet, basename="phone-charges")

urlpatterns = [
    path("phone-charge/", PhoneChargeCreateApi.as_view(), name="phone-charge"),
    path("transactions/", TransactionListApi.as_view(), name="transaction-list"),
    path("events/", EventListApi.as_view(), name="event-list"),
    path("statement/", StatementApi.as_view(), name="statement"),
    path("transactions/export.csv", TransactionExportApi.as_view(), name="transaction-export"),
    *router.urls,
]
