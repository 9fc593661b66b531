"""No test inherits another's throttle counters, whatever order the tests run in."""

from django.test import TestCase, override_settings
from django.urls import reverse

from testing.factories import PASSWORD, seller_make

ONE_LOGIN_A_MINUTE = {"charge": "1/minute", "anon_auth": "1/minute"}


@override_settings(PAYLEDGER_THROTTLE_RATES=ONE_LOGIN_A_MINUTE)
class ThrottleStateIsolationTests(TestCase):
    # Both tests log in from the test client's one address; run in either order,
    # each must see a fresh counter.
    def log_in(self):
        seller = seller_make()
        return self.client.post(
            reverse("api-token-auth"),
            {"username": seller.user.username, "password": PASSWORD},
            content_type="application/json",
        )

    def test_a_login_past_the_limit_is_throttled(self):
        self.assertEqual(self.log_in().status_code, 200)
        self.assertEqual(self.log_in().status_code, 429)

    def test_the_first_login_of_a_test_is_not_throttled(self):
        self.assertEqual(self.log_in().status_code, 200)
