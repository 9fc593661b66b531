from rest_framework.routers import SimpleRouter

from sellers.api import ApiKeyViewSet, SellerViewSet

router = SimpleRouter()
router.register("sellers", SellerViewSet, basename="seller")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = router.urls
