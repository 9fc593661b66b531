"""Rate limits, read from settings at request time so tests can override them.

The counters live in Django's cache (Redis when REDIS_URL is set), one atomic
increment per request. DRF's own throttles read a list of timestamps, append
and write it back: requests that arrive together in different workers read
the same list and all get through (16 of a limit of 10 in a test). Here a
window opens with a key's first request and lasts the rate's period; the
cache's add and incr (Redis SET NX and INCR) count each request exactly once.

If the cache cannot be reached, a throttle lets the request through and logs
an error: the limits guard against abuse, not money (the database does), and
a cache outage must not become a payments outage.
"""

import logging

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle

from payledger_project.ops.metrics import THROTTLE_CACHE_ERRORS

logger = logging.getLogger(__name__)


class CountingRateThrottle(SimpleRateThrottle):
    """At most ``num_requests`` per window of ``duration`` seconds, counted atomically."""

    scope: str

    def get_rate(self) -> str | None:
        return settings.PAYLEDGER_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        try:
            return self._count() <= self.num_requests
        except RedisError:
            logger.error(
                "throttle %s not applied: the cache is unavailable", self.scope, exc_info=True
            )
            THROTTLE_CACHE_ERRORS.inc()
            return True

    def _count(self) -> int:
        for _ in range(2):
            if self.cache.add(self.key, 0, self.duration):
                self.cache.set(f"{self.key}:opened", self.now, self.duration)
            try:
                return self.cache.incr(self.key)
            except ValueError:
                continue  # the window closed between add and incr: open the next one
        raise RuntimeError(f"could not count {self.key}")

    def wait(self) -> float:
        try:
            opened = self.cache.get(f"{self.key}:opened", self.now)
        except RedisError:
            opened = self.now
        return max(self.duration - (self.now - opened), 1)


class ChargeRateThrottle(CountingRateThrottle, UserRateThrottle):
    """Per-seller limit on phone charges."""

    scope = "charge"


class AuthRateThrottle(CountingRateThrottle):
    """Per-address limit on logging in and registering, against password guessing.

    Unlike DRF's AnonRateThrottle it counts every caller, token or not. The
    address is the socket peer unless PROXY_COUNT declares proxies in front.
    """

    scope = "anon_auth"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
