"""The admin's login shares the API's login limit: per client address and per
username, counted in the shared cache, checked before any password is."""

from unittest import mock

from django.contrib.auth import SESSION_KEY, forms
from django.test import TestCase, override_settings
from django.urls import reverse

from testing.factories import PASSWORD, staff_make

THIRTY_A_MINUTE = {"charge": "1000000/minute", "anon_auth": "30/minute"}
TWO_A_MINUTE = {"charge": "1000000/minute", "anon_auth": "2/minute"}


class AdminLoginLimitTests(TestCase):
    def setUp(self):
        self.staff = staff_make()

    def log_in(self, password: str = PASSWORD, username: str = "", address: str = "127.0.0.1"):
        return self.client.post(
            reverse("admin:login"),
            {"username": username or self.staff.username, "password": password},
            REMOTE_ADDR=address,
        )

    def logged_in(self) -> bool:
        return SESSION_KEY in self.client.session

    @override_settings(PAYLEDGER_THROTTLE_RATES=THIRTY_A_MINUTE)
    def test_sixty_wrong_passwords_then_the_right_one_is_refused(self):
        statuses = [self.log_in(password=f"guess-{n}").status_code for n in range(60)]
        self.assertEqual(statuses, [200] * 30 + [429] * 30)
        self.assertEqual(self.log_in().status_code, 429)
        self.assertFalse(self.logged_in())

    @override_settings(PAYLEDGER_THROTTLE_RATES=TWO_A_MINUTE)
    def test_a_limited_login_says_so_and_when_to_try_again(self):
        for _ in range(2):
            self.log_in(password="wrong")
        response = self.log_in()
        self.assertContains(response, "Too many login attempts", status_code=429)
        self.assertGreater(int(response["Retry-After"]), 0)

    @override_settings(PAYLEDGER_THROTTLE_RATES=TWO_A_MINUTE)
    def test_a_limited_login_does_not_check_the_password(self):
        for _ in range(2):
            self.log_in(password="wrong")
        with mock.patch.object(forms, "authenticate", wraps=forms.authenticate) as authenticate:
            self.log_in()
        authenticate.assert_not_called()

    @override_settings(PAYLEDGER_THROTTLE_RATES=TWO_A_MINUTE)
    def test_guesses_at_one_username_from_many_addresses_are_limited(self):
        statuses = [
            self.log_in(password="wrong", address=f"198.51.100.{n}").status_code for n in range(2)
        ]
        refused = self.log_in(address="198.51.100.99")
        self.assertEqual(statuses + [refused.status_code], [200, 200, 429])
        self.assertFalse(self.logged_in())

    @override_settings(PAYLEDGER_THROTTLE_RATES=TWO_A_MINUTE)
    def test_guesses_from_one_address_at_many_usernames_are_limited(self):
        for n in range(2):
            self.log_in(username=f"nobody{n}", password="wrong")
        self.assertEqual(self.log_in().status_code, 429)
        self.assertFalse(self.logged_in())

    @override_settings(PAYLEDGER_THROTTLE_RATES=TWO_A_MINUTE)
    def test_api_and_admin_logins_count_against_one_limit(self):
        credentials = {"username": self.staff.username, "password": "wrong"}
        for _ in range(2):
            self.client.post(
                reverse("api-token-auth"), credentials, content_type="application/json"
            )
        self.assertEqual(self.log_in().status_code, 429)

    @override_settings(PAYLEDGER_THROTTLE_RATES=TWO_A_MINUTE)
    def test_viewing_the_login_page_is_not_an_attempt(self):
        for _ in range(3):
            self.client.get(reverse("admin:login"))
        response = self.log_in()
        self.assertEqual(response.status_code, 302)
        self.assertTrue(self.logged_in())
