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

The login limit (``LoginRateThrottle``) is one for the API's
``/api-token-auth/`` and the admin's login page (payledger_project/admin_site.py):
both count against the same counters.
"""

import hashlib
import logging
import unicodedata
from collections.abc import Iterator

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle

from payledger_project.ops.metrics import THROTTLE_CACHE_ERRORS

logger = logging.getLogger(__name__)


class CountingRateThrottle(SimpleRateThrottle):
    """At most ``num_requests`` per window of ``duration`` seconds, counted atomically."""

    scope: str

    def get_rate(self) -> str | None:
        return settings.PAYLEDGER_THROTTLE_RATES.get(self.scope)

    def cache_keys(self, request, view) -> Iterator[str]:
        """The counters a request counts against, in order: the first one past
        the limit refuses it, and the ones after it are left as they were."""
        key = self.get_cache_key(request, view)
        if key is not None:
            yield key

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.now = self.timer()
        try:
            for key in self.cache_keys(request, view):
                self.key = key  # wait() reads the window of the counter that refused
                if self._count() > self.num_requests:
                    return False
            return True
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


class WebhookTestRateThrottle(CountingRateThrottle, UserRateThrottle):
    """Per-user limit on test events: each one takes the seller's row lock and stays in
    the event feed, so a loop of them must not crowd out the seller's own charges."""

    scope = "webhook_test"


class AuthRateThrottle(CountingRateThrottle):
    """Per-address limit on registering and (with ``LoginRateThrottle``) logging in,
    against mass registration and password guessing.

    Unlike DRF's AnonRateThrottle it counts every caller, token or not. The
    address is the socket peer unless PROXY_COUNT declares proxies in front.
    """

    scope = "anon_auth"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginRateThrottle(AuthRateThrottle):
    """The login limit, for the API and the admin alike: per address, as
    ``AuthRateThrottle``, and per username, so that guesses at one account
    spread over many addresses are limited too.

    The username is counted only once the address is within its limit, and is
    read as Django's login form reads it (stripped, NFKC), case folded, so
    spelling it differently does not open another counter. The price: anyone
    can hold one account's logins off for the rest of a window by spending its
    limit; the window is short (a minute by default) and the account's owner
    can still use an API token.
    """

    def cache_keys(self, request, view) -> Iterator[str]:
        yield from super().cache_keys(request, view)
        username = _login_username(request)
        if username:
            digest = hashlib.sha256(username.encode()).hexdigest()
            yield self.cache_format % {"scope": f"{self.scope}_username", "ident": digest}


def _login_username(request) -> str | None:
    """The username a login attempt names: in the API's JSON body or the admin's form."""
    data = request.data if isinstance(request, Request) else request.POST
    if not hasattr(data, "get"):
        return None
    username = data.get("username")
    if isinstance(username, bool) or not isinstance(username, str | int | float):
        return None
    return unicodedata.normalize("NFKC", str(username).strip()).casefold()
