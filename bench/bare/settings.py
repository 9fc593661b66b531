"""The yardstick for PayLedger's charge: a bare DRF view doing the same SQL.

Token authentication, an input serializer and the five statements of a
charge (its event included) in one transaction, on persistent connections,
with no middleware, no throttle, no idempotency and no logging: what the
framework itself allows: DRF's own token authentication, by the key kept in
clear. It runs against a database migrated by PayLedger, so ``verify_ledger``
can check its books too, plus DRF's token table (bench/run.py adds it).
"""

import os

import dj_database_url

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework.authtoken",
]
MIDDLEWARE = []
ROOT_URLCONF = "bench.bare.views"
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
