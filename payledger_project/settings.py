"""PayLedger settings.

The environment is read here, through the one reader (``env``,
payledger_project/environment.py; every variable is listed in .env.example);
production differs from a developer's machine only by its environment variables.
"""

import base64
import hashlib
import logging
import re
import sys
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from payledger_project.environment import env
from payledger_project.ops.logs import logging_configure

BASE_DIR = Path(__file__).resolve().parent.parent


# Production is the default; `make run` opts into DEBUG on a developer's machine.
DEBUG = env.bool("DEBUG", False)

SECRET_KEY = env.str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-never-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])


def _https_origin(host: str) -> str:
    # ".example.com" in ALLOWED_HOSTS means the domain and its subdomains.
    return f"https://*{host}" if host.startswith(".") else f"https://{host}"


# The admin's forms are posted from the site itself, served over HTTPS.
CSRF_TRUSTED_ORIGINS = [_https_origin(host) for host in ALLOWED_HOSTS if host != "*"] + env.list(
    "CSRF_TRUSTED_ORIGINS", default=[]
)

# How many reverse proxies stand in front of the service. With none (the
# default) no forwarding header is trusted: the client address is the socket
# peer and X-Forwarded-Proto is ignored. With N, the client address is the Nth
# entry from the right of X-Forwarded-For (the one the outermost proxy wrote)
# and "X-Forwarded-Proto: https", which the outermost proxy must set, not
# append to, marks the request secure.
PROXY_COUNT = env.int("PROXY_COUNT", 0)
if PROXY_COUNT < 0:
    raise ImproperlyConfigured("PROXY_COUNT must be 0 or more.")
if PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# HTTPS only, unless DEBUG: plain-HTTP requests are redirected, except the
# probes and the metrics scraper, which talk to the app server directly.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", not DEBUG)

INSTALLED_APPS = [
    "payledger_project.apps.PayLedgerAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "sellers",
    "payments",
    "webhooks",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "payledger_project.second_factor",
    # The audit trail (audit/): change rows written by PostgreSQL triggers.
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "audit",
    "django_structlog",
    "django_prometheus",
    "payledger_project.ops",
]

MIDDLEWARE = [
    # First, so that every response carries X-Request-ID and is logged.
    "django_structlog.middlewares.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the second factor.
    "django_otp.middleware.OTPMiddleware",
    # The audit trail's context for each write: who, which path, which address.
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Prometheus: requests by view, method and status, and their latency
    # (django-prometheus, keeping only those series: ops/metrics.py).
    "payledger_project.ops.metrics.HttpMetricsMiddleware",
]

# The admin's messages live in its session: the default (a signed cookie, then
# the session) builds a cookie signer on every request, API requests included.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "payledger_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "payledger_project.wsgi.application"

