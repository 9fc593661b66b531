import json
import os
import subprocess
import sys

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.utils import get_random_secret_key
from django.test import SimpleTestCase

PRODUCTION_DATABASE_URL = "postgres://payledger@db.example.com:5432/payledger"
SETUP = "import django; django.setup(); print('started')"
SHOW = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps({{name: getattr(settings, name, None) for name in {names!r}}}))"
)


def start_django(*, code: str = SETUP, **environment: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    # Production needs a DATABASE_URL; settings alone never connect to it.
    env.setdefault("DATABASE_URL", PRODUCTION_DATABASE_URL)
    env.update(DJANGO_SETTINGS_MODULE="payledger_project.settings", **environment)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
    )


class ProductionSettingsTests(SimpleTestCase):
    def test_production_refuses_to_start_without_a_secret_key(self):
        result = start_django(DEBUG="false")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("SECRET_KEY must be set", result.stderr)

    def test_production_passes_the_deployment_checklist_with_no_warnings(self):
        environment = {
            "PATH": os.environ["PATH"],
            "DEBUG": "false",
            "SECRET_KEY": get_random_secret_key(),
            "PAYLEDGER_WEBHOOK_SECRET_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "pay.example.com",
            "DATABASE_URL": PRODUCTION_DATABASE_URL,
        }
        result = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            env=environment,
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("System check identified no issues", result.stdout)

    def test_production_starts_with_a_secret_key(self):
        result = start_django(DEBUG="false", SECRET_KEY="a-real-secret")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("started", result.stdout)

    def test_production_refuses_to_start_without_webhook_secret_keys(self):
        result = start_django(DEBUG="false", SECRET_KEY="s" * 50, PAYLEDGER_WEBHOOK_SECRET_KEYS="")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("PAYLEDGER_WEBHOOK_SECRET_KEYS must be set", result.stderr)

    def test_a_webhook_secret_key_that_is_not_a_fernet_key_is_refused(self):
        result = start_django(
            DEBUG="false",
            SECRET_KEY="s" * 50,
            PAYLEDGER_WEBHOOK_SECRET_KEYS=f"{Fernet.generate_key().decode()},not-a-key",
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("PAYLEDGER_WEBHOOK_SECRET_KEYS", result.stderr)
        self.assertIn("Fernet key", result.stderr)


def production_settings(*names: str, **environment: str) -> dict:
    """The named settings as production computes them from ``environment``."""
    environment = {"DEBUG": "false", "SECRET_KEY": "s" * 50, **environment}
    result = start_django(code=SHOW.format(names=names), **environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class SecuritySettingsTests(SimpleTestCase):
    def test_production_is_https_only_by_default(self):
        values = production_settings(
            "DEBUG",
            "SECURE_SSL_REDIRECT",
            "SECURE_HSTS_SECONDS",
            "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE",
            "DATABASES",
        )
        self.assertIs(values["DEBUG"], False)
        self.assertIs(values["SECURE_SSL_REDIRECT"], True)
        self.assertEqual(values["SECURE_HSTS_SECONDS"], 31_536_000)
        self.assertIs(values["SESSION_COOKIE_SECURE"], True)
        self.assertIs(values["CSRF_COOKIE_SECURE"], True)
        self.assertEqual(values["DATABASES"]["default"]["CONN_MAX_AGE"], 60)

    def test_debug_is_what_a_developer_opts_into(self):
        values = production_settings(
            "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", DEBUG="true"
        )
        self.assertEqual(
            values, {"DEBUG": True, "SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 0}
        )

    def test_csrf_trusts_the_https_origin_of_each_allowed_host_and_the_extra_ones(self):
        values = production_settings(
            "CSRF_TRUSTED_ORIGINS",
            ALLOWED_HOSTS="pay.example.com,.example.org",
            CSRF_TRUSTED_ORIGINS="https://ops.example.net",
        )
        self.assertEqual(
            values["CSRF_TRUSTED_ORIGINS"],
            ["https://pay.example.com", "https://*.example.org", "https://ops.example.net"],
        )


class WebhookSecretKeySettingsTests(SimpleTestCase):
    def test_the_keys_are_read_newest_first(self):
        newest, older = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        values = production_settings(
            "PAYLEDGER_WEBHOOK_SECRET_KEYS", PAYLEDGER_WEBHOOK_SECRET_KEYS=f"{newest}, {older}"
        )
        self.assertEqual(values["PAYLEDGER_WEBHOOK_SECRET_KEYS"], [newest, older])

    def test_debug_without_keys_derives_one_from_the_secret_key(self):
        def derived(secret_key: str) -> list[str]:
            return production_settings(
                "PAYLEDGER_WEBHOOK_SECRET_KEYS",
                DEBUG="true",
                SECRET_KEY=secret_key,
                PAYLEDGER_WEBHOOK_SECRET_KEYS="",
            )["PAYLEDGER_WEBHOOK_SECRET_KEYS"]

        [key] = derived("a" * 50)
        Fernet(key)  # a valid key
        self.assertEqual(derived("a" * 50), [key])
        self.assertNotEqual(derived("b" * 50), [key])


class ProxySettingsTests(SimpleTestCase):
    def test_no_forwarding_header_is_trusted_by_default(self):
        values = production_settings("REST_FRAMEWORK", "SECURE_PROXY_SSL_HEADER")
        self.assertEqual(values["REST_FRAMEWORK"]["NUM_PROXIES"], 0)
        self.assertIsNone(values["SECURE_PROXY_SSL_HEADER"])

    def test_one_proxy_means_the_last_forwarded_address_and_its_proto_are_trusted(self):
        values = production_settings("REST_FRAMEWORK", "SECURE_PROXY_SSL_HEADER", PROXY_COUNT="1")
        self.assertEqual(values["REST_FRAMEWORK"]["NUM_PROXIES"], 1)
        self.assertEqual(values["SECURE_PROXY_SSL_HEADER"], ["HTTP_X_FORWARDED_PROTO", "https"])


class ApiKeySettingsTests(SimpleTestCase):
    NAMES = ("PAYLEDGER_API_KEY_TTL_DAYS", "PAYLEDGER_API_KEYS_PER_USER")

    def test_keys_never_expire_and_a_user_holds_up_to_100_by_default(self):
        self.assertEqual(list(production_settings(*self.NAMES).values()), [0, 100])

    def test_the_ttl_and_the_cap_come_from_the_environment(self):
        values = production_settings(
            *self.NAMES, PAYLEDGER_API_KEY_TTL_DAYS="30", PAYLEDGER_API_KEYS_PER_USER="5"
        )
        self.assertEqual(list(values.values()), [30, 5])

    def test_a_negative_ttl_or_a_cap_below_one_refuses_to_start(self):
        for name, value in [
            ("PAYLEDGER_API_KEY_TTL_DAYS", "-1"),
            ("PAYLEDGER_API_KEYS_PER_USER", "0"),
        ]:
            with self.subTest(name):
                result = start_django(DEBUG="false", SECRET_KEY="s" * 50, **{name: value})
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(name, result.stderr)


class CurrencySettingsTests(SimpleTestCase):
    NAMES = ("PAYLEDGER_CURRENCY", "PAYLEDGER_CURRENCY_EXPONENT")

    def test_money_is_shown_in_usd_with_two_decimals_by_default(self):
        self.assertEqual(list(production_settings(*self.NAMES).values()), ["USD", 2])

    def test_the_currency_and_its_exponent_come_from_the_environment(self):
        values = production_settings(
            *self.NAMES, PAYLEDGER_CURRENCY="JPY", PAYLEDGER_CURRENCY_EXPONENT="0"
        )
        self.assertEqual(list(values.values()), ["JPY", 0])

    def test_a_currency_that_is_not_an_iso_code_or_an_exponent_past_4_refuses_to_start(self):
        for name, value in [("PAYLEDGER_CURRENCY", "usd"), ("PAYLEDGER_CURRENCY_EXPONENT", "5")]:
            with self.subTest(name):
                result = start_django(DEBUG="false", SECRET_KEY="s" * 50, **{name: value})
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(name, result.stderr)


class WebhookLoopbackSettingsTests(SimpleTestCase):
    """PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK: a developer's switch, refused in production."""

    def test_production_refuses_loopback_webhooks_by_default(self):
        values = production_settings("PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK")
        self.assertEqual(values, {"PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK": False})

    def test_production_refuses_to_start_with_the_switch_on(self):
        result = start_django(
            DEBUG="false", SECRET_KEY="s" * 50, PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK="true"
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK", result.stderr)
        self.assertIn("only with DEBUG on", result.stderr)

    def test_with_debug_on_the_switch_lets_loopback_through(self):
        values = production_settings(
            "PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK",
            DEBUG="true",
            PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK="true",
        )
        self.assertEqual(values, {"PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK": True})

    def test_the_development_settings_turn_it_on_unless_told_not(self):
        def development(switch: str | None) -> bool:
            # The suite's own settings set the switch off in this process's environment.
            set_switch = (
                f"os.environ['PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK'] = {switch!r}; "
                if switch is not None
                else "os.environ.pop('PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK', None); "
            )
            code = (
                "import os; "
                + set_switch
                + "os.environ['DJANGO_SETTINGS_MODULE'] = "
                + "'payledger_project.development_settings'; "
                + SHOW.format(names=("PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK",))
            )
            result = start_django(code=code, DEBUG="true")
            self.assertEqual(result.returncode, 0, result.stderr)
            return json.loads(result.stdout)["PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK"]

        self.assertIs(development(switch=None), True)
        self.assertIs(development(switch="false"), False)
