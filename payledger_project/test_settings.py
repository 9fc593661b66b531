"""Settings for the test suite (pytest, and `python manage.py test`): the real ones,
with a fast password hasher and empty caches before every test."""

from payledger_project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

TEST_RUNNER = "payledger_project.test_runner.CacheIsolatingRunner"

# Suites that hammer the API must not be throttled; throttle tests override these.
PAYLEDGER_THROTTLE_RATES = {"charge": "1000000/minute", "anon_auth": "1000000/minute"}

# Keep test output to failures: the money movements are logged at INFO.
LOGGING["loggers"]["payments"]["level"] = "WARNING"  # noqa: F405