# DATABASE_URL says where the database is; production must set it. The
# development and test settings (manage.py's defaults, pytest's), and only they,
# start or join the embedded PostgreSQL in the checkout's .pgdata when it is unset
# (payledger_project/postgresql/embedded.py): an operator's command with these
# settings never lands on it.
EMBEDDED_POSTGRESQL_SETTINGS = {
    "payledger_project.development_settings",
    "payledger_project.test_settings",
}
DATABASE_URL = env.str("DATABASE_URL", "")
if not DATABASE_URL:
    if env.str("DJANGO_SETTINGS_MODULE", "") not in EMBEDDED_POSTGRESQL_SETTINGS:
        raise ImproperlyConfigured(
            "DATABASE_URL must be set with the production settings (payledger_project.settings),"
            " e.g. postgres://user:password@host:5432/payledger; a developer's manage.py without"
            " DJANGO_SETTINGS_MODULE or DEBUG=false uses the embedded PostgreSQL instead."
        )
    from payledger_project.postgresql import embedded

    try:
        DATABASE_URL = embedded.database_url()
    except embedded.EmbeddedPostgresError as error:
        raise ImproperlyConfigured(str(error)) from None

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        # Persistent connections: on PostgreSQL they nearly double charge throughput.
        conn_max_age=env.int("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# A request waits at most this long for a row lock, and runs a statement at
# most this long, then answers 503 try_again with nothing changed. A command
# run through manage.py is an operator's (migrate, verify_ledger, ...) and may
# wait: no limit (0), unless it serves or tests requests.
REQUEST_COMMANDS = {"runserver", "testserver", "test"}
MANAGE_PY_COMMAND = sys.argv[1] if Path(sys.argv[0]).name == "manage.py" and sys.argv[1:] else ""
OPERATOR_COMMAND = bool(MANAGE_PY_COMMAND) and MANAGE_PY_COMMAND not in REQUEST_COMMANDS
PAYLEDGER_LOCK_TIMEOUT_MS = 0 if OPERATOR_COMMAND else env.int("PAYLEDGER_LOCK_TIMEOUT_MS", 5000)
PAYLEDGER_STATEMENT_TIMEOUT_MS = (
    0 if OPERATOR_COMMAND else env.int("PAYLEDGER_STATEMENT_TIMEOUT_MS", 15000)
)
REQUEST_TIMEOUTS = (
    f"-c lock_timeout={PAYLEDGER_LOCK_TIMEOUT_MS}"
    f" -c statement_timeout={PAYLEDGER_STATEMENT_TIMEOUT_MS}"
)
# DATABASE_POOLER=pgbouncer: DATABASE_URL points at PgBouncer in transaction
# pooling mode, where one client's transactions run on whichever server
# connection is free. So no server-side cursors and no prepared statements
# (both outlive a transaction; postgresql/prepared.py), and no startup options
# (PgBouncer refuses them; its connect_query sets the timeouts on each server
# connection instead, see scripts/cluster.sh).
DATABASE_POOLER = env.str("DATABASE_POOLER", "")
if DATABASE_POOLER not in {"", "pgbouncer"}:
    raise ImproperlyConfigured("DATABASE_POOLER must be unset or 'pgbouncer'.")
# PostgreSQL through Django's own backend, with a cheaper health check and
# statements prepared once per connection (payledger_project/postgresql/).
POSTGRESQL_ENGINE = "payledger_project.postgresql"
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must point at PostgreSQL: postgres://user:password@host:5432/payledger."
    )
DATABASES["default"]["ENGINE"] = POSTGRESQL_ENGINE
if DATABASE_POOLER == "pgbouncer":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
else:
    # Sent in the connection's startup packet: no extra round trip per connection.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = REQUEST_TIMEOUTS
# DATABASE_REPLICA_URL: a streaming replica for reads that may lag (see
# payledger_project/db_routing.py); it is never migrated or written.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL,
        conn_max_age=DATABASES["default"]["CONN_MAX_AGE"],
        conn_health_checks=True,
    )
    DATABASES["replica"]["ENGINE"] = POSTGRESQL_ENGINE
    DATABASES["replica"]["OPTIONS"] = {"options": REQUEST_TIMEOUTS}
DATABASE_ROUTERS = ["payledger_project.db_routing.PrimaryReplicaRouter"]

# The cache holds the throttle counters. Without REDIS_URL it is each process's
# memory, fine for one process; behind several gunicorn workers or hosts the
# limits hold only with a shared cache. Short timeouts: when Redis is away the
# throttles let requests through (payledger_project/throttles.py) rather than
# make them wait.
REDIS_URL = env.str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "payledger",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "sellers.authentication.SellerTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["payledger_project.parsers.JSONBodyParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "payledger_project.pagination.PagePagination",
    "EXCEPTION_HANDLER": "payledger_project.exceptions.api_exception_handler",
    # Client addresses for the throttles: see PROXY_COUNT.
    "NUM_PROXIES": PROXY_COUNT,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PayLedger API",
    "DESCRIPTION": (
        "Sellers hold credit, ask staff for more, and sell phone top-ups. Money is an "
        "integer count of the currency's smallest unit. Every error has the shape "
        '{"code", "message", "fields"?}. Authenticate with `Authorization: Token <key>`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Group operations by resource (sellers, credit-requests, ...), not by "api".
    "SCHEMA_PATH_PREFIX": r"/api(/payments)?/",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the installed sidecar package: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "payledger_project.schema.server_errors_add",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "payments.models.CreditRequest.Status",
        "EventTypeEnum": "payments.models.Event.Type",
        "SubscribableEventTypeEnum": "webhooks.serializers.SUBSCRIBABLE_EVENT_TYPE_CHOICES",
        "WebhookEndpointStatusEnum": "webhooks.models.WebhookEndpoint.Status",
    },
}

