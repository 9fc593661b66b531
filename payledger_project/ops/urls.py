from django.urls import path

from payledger_project.ops.health import ReadinessView, healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", ReadinessView.as_view(), name="readyz"),
]
