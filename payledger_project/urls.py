from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from payments.api import SellerBalanceApi
from sellers.api import LogoutApi, TokenObtainApi

# Django tries these in order: the charge, by far the most requested path, is
# found first (after all the other patterns its look-up took three times as long).
urlpatterns = [
    path("api/payments/", include("payments.urls")),
    path("", RedirectView.as_view(pattern_name="docs"), name="home"),
    path("", include("payledger_project.ops.urls")),
    path("admin/", admin.site.urls),
    path("api-token-auth/", TokenObtainApi.as_view(), name="api-token-auth"),
    path("api/auth/logout/", LogoutApi.as_view(), name="logout"),
    # A seller's balance is payments' (balances, the journal) at the seller's address;
    # before the sellers' routes, whose detail pattern would take "me" for an id.
    path("api/sellers/me/", SellerBalanceApi.as_view(), name="seller-me"),
    path("api/", include("sellers.urls")),
    path("api/", include("webhooks.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

handler400 = "payledger_project.exceptions.json_bad_request"
handler403 = "payledger_project.exceptions.json_permission_denied"
handler404 = "payledger_project.exceptions.json_not_found"
handler500 = "payledger_project.exceptions.json_server_error"
