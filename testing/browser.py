"""The admin in a real browser: headless Chromium from Debian's packages, driven by
Selenium through Debian's chromedriver (nothing is downloaded).

Test classes using it skip only where no Chromium is installed (``needs_chromium``);
with Chromium present, a broken page fails. Screenshots go under artifacts/admin/.
"""

import shutil
import tempfile
from pathlib import Path
from unittest import skipUnless

from django.conf import settings
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings, tag
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from testing.factories import PASSWORD, authenticator_make, otp_code

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - selenium is in requirements.txt
    webdriver = None

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "admin"

needs_chromium = skipUnless(
    webdriver and CHROMIUM and CHROMEDRIVER,
    "no Chromium: apt-get install chromium chromium-driver (.ci/run does)",
)


def chromium() -> "webdriver.Chrome":
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
        f"--user-data-dir={tempfile.mkdtemp(prefix='payledger-chromium-')}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@tag("long")
@override_settings(PAYLEDGER_STAFF_OTP_REQUIRED=True)
class BrowserTestCase(StaticLiveServerTestCase):
    """One Chromium per class, on the live server; helpers to log in and click.
    Staff log in with a second factor, as in production."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        cls.browser = chromium()
        cls.addClassCleanup(cls.browser.quit)

    def setUp(self):
        self.browser.delete_all_cookies()

    def open(self, path: str, browser=None) -> None:
        (browser or self.browser).get(f"{self.live_server_url}{path}")

    def log_in(self, user, browser=None) -> None:
        """Log ``user`` in with the password and a code from its authenticator
        (one is made if it has none)."""
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        self.log_in_with(user, otp_code(device or authenticator_make(user)), browser)

    def log_in_with(self, user, code: str, browser=None) -> None:
        """Submit the admin's login form: ``user``'s password and ``code``."""
        browser = browser or self.browser
        self.open(reverse("admin:login"), browser)
        browser.find_element(By.NAME, "username").send_keys(user.username)
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.NAME, "otp_code").send_keys(code)
        self.click_through(browser.find_element(By.CSS_SELECTOR, "input[type=submit]"), browser)

    def click_through(self, element, browser=None) -> None:
        """Click a link or button and wait until the page it leads to has replaced this
        one, so nothing is read from a page on its way out."""
        browser = browser or self.browser
        leaving = browser.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(browser, 30).until(staleness_of(leaving))

    def page_text(self, browser=None) -> str:
        return (browser or self.browser).find_element(By.TAG_NAME, "body").text

    def screenshot(self, name: str, browser=None) -> None:
        (browser or self.browser).save_screenshot(str(SCREENSHOTS / f"{name}.png"))
