"""Staff's second factor (PAYLEDGER_STAFF_OTP_REQUIRED): the admin asks staff
for a code from their authenticator, sends staff without one to enrol, and the
API lets staff move money only with a key minted with a code."""

import json

from django.contrib.auth import SESSION_KEY
from django.test import SimpleTestCase, TestCase, override_settings
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from payledger_project.tests.test_settings import SHOW, start_django
from payments.models import CreditRequest, Transaction
from payments.services import credit_request_create, phone_charge_create
from sellers.models import ApiKey
from testing.factories import (
    PASSWORD,
    api_key_make,
    authenticator_make,
    client_for,
    otp_code,
    seller_make,
    staff_make,
)
from testing.keyed_requests import charge


def another_code(code: str) -> str:
    """A six-digit code that is not ``code``."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


class SecondFactorSettingTests(SimpleTestCase):
    def setting(self, **environment) -> bool:
        code = SHOW.format(names=["PAYLEDGER_STAFF_OTP_REQUIRED"])
        result = start_django(code=code, SECRET_KEY="a-real-secret", **environment)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)["PAYLEDGER_STAFF_OTP_REQUIRED"]

    def test_production_requires_the_second_factor_by_default(self):
        self.assertIs(self.setting(DEBUG="false"), True)

    def test_a_developer_machine_does_not_by_default(self):
        self.assertIs(self.setting(DEBUG="true"), False)

    def test_the_setting_turns_it_off_in_production(self):
        self.assertIs(self.setting(DEBUG="false", PAYLEDGER_STAFF_OTP_REQUIRED="false"), False)


@override_settings(PAYLEDGER_STAFF_OTP_REQUIRED=True)
class AdminLoginWithSecondFactorTests(TestCase):
    def setUp(self):
        self.staff = staff_make()
        self.device = authenticator_make(self.staff)

    def log_in(self, code: str = "", password: str = PASSWORD):
        return self.client.post(
            reverse("admin:login") + "?next=/admin/",
            {"username": self.staff.username, "password": password, "otp_code": code},
        )

    def logged_in(self) -> bool:
        return SESSION_KEY in self.client.session

    def test_the_login_page_asks_for_a_code(self):
        self.assertContains(self.client.get(reverse("admin:login")), 'name="otp_code"')

    def test_the_password_without_a_code_does_not_log_in(self):
        response = self.log_in()
        self.assertContains(response, "Enter a valid code")
        self.assertFalse(self.logged_in())

    def test_a_wrong_code_does_not_log_in(self):
        response = self.log_in(code=another_code(otp_code(self.device)))
        self.assertContains(response, "Enter a valid code")
        self.assertFalse(self.logged_in())

    def test_the_right_code_with_a_wrong_password_does_not_log_in(self):
        self.log_in(code=otp_code(self.device), password="wrong")
        self.assertFalse(self.logged_in())

    def test_the_right_code_logs_in_and_opens_the_admin(self):
        response = self.log_in(code=otp_code(self.device))
        self.assertRedirects(response, "/admin/", fetch_redirect_response=False)
        self.assertEqual(self.client.get(reverse("admin:index")).status_code, 200)

    def test_a_code_logs_in_only_once(self):
        code = otp_code(self.device)
        self.log_in(code=code)
        self.client.logout()
        self.log_in(code=code)
        self.assertFalse(self.logged_in())

    def test_a_recovery_code_logs_in_once(self):
        recovery = self.staff.staticdevice_set.create(name="Recovery codes")
        recovery.token_set.create(token="abcd2345efgh")
        self.log_in(code="abcd2345efgh")
        self.assertTrue(self.logged_in())
        self.client.logout()
        self.log_in(code="abcd2345efgh")
        self.assertFalse(self.logged_in())
        self.assertFalse(StaticToken.objects.filter(token="abcd2345efgh").exists())

    def test_a_session_without_the_code_is_sent_to_log_in(self):
        self.client.force_login(self.staff)
        response = self.client.get(reverse("admin:index"))
        self.assertRedirects(
            response, reverse("admin:login") + "?next=/admin/", fetch_redirect_response=False
        )

    @override_settings(PAYLEDGER_STAFF_OTP_REQUIRED=False)
    def test_with_the_requirement_off_the_password_alone_logs_in(self):
        self.log_in()
        self.assertTrue(self.logged_in())
        self.assertEqual(self.client.get(reverse("admin:index")).status_code, 200)


@override_settings(PAYLEDGER_STAFF_OTP_REQUIRED=True)
class EnrolmentTests(TestCase):
    def setUp(self):
        self.staff = staff_make()
        self.client.post(
            reverse("admin:login"), {"username": self.staff.username, "password": PASSWORD}
        )

    def enrolment_device(self) -> TOTPDevice:
        return TOTPDevice.objects.get(user=self.staff)

    def test_staff_without_an_authenticator_log_in_with_the_password(self):
        self.assertIn(SESSION_KEY, self.client.session)

    def test_every_admin_page_sends_them_to_enrol_first(self):
        for page in (
            reverse("admin:index"),
            reverse("admin:payments_creditrequest_changelist"),
            reverse("admin:password_change"),
        ):
            with self.subTest(page):
                response = self.client.get(page)
                self.assertRedirects(
                    response, reverse("admin:second_factor_enrol"), fetch_redirect_response=False
                )

    def test_the_enrolment_page_shows_a_qr_code_and_the_secret(self):
        response = self.client.get(reverse("admin:second_factor_enrol"))
        self.assertContains(response, 'src="data:image/svg+xml')
        secret = response.context["secret"]
        self.assertContains(response, secret)
        self.assertEqual(self.enrolment_device().confirmed, False)

    def test_reloading_the_enrolment_page_keeps_the_secret(self):
        first = self.client.get(reverse("admin:second_factor_enrol")).context["secret"]
        again = self.client.get(reverse("admin:second_factor_enrol")).context["secret"]
        self.assertEqual(first, again)

    def test_a_wrong_code_enrols_nothing(self):
        self.client.get(reverse("admin:second_factor_enrol"))
        wrong = another_code(otp_code(self.enrolment_device()))
        response = self.client.post(reverse("admin:second_factor_enrol"), {"otp_code": wrong})
        self.assertContains(response, "not the one your authenticator shows")
        self.assertFalse(self.enrolment_device().confirmed)
        self.assertEqual(self.client.get(reverse("admin:index")).status_code, 302)

    def test_the_right_code_enrols_shows_recovery_codes_once_and_opens_the_admin(self):
        self.client.get(reverse("admin:second_factor_enrol"))
        response = self.client.post(
            reverse("admin:second_factor_enrol"), {"otp_code": otp_code(self.enrolment_device())}
        )
        codes = response.context["codes"]
        self.assertEqual(len(codes), 10)
        for code in codes:
            self.assertContains(response, code)
        self.assertTrue(self.enrolment_device().confirmed)
        self.assertEqual(self.client.get(reverse("admin:index")).status_code, 200)
        again = self.client.get(reverse("admin:second_factor_enrol"))
        self.assertRedirects(again, reverse("admin:index"), fetch_redirect_response=False)

    def test_logging_out_needs_no_enrolment(self):
        response = self.client.post(reverse("admin:logout"))
        self.assertEqual(response.status_code, 200)
        self.assertNotIn(SESSION_KEY, self.client.session)


@override_settings(PAYLEDGER_STAFF_OTP_REQUIRED=True)
class StaffApiKeysTests(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.credit_request = credit_request_create(seller=self.seller, amount=250)
        self.staff = staff_make(reverser=True)
        self.device = authenticator_make(self.staff)

    def api_log_in(self, **extra) -> APIClient:
        response = APIClient().post(
            reverse("api-token-auth"),
            {"username": self.staff.username, "password": PASSWORD, **extra},
            format="json",
        )
        self.assertEqual(response.status_code, 200, response.content)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
        return client

    def approve(self, client: APIClient):
        return client.post(
            reverse("credit-request-approve", args=[self.credit_request.pk]), format="json"
        )

    def assert_nothing_approved(self) -> None:
        self.credit_request.refresh_from_db()
        self.assertEqual(self.credit_request.status, CreditRequest.Status.PENDING)
        self.assertFalse(Transaction.objects.filter(credit_request=self.credit_request).exists())

    def test_a_key_minted_without_a_code_cannot_approve(self):
        response = self.approve(self.api_log_in())
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json()["code"], "second_factor_required")
        self.assert_nothing_approved()

    def test_a_key_minted_before_enrolment_cannot_approve(self):
        response = self.approve(client_for(self.staff))
        self.assertEqual(response.json()["code"], "second_factor_required")
        self.assert_nothing_approved()

    def test_a_key_minted_with_a_code_approves(self):
        response = self.approve(self.api_log_in(otp_code=otp_code(self.device)))
        self.assertEqual(response.status_code, 200, response.content)
        self.credit_request.refresh_from_db()
        self.assertEqual(self.credit_request.status, CreditRequest.Status.APPROVED)

    def test_a_key_minted_without_a_code_cannot_reverse(self):
        charge = phone_charge_create(
            seller_id=self.seller.pk, phone_number="+14155550123", amount=5
        )
        response = self.api_log_in().post(
            reverse("phone-charges-reverse", args=[charge.pk]), {"reason": "x"}, format="json"
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json()["code"], "second_factor_required")

    def test_a_key_minted_without_a_code_still_reads(self):
        response = self.api_log_in().get(reverse("credit-request-list"))
        self.assertEqual(response.status_code, 200)

    def test_a_wrong_code_at_login_mints_no_key(self):
        response = APIClient().post(
            reverse("api-token-auth"),
            {
                "username": self.staff.username,
                "password": PASSWORD,
                "otp_code": another_code(otp_code(self.device)),
            },
            format="json",
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("otp_code", response.json()["fields"])
        self.assertFalse(ApiKey.objects.filter(user=self.staff).exists())

    def test_sellers_are_not_asked_for_a_code(self):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_make(self.seller.user)}")
        response = charge(client, key="second-factor-not-asked", amount=5)
        self.assertEqual(response.status_code, 201, response.content)

    @override_settings(PAYLEDGER_STAFF_OTP_REQUIRED=False)
    def test_with_the_requirement_off_any_staff_key_approves(self):
        self.assertEqual(self.approve(client_for(self.staff)).status_code, 200)
