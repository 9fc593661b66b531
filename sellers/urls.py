from rest_framework.routers import SimpleRouter

from sellers.api import SellerViewSet

router = SimpleRouter()
router.register("sellers", SellerViewSet, basename="seller")

urlpatterns = router.urls
