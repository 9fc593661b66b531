from django.urls import path

from payledger_project.ops.health import ReadinessView, healthz
from payledger_project.ops.metrics import metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", ReadinessView.as_view(), name="readyz"),
    path("metrics", metrics, name="metrics"),
]