# Money is an integer count of the currency's smallest unit.
PAYLEDGER_MAX_AMOUNT = env.int("PAYLEDGER_MAX_AMOUNT", 1_000_000_000)
# Region used to read phone numbers written without a leading "+".
PAYLEDGER_PHONE_REGION = env.str("PAYLEDGER_PHONE_REGION", "US")
# The currency money is shown in by the admin, the reports and the CSV export
# (payledger_project/money.py): its ISO 4217 code and the number of decimals
# of its minor unit (2: 7500 is "75.00 USD"). The API keeps integers.
PAYLEDGER_CURRENCY = env.str("PAYLEDGER_CURRENCY", "USD")
PAYLEDGER_CURRENCY_EXPONENT = env.int("PAYLEDGER_CURRENCY_EXPONENT", 2)
if not re.fullmatch(r"[A-Z]{3}", PAYLEDGER_CURRENCY):
    raise ImproperlyConfigured("PAYLEDGER_CURRENCY must be an ISO 4217 code: three capitals.")
if not 0 <= PAYLEDGER_CURRENCY_EXPONENT <= 4:
    raise ImproperlyConfigured("PAYLEDGER_CURRENCY_EXPONENT must be 0 to 4 (decimals).")

if not DEBUG:
    # In production the admin's static files are served by WhiteNoise from
    # STATIC_ROOT (run `manage.py collectstatic`); runserver serves them in DEBUG.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# Logs: JSON lines on stdout in production, readable lines for a developer
# (payledger_project/ops/logs.py). PAYLEDGER_LOG_LEVEL is the lowest level
# written; at INFO that is one line per request and one per money movement.
LOG_FORMAT = env.str("LOG_FORMAT", "console" if DEBUG else "json")
try:
    LOGGING = logging_configure(log_format=LOG_FORMAT, level=env.str("PAYLEDGER_LOG_LEVEL", "INFO"))
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None
# django-structlog: one line per request, when it finishes; no client address
# from ipware, which would believe X-Forwarded-For (ops/request_id.py adds the
# socket's peer instead, and checks X-Request-ID).
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = False

# /metrics answers only "Authorization: Bearer <METRICS_TOKEN>"; unset, it is a 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", "")

# API keys (docs/decisions/0001-api-keys-as-digests.md): each login mints one,
# which expires this many days later (unset or 0: never); a login beyond the
# per-user cap revokes that user's oldest key.
PAYLEDGER_API_KEY_TTL_DAYS = env.int("PAYLEDGER_API_KEY_TTL_DAYS", 0)
PAYLEDGER_API_KEYS_PER_USER = env.int("PAYLEDGER_API_KEYS_PER_USER", 100)
if PAYLEDGER_API_KEY_TTL_DAYS < 0 or PAYLEDGER_API_KEYS_PER_USER < 1:
    raise ImproperlyConfigured(
        "PAYLEDGER_API_KEY_TTL_DAYS must be 0 or more, PAYLEDGER_API_KEYS_PER_USER 1 or more."
    )

# Staff's second factor (docs/security.md): with it on, staff log in to the
# admin with a password and a TOTP code (enrolling an authenticator first, if
# they have none), and approve, reject or reverse through the API only with a
# key minted with a code. On by default; only a developer's machine turns it off.
PAYLEDGER_STAFF_OTP_REQUIRED = env.bool("PAYLEDGER_STAFF_OTP_REQUIRED", not DEBUG)
# The issuer an authenticator app shows beside the account name.
OTP_TOTP_ISSUER = "PayLedger"

