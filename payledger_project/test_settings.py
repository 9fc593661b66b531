"""Settings for the test suite (pytest, and `python manage.py test`): production's,
with what a test run needs.

The suite runs with no environment at all: it brings its own secret keys and
the production shape (DEBUG off), minus the HTTPS redirect the test client
cannot follow and the static-file manifest only `collectstatic` writes. Its
database is DATABASE_URL's, or, unset, the embedded PostgreSQL in the
checkout's .pgdata, where Django creates test_payledger. Every test starts with
empty caches (see test_runner.py).
"""

import os

os.environ["DEBUG"] = "false"
# A developer's shell may have the loopback switch on; without DEBUG the settings
# would refuse it. The suite sets the setting itself, below.
os.environ["PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK"] = "false"
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "x" * 40)
# b"payledger-tests-only-webhook-key", as a Fernet key.
os.environ.setdefault(
    "PAYLEDGER_WEBHOOK_SECRET_KEYS", "cGF5bGVkZ2VyLXRlc3RzLW9ubHktd2ViaG9vay1rZXk="
)

from payledger_project.environment import env  # noqa: E402
from payledger_project.settings import *  # noqa: E402, F403

SECURE_SSL_REDIRECT = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise serves the apps' static files as they are, as in development.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Staff's second factor is production's rule, but most tests log staff in
# without one, as a developer's machine does; the tests of the rule, the
# browser's and the production server's turn it on.
PAYLEDGER_STAFF_OTP_REQUIRED = False

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

TEST_RUNNER = "payledger_project.test_runner.CacheIsolatingRunner"

# Suites that hammer the API must not be throttled; throttle tests override these.
PAYLEDGER_THROTTLE_RATES = {"charge": "1000000/minute", "anon_auth": "1000000/minute"}

# Keep test output to failures: every request and money movement is logged
# at INFO. Loggers still pass INFO on, to the tests that read the lines; a test
# reading a subprocess's output sets PAYLEDGER_LOG_LEVEL.
LOGGING["handlers"]["stdout"]["level"] = env.str("PAYLEDGER_LOG_LEVEL", "WARNING")  # noqa: F405

# A local receiver on loopback, over plain HTTP, answering fast; retries soon.
PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK = True
# A worker process a test kills mid-delivery waits longer (see webhooks/tests).
PAYLEDGER_WEBHOOK_TIMEOUT = env.float("TEST_WEBHOOK_TIMEOUT", 0.5)
PAYLEDGER_WEBHOOK_RETRY_BASE = 0.05
PAYLEDGER_WEBHOOK_RETRY_CAP = 0.2
