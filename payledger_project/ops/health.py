"""Probes for the orchestrator: no auth, no redirect, no throttle, nothing secret.

``/healthz`` says the process answers and touches nothing else, so a slow
database never gets a healthy worker restarted. ``/readyz`` runs
django-health-check's database (``SELECT 1`` on a fresh connection) and
cache (set and read a throwaway key) probes, each bounded by a timeout, and
answers 503 in the API's error shape naming what failed, so a load balancer
sends no traffic to an instance that could not serve it.
"""

import asyncio

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from health_check.checks import Cache, Database
from health_check.views import HealthCheckView

DEPENDENCIES = {Database: "database", Cache: "cache"}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


class ReadinessView(HealthCheckView):
    """django-health-check's probes, answered in the project's JSON shape."""

    checks = tuple(DEPENDENCIES)

    async def get(self, request: HttpRequest, *args, **kwargs) -> JsonResponse:
        with self.get_executor() as executor:
            results = await asyncio.gather(
                *(check.get_result(executor) for check in self.get_checks())
            )
        failing = [DEPENDENCIES[type(result.check)] for result in results if result.error]
        if failing:
            return JsonResponse(
                {"code": "not_ready", "message": f"Unavailable: {', '.join(failing)}."},
                status=503,
            )
        return JsonResponse({"status": "ready"})