# The audit trail (audit/models.py): the admin lists every event, newest
# first, with who acted and from where; GETs write nothing it tracks.
PGHISTORY_ADMIN_MODEL = "audit.AuditEvent"
PGHISTORY_ADMIN_LIST_DISPLAY = [
    "pgh_created_at",
    "pgh_label",
    "pgh_obj_model",
    "pgh_obj_id",
    "user",
    "remote_addr",
    "pgh_diff",
]
PGHISTORY_MIDDLEWARE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# How long a client may replay a request by its Idempotency-Key.
PAYLEDGER_IDEMPOTENCY_TTL = env.int("PAYLEDGER_IDEMPOTENCY_TTL", 24 * 60 * 60)

# Throttle rates ("N/second|minute|hour|day"). The counters live in the
# default cache: set REDIS_URL so the limits hold across workers and hosts.
PAYLEDGER_THROTTLE_RATES = {
    "charge": env.str("PAYLEDGER_CHARGE_RATE", "600/minute"),
    "anon_auth": env.str("PAYLEDGER_ANON_AUTH_RATE", "30/minute"),
    "webhook_test": env.str("PAYLEDGER_WEBHOOK_TEST_RATE", "10/minute"),
}

# Webhooks (see docs/webhooks.md). Loopback and plain-HTTP URLs are refused,
# unless a developer's machine (DEBUG on) lets loopback through for a local
# receiver (`manage.py listen_webhooks`); production refuses to start with the
# switch on, rather than ignore it quietly.
PAYLEDGER_WEBHOOK_TIMEOUT = 10.0
PAYLEDGER_WEBHOOK_RETRY_BASE = 10.0
PAYLEDGER_WEBHOOK_RETRY_CAP = 60.0 * 60
PAYLEDGER_WEBHOOK_RETRY_WINDOW = 24.0 * 60 * 60
PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK = env.bool("PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK", False)
if PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK and not DEBUG:
    raise ImproperlyConfigured(
        "PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK is for a developer's machine: it is honoured only"
        " with DEBUG on; unset it in production."
    )
# After an endpoint's secret is rotated, the previous one signs deliveries too
# for this long, so its receiver can switch without refusing any.
PAYLEDGER_WEBHOOK_SECRET_GRACE_SECONDS = env.int(
    "PAYLEDGER_WEBHOOK_SECRET_GRACE_SECONDS", 24 * 60 * 60
)
# The CA certificates a receiver's certificate must chain to; None: certifi's.
PAYLEDGER_WEBHOOK_CA_BUNDLE = None
# Endpoints one seller may have: each one is sent every event it wants.
PAYLEDGER_WEBHOOK_ENDPOINTS_MAX = env.int("PAYLEDGER_WEBHOOK_ENDPOINTS_MAX", 10)
# Fernet keys that encrypt the endpoints' signing secrets in the database,
# newest first: the newest encrypts, each one decrypts (see webhooks/fields.py
# and `manage.py rotate_webhook_secrets`). In DEBUG, unset, one is derived from
# SECRET_KEY, so a developer's machine needs nothing more.
PAYLEDGER_WEBHOOK_SECRET_KEYS = env.list("PAYLEDGER_WEBHOOK_SECRET_KEYS", default=[])
if not PAYLEDGER_WEBHOOK_SECRET_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PAYLEDGER_WEBHOOK_SECRET_KEYS must be set when DEBUG is off: comma-separated"
            " Fernet keys, newest first; make one with `python -c 'from cryptography.fernet"
            " import Fernet; print(Fernet.generate_key().decode())'`."
        )
    PAYLEDGER_WEBHOOK_SECRET_KEYS = [
        base64.urlsafe_b64encode(
            hashlib.sha256(b"payledger webhook secrets:" + SECRET_KEY.encode()).digest()
        ).decode()
    ]
for _key in PAYLEDGER_WEBHOOK_SECRET_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "PAYLEDGER_WEBHOOK_SECRET_KEYS: each key must be a Fernet key"
            " (32 url-safe base64-encoded bytes)."
        ) from None
