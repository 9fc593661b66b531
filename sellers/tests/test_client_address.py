"""Logins and registrations are limited per client address: an address a caller
cannot forge, whoever the caller is."""

import os
import subprocess
import sys

from django.conf import settings
from django.test import SimpleTestCase, TestCase, override_settings
from django.urls import reverse

from sellers.tests.factories import PASSWORD, client_for, seller_make

THREE_A_MINUTE = {"charge": "3/minute", "anon_auth": "3/minute"}


def rest_framework_with(**overrides) -> dict:
    return {**settings.REST_FRAMEWORK, **overrides}


@override_settings(PAYLEDGER_THROTTLE_RATES=THREE_A_MINUTE)
class ForwardedForTests(TestCase):
    def wrong_password_login(self, **headers):
        return self.client.post(
            reverse("api-token-auth"),
            {"username": "alice", "password": "not-the-password"},
            content_type="application/json",
            **headers,
        )

    def test_forged_forwarded_for_headers_do_not_escape_the_login_limit(self):
        statuses = [
            self.wrong_password_login(HTTP_X_FORWARDED_FOR=f"203.0.113.{number}").status_code
            for number in range(10)
        ]
        self.assertEqual(statuses, [400] * 3 + [429] * 7)

    @override_settings(REST_FRAMEWORK=rest_framework_with(NUM_PROXIES=1))
    def test_behind_one_proxy_each_forwarded_client_has_its_own_limit(self):
        # The proxy appends the address it saw: the last entry is the client.
        statuses = [
            self.wrong_password_login(
                HTTP_X_FORWARDED_FOR=f"198.51.100.7, 203.0.113.{number}"
            ).status_code
            for number in range(10)
        ]
        self.assertEqual(statuses, [400] * 10)

    @override_settings(REST_FRAMEWORK=rest_framework_with(NUM_PROXIES=1))
    def test_behind_one_proxy_a_forged_first_entry_does_not_escape_the_limit(self):
        statuses = [
            self.wrong_password_login(
                HTTP_X_FORWARDED_FOR=f"198.51.100.{number}, 203.0.113.9"
            ).status_code
            for number in range(5)
        ]
        self.assertEqual(statuses, [400] * 3 + [429] * 2)


@override_settings(PAYLEDGER_THROTTLE_RATES=THREE_A_MINUTE)
class AuthenticatedCallerLimitTests(TestCase):
    def test_registrations_sent_with_a_token_are_limited_per_address(self):
        client = client_for(seller_make().user)
        statuses = [
            client.post(
                reverse("seller-list"),
                {"username": f"new{number}", "password": PASSWORD, "name": "New"},
                format="json",
            ).status_code
            for number in range(6)
        ]
        self.assertEqual(statuses, [201] * 3 + [429] * 3)

    def test_logins_sent_with_a_token_are_limited_per_address(self):
        seller = seller_make()
        client = client_for(seller.user)
        credentials = {"username": seller.user.username, "password": PASSWORD}
        statuses = [
            client.post(reverse("api-token-auth"), credentials, format="json").status_code
            for _ in range(5)
        ]
        self.assertEqual(statuses, [200] * 3 + [429] * 2)


PRINT_PROXY_SETTINGS = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.REST_FRAMEWORK['NUM_PROXIES'], "
    "getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
)


def proxy_settings(**environment: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "PROXY_COUNT"}
    env.update(DJANGO_SETTINGS_MODULE="payledger_project.settings", **environment)
    result = subprocess.run(
        [sys.executable, "-c", PRINT_PROXY_SETTINGS],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


class ProxyCountSettingTests(SimpleTestCase):
    def test_by_default_no_forwarding_header_is_trusted(self):
        self.assertEqual(proxy_settings(), "0 None")

    def test_with_one_proxy_its_forwarded_address_and_protocol_are_trusted(self):
        self.assertEqual(proxy_settings(PROXY_COUNT="1"), "1 ('HTTP_X_FORWARDED_PROTO', 'https')")

    def test_with_two_proxies_the_second_address_from_the_right_is_the_client(self):
        self.assertEqual(proxy_settings(PROXY_COUNT="2").split()[0], "2")
