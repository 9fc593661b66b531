"""Test isolation shared by both runners: every test starts with empty caches.

Throttle counters live in the cache; left over from one test they would
throttle the next, so results would depend on order. Django's runner uses
``CacheIsolatingRunner`` (``TEST_RUNNER``); pytest calls ``caches_clear``
from the root ``conftest.py``.
"""

import unittest
from contextlib import suppress

from django.core.cache import caches
from django.test.runner import DiscoverRunner
from redis.exceptions import RedisError


def caches_clear() -> None:
    for cache in caches.all():
        # A cache a test points at a closed port holds nothing to clear.
        with suppress(RedisError):
            cache.clear()


class CacheIsolatingRunner(DiscoverRunner):
    def get_resultclass(self):
        result_class = super().get_resultclass() or unittest.TextTestResult

        class CacheIsolatingResult(result_class):
            def startTest(self, test):
                caches_clear()
                super().startTest(test)

        return CacheIsolatingResult
