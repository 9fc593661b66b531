"""Rate limits, read from settings at request time so tests can override them."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class SettingsRateMixin:
    scope: str

    def get_rate(self) -> str | None:
        return settings.PAYLEDGER_THROTTLE_RATES.get(self.scope)


class ChargeRateThrottle(SettingsRateMixin, UserRateThrottle):
    """Per-seller limit on phone charges."""

    scope = "charge"


class AuthRateThrottle(SettingsRateMixin, SimpleRateThrottle):
    """Per-address limit on logging in and registering, against password guessing.

    Unlike DRF's AnonRateThrottle it counts every caller, token or not. The
    address is the socket peer unless PROXY_COUNT declares proxies in front.
    """

    scope = "anon_auth"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
