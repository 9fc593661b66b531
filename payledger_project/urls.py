from django.contrib import admin
from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api-token-auth/", obtain_auth_token, name="api-token-auth"),
    path("api/", include("sellers.urls")),
    path("api/payments/", include("payments.urls")),
]

handler404 = "payledger_project.exceptions.json_not_found"
handler500 = "payledger_project.exceptions.json_server_error"
