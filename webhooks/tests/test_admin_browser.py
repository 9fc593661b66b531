"""The admin's "Send a test event" action in a real browser (testing/browser.py)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from payments.models import Event
from testing.browser import BrowserTestCase, needs_chromium
from testing.factories import PASSWORD, seller_make
from webhooks.services import webhook_endpoint_create

User = get_user_model()


@needs_chromium
class SendTestEventInTheBrowserTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.endpoint = webhook_endpoint_create(
            seller=seller_make(name="Alice Shop"),
            url="http://127.0.0.1:8400/alice",
            event_types=["phone_charge.created"],
        )
        self.support = User.objects.create_user(
            username="support", password=PASSWORD, is_staff=True
        )
        for codename in ("view_webhookendpoint", "change_webhookendpoint"):
            self.support.user_permissions.add(Permission.objects.get(codename=codename))

    def test_staff_select_an_endpoint_and_send_it_a_test_event(self):
        self.log_in(self.support)
        self.open(reverse("admin:webhooks_webhookendpoint_changelist"))
        self.browser.find_element(By.CSS_SELECTOR, "input.action-select").click()
        Select(self.browser.find_element(By.NAME, "action")).select_by_value("send_test_event")
        self.click_through(self.browser.find_element(By.NAME, "index"))
        self.screenshot("webhook-test-event-sent")
        event = Event.objects.get(type=Event.Type.WEBHOOK_TEST)
        self.assertEqual(event.payload, {"endpoint": self.endpoint.pk})
        self.assertIn(f"Event #{event.pk} (webhook.test) queued", self.page_text())
        self.assertNotIn(self.endpoint.secret, self.browser.page_source)
