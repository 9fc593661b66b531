"""Staff's second factor in a real browser (headless Chromium): a new staff member
enrols an authenticator from the page, then logs in with a code an authenticator
computes from the secret the page showed."""

import time

import pyotp
from django.urls import reverse
from selenium.webdriver.common.by import By

from testing.browser import BrowserTestCase, needs_chromium
from testing.factories import staff_make


@needs_chromium
class EnrolmentInTheBrowserTests(BrowserTestCase):
    def test_a_new_staff_member_enrols_an_authenticator_then_logs_in_with_its_code(self):
        newcomer = staff_make()
        self.log_in_with(newcomer, "")
        self.assertIn("Set up your authenticator", self.page_text())
        self.screenshot("enrol-1-qr-code")
        self.assertTrue(self.browser.find_element(By.ID, "qr-code").is_displayed())
        # What the staff member's phone does with the secret it scanned.
        authenticator = pyotp.TOTP(self.browser.find_element(By.ID, "otp-secret").text)
        self.browser.find_element(By.NAME, "otp_code").send_keys(authenticator.now())
        self.click_through(self.browser.find_element(By.ID, "confirm-button"))
        codes = self.browser.find_elements(By.CSS_SELECTOR, "#recovery-codes li")
        self.assertEqual(len(codes), 10)
        self.screenshot("enrol-2-recovery-codes")
        self.click_through(self.browser.find_element(By.ID, "continue-link"))
        self.assertIn("Site administration", self.page_text())

        # Another session. The code just used at enrolment logs in once, so the
        # next 30 seconds' code, which the server's tolerance of one step accepts.
        self.browser.delete_all_cookies()
        next_code = authenticator.at(int(time.time()) + authenticator.interval)
        self.log_in_with(newcomer, next_code)
        self.assertIn("Site administration", self.page_text())
        self.open(reverse("admin:payments_creditrequest_changelist"))
        self.assertIn("Credit requests", self.page_text())

    def test_the_admin_login_without_a_valid_code_fails(self):
        staff = staff_make()
        self.log_in(staff)
        self.browser.delete_all_cookies()
        for code in ("", "not-a-code"):
            with self.subTest(code=code):
                self.log_in_with(staff, code)
                self.assertIn("Enter a valid code", self.page_text())
                self.open(reverse("admin:index"))
                self.assertIn(reverse("admin:login"), self.browser.current_url)
        self.screenshot("enrol-3-no-valid-code")
