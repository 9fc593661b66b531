"""The approver's day in a real browser: headless Chromium from Debian's packages,
driven by Selenium through Debian's chromedriver (nothing is downloaded).

Each scenario saves a screenshot under artifacts/admin/. The suite skips only
where no Chromium is installed; with Chromium present, a broken page fails.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from selenium.webdriver.common.by import By

from payments.models import CreditRequest, Transaction
from payments.services import credit_request_create, phone_charge_create
from testing.browser import BrowserTestCase, chromium, needs_chromium
from testing.factories import PASSWORD, client_for, seller_make, staff_make

User = get_user_model()


@needs_chromium
class ApproverInTheBrowserTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.seller = seller_make(name="Bob Top-ups", balance=500)
        phone_charge_create(seller_id=self.seller.pk, phone_number="+14155550123", amount=120)
        self.first = credit_request_create(seller=self.seller, amount=250)
        self.second = credit_request_create(seller=self.seller, amount=75)
        self.approver = staff_make()

    def balance(self) -> int:
        self.seller.refresh_from_db()
        return self.seller.balance

    def test_an_approver_approves_from_the_request_page_and_moves_to_the_next(self):
        self.log_in(self.approver)
        self.open(reverse("admin:payments_creditrequest_changelist"))
        self.assertIn("2 pending requests, 3.25 USD in all.", self.page_text())
        self.screenshot("1-pending-list")
        self.click_through(self.browser.find_element(By.LINK_TEXT, str(self.first.pk)))
        page = self.page_text()
        self.assertIn("SELLER'S BALANCE", page.upper())
        self.assertIn("3.80 USD", page)  # the balance after the 120 charge
        self.assertEqual(
            len(self.browser.find_elements(By.CSS_SELECTOR, "table.seller-journal tbody tr")), 2
        )
        self.screenshot("2-request-page")
        self.click_through(self.browser.find_element(By.ID, "approve-button"))
        self.assertIn(f"Approve credit request #{self.first.pk}?", self.page_text())
        self.click_through(self.browser.find_element(By.ID, "confirm-button"))
        page = self.page_text()
        self.screenshot("3-approved-next-request")
        self.assertIn(f"Approved credit request #{self.first.pk}", page)
        self.assertIn(f"Credit request #{self.second.pk}", page)
        self.assertEqual(self.balance(), 380 + 250)
        self.assertEqual(Transaction.objects.filter(credit_request=self.first).count(), 1)

    def test_a_second_approver_with_the_page_still_open_gets_already_decided(self):
        other = chromium()
        self.addCleanup(other.quit)
        self.log_in(self.approver)
        self.log_in(staff_make(), browser=other)
        confirm = reverse("admin:payments_creditrequest_approve", args=[self.first.pk])
        self.open(confirm)
        self.open(confirm, browser=other)
        self.click_through(self.browser.find_element(By.ID, "confirm-button"))
        self.click_through(other.find_element(By.ID, "confirm-button"), other)
        self.screenshot("4-already-decided", browser=other)
        self.assertIn("already been decided", self.page_text(other))
        self.assertEqual(self.balance(), 380 + 250)
        self.assertEqual(Transaction.objects.filter(credit_request=self.first).count(), 1)

    def test_a_rejection_reason_typed_in_the_admin_reaches_the_seller_in_the_api(self):
        self.log_in(self.approver)
        self.open(reverse("admin:payments_creditrequest_change", args=[self.first.pk]))
        self.click_through(self.browser.find_element(By.ID, "reject-button"))
        self.browser.find_element(By.ID, "reason").send_keys("Invoice 12 is unpaid")
        self.screenshot("5-reject-with-reason")
        self.click_through(self.browser.find_element(By.ID, "confirm-button"))
        self.assertIn(f"Rejected credit request #{self.first.pk}", self.page_text())
        answer = client_for(self.seller.user).get(
            reverse("credit-request-detail", args=[self.first.pk])
        )
        self.assertEqual(
            (answer.json()["status"], answer.json()["rejection_reason"]),
            ("rejected", "Invoice 12 is unpaid"),
        )
        self.assertEqual(self.balance(), 380)

    def test_a_viewer_sees_no_buttons_and_is_refused_the_decision_page(self):
        viewer = staff_make(approver=False)
        viewer.user_permissions.add(Permission.objects.get(codename="view_creditrequest"))
        self.log_in(viewer)
        self.open(reverse("admin:payments_creditrequest_change", args=[self.first.pk]))
        self.assertIn("2.50 USD", self.page_text())
        self.assertEqual(self.browser.find_elements(By.ID, "approve-button"), [])
        self.screenshot("6-viewer-read-only")
        self.open(reverse("admin:payments_creditrequest_changelist"))
        self.assertNotIn("Approve selected", self.page_text())
        self.open(reverse("admin:payments_creditrequest_approve", args=[self.first.pk]))
        self.assertIn("permission_denied", self.page_text())
        self.first.refresh_from_db()
        self.assertEqual(self.first.status, CreditRequest.Status.PENDING)

    def test_nobody_finds_an_editable_balance_or_an_add_button_on_the_journal(self):
        self.log_in(User.objects.create_superuser(username="root", password=PASSWORD))
        self.open(reverse("admin:sellers_seller_change", args=[self.seller.pk]))
        self.assertEqual(self.browser.find_elements(By.NAME, "balance"), [])
        self.assertIn("3.80 USD", self.page_text())
        self.screenshot("7-seller-page")
        self.open(reverse("admin:payments_transaction_changelist"))
        self.assertIn("Select transaction to view", self.page_text())
        # The sidebar offers "Add" for users and groups; the journal itself offers none.
        self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "#content a.addlink"), [])
        self.assertNotIn("Add transaction", self.page_text())
        self.screenshot("8-journal")

    def test_staff_who_may_reverse_undo_a_charge_from_its_page_with_a_reason(self):
        reverser = staff_make(approver=False, reverser=True)
        reverser.user_permissions.add(Permission.objects.get(codename="view_phonecharge"))
        charge = self.seller.phone_charges.get()
        self.log_in(reverser)
        self.open(reverse("admin:payments_phonecharge_change", args=[charge.pk]))
        self.assertIn("Not reversed.", self.page_text())
        self.click_through(self.browser.find_element(By.ID, "reverse-button"))
        self.assertIn(f"Reverse charge #{charge.pk}?", self.page_text())
        self.browser.find_element(By.ID, "reason").send_keys("Operator refused the top-up")
        self.screenshot("9-reverse-with-reason")
        self.click_through(self.browser.find_element(By.ID, "confirm-button"))
        page = self.page_text()
        self.screenshot("10-reversed")
        self.assertIn(f"Reversed charge #{charge.pk}: 1.20 USD back to Bob Top-ups", page)
        self.assertIn("Operator refused the top-up", page)
        self.assertEqual(self.browser.find_elements(By.ID, "reverse-button"), [])
        self.assertEqual(self.balance(), 500)
