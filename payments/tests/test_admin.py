"""The admin: staff read every money table and decide credit requests through
the services; no balance, charge or journal row can be written by hand."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from payments.exceptions import OwnSellerForbidden
from payments.models import CreditRequest, PhoneAccount, Transaction
from payments.selectors import ledger_problems
from payments.services import credit_request_create, phone_charge_create
from sellers.admin import SellerAdmin
from testing.assertions import books
from testing.factories import PASSWORD, seller_make, staff_make, staff_powers_give

User = get_user_model()
PHONE = "+14155550123"
OTHER_PHONE = "+14155550199"


def admin_url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


class AdminTestCase(TestCase):
    """Two sellers with money, charges to two phones and one pending request."""

    def assertFormErrorShown(self, response, message: str) -> None:
        """The page came back (200) with the admin's error note and ``message`` listed."""
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Please correct the error below.")
        self.assertContains(response, f'<ul class="errorlist"><li>{message}</li></ul>', html=True)

    @classmethod
    def setUpTestData(cls):
        cls.admin = User.objects.create_superuser(username="root", password=PASSWORD)
        cls.alice = seller_make(name="Alice", balance=1_000)
        cls.bob = seller_make(name="Bob", balance=500)
        cls.charge = phone_charge_create(seller_id=cls.alice.pk, phone_number=PHONE, amount=300)
        cls.other_charge = phone_charge_create(
            seller_id=cls.bob.pk, phone_number=OTHER_PHONE, amount=100
        )
        cls.pending = credit_request_create(seller=cls.bob, amount=250)

    def setUp(self):
        self.client.force_login(self.admin)

    def changelist(self, model_name: str, query: dict | None = None):
        response = self.client.get(admin_url(f"{model_name}_changelist"), query or {})
        self.assertEqual(response.status_code, 200)
        return response

    def listed(self, model_name: str, query: dict | None = None) -> set:
        return {row.pk for row in self.changelist(model_name, query).context["cl"].result_list}

    def offered_actions(self, model_name: str) -> set[str]:
        action_form = self.changelist(model_name).context["action_form"]
        if action_form is None:
            return set()
        return {name for name, _ in action_form.fields["action"].choices if name}

    def assertDeletePageRefused(self, model_name: str, pk: int):
        """The delete page answers 403 to a look and to a confirmation; nothing goes."""
        before = books()
        url = admin_url(f"{model_name}_delete", pk)
        self.assertEqual(self.client.get(url).status_code, 403)
        self.assertEqual(self.client.post(url, {"post": "yes"}).status_code, 403)
        self.assertEqual(books(), before)

    def messages_of(self, response) -> list[tuple[int, str]]:
        return [(message.level, message.message) for message in get_messages(response.wsgi_request)]

    def run_action(self, action: str, *credit_requests: CreditRequest):
        return self.client.post(
            admin_url("payments_creditrequest_changelist"),
            {
                "action": action,
                "index": 0,
                "_selected_action": [credit_request.pk for credit_request in credit_requests],
            },
        )


class ChangelistTests(AdminTestCase):
    def test_sellers_changelist_lists_every_seller(self):
        self.assertEqual(self.listed("sellers_seller"), {self.alice.pk, self.bob.pk})

    def test_sellers_changelist_shows_each_balance_in_the_currency(self):
        response = self.changelist("sellers_seller")
        self.assertContains(response, '<td class="field-balance_shown">7.00 USD</td>', html=True)
        self.assertContains(response, '<td class="field-balance_shown">4.00 USD</td>', html=True)

    def test_credit_requests_changelist_opens_on_pending_requests(self):
        self.assertEqual(self.listed("payments_creditrequest"), {self.pending.pk})

    def test_credit_requests_changelist_lists_every_request_under_all(self):
        self.assertEqual(
            self.listed("payments_creditrequest", {"status": "all"}),
            set(CreditRequest.objects.values_list("pk", flat=True)),
        )
        self.assertEqual(CreditRequest.objects.count(), 3)

    def test_phone_accounts_changelist_lists_every_account(self):
        self.assertEqual(
            self.listed("payments_phoneaccount"),
            set(PhoneAccount.objects.values_list("pk", flat=True)),
        )
        self.assertEqual(PhoneAccount.objects.count(), 2)

    def test_phone_charges_changelist_lists_every_charge(self):
        self.assertEqual(
            self.listed("payments_phonecharge"), {self.charge.pk, self.other_charge.pk}
        )

    def test_transactions_changelist_lists_every_journal_row(self):
        self.assertEqual(
            self.listed("payments_transaction"),
            set(Transaction.objects.values_list("pk", flat=True)),
        )
        self.assertEqual(Transaction.objects.count(), 4)

    def queries_to_list(self, model_name: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            self.changelist(model_name)
        return len(queries)

    def test_changelist_queries_do_not_grow_with_the_number_of_rows(self):
        model_names = [
            "sellers_seller",
            "payments_creditrequest",
            "payments_phoneaccount",
            "payments_phonecharge",
            "payments_transaction",
        ]
        before = {name: self.queries_to_list(name) for name in model_names}
        for number in range(5):
            seller = seller_make(balance=100)
            phone_charge_create(
                seller_id=seller.pk, phone_number=f"+1415555{number:04d}", amount=10
            )
            credit_request_create(seller=seller, amount=5)
        after = {name: self.queries_to_list(name) for name in model_names}
        self.assertEqual(after, before)


class SearchAndFilterTests(AdminTestCase):
    def test_seller_search_by_name_finds_only_that_seller(self):
        self.assertEqual(self.listed("sellers_seller", {"q": "Alice"}), {self.alice.pk})

    def test_seller_search_by_username_finds_only_that_seller(self):
        self.assertEqual(
            self.listed("sellers_seller", {"q": self.bob.user.username}), {self.bob.pk}
        )

    def test_credit_request_search_by_seller_name_finds_only_their_requests(self):
        self.assertEqual(
            self.listed("payments_creditrequest", {"q": "Alice", "status": "all"}),
            set(self.alice.credit_requests.values_list("pk", flat=True)),
        )

    def test_phone_account_search_by_number_finds_only_that_phone(self):
        self.assertEqual(
            self.listed("payments_phoneaccount", {"q": OTHER_PHONE}),
            {PhoneAccount.objects.get(phone_number=OTHER_PHONE).pk},
        )

    def test_phone_charge_search_by_number_finds_only_charges_to_that_phone(self):
        self.assertEqual(self.listed("payments_phonecharge", {"q": PHONE}), {self.charge.pk})

    def test_phone_charge_search_by_seller_name_finds_only_their_charges(self):
        self.assertEqual(self.listed("payments_phonecharge", {"q": "Bob"}), {self.other_charge.pk})

    def test_transaction_search_by_seller_username_finds_only_their_rows(self):
        self.assertEqual(
            self.listed("payments_transaction", {"q": self.alice.user.username}),
            set(self.alice.transactions.values_list("pk", flat=True)),
        )

    def test_credit_request_status_filter_shows_only_pending_requests(self):
        self.assertEqual(
            self.listed("payments_creditrequest", {"status": "pending"}),
            {self.pending.pk},
        )

    def test_credit_request_status_filter_shows_only_approved_requests(self):
        approved = self.listed("payments_creditrequest", {"status": "approved"})
        self.assertEqual(
            approved,
            set(CreditRequest.objects.filter(status="approved").values_list("pk", flat=True)),
        )
        self.assertNotIn(self.pending.pk, approved)

    def test_transaction_kind_filter_shows_only_charges(self):
        self.assertEqual(
            self.listed("payments_transaction", {"kind__exact": "charge"}),
            {self.charge.transaction.pk, self.other_charge.transaction.pk},
        )

    def date_filter_query(self, model_name: str, label: str) -> str:
        """The query string of one of the admin's own created_at filter links."""
        response = self.changelist(model_name)
        changelist = response.context["cl"]
        (spec,) = [
            s for s in changelist.filter_specs if getattr(s, "field_path", "") == "created_at"
        ]
        (choice,) = [c for c in spec.choices(changelist) if c["display"] == label]
        return choice["query_string"]

    def test_created_at_filter_today_shows_todays_charges(self):
        query = self.date_filter_query("payments_phonecharge", "Today")
        response = self.client.get(admin_url("payments_phonecharge_changelist") + query)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            {row.pk for row in response.context["cl"].result_list},
            {self.charge.pk, self.other_charge.pk},
        )

    def test_created_at_filter_excludes_rows_outside_the_range(self):
        Transaction.objects.filter(pk=self.charge.transaction.pk).update(
            created_at=timezone.now() - timedelta(days=60)
        )
        query = self.date_filter_query("payments_transaction", "Past 7 days")
        response = self.client.get(admin_url("payments_transaction_changelist") + query)
        self.assertEqual(response.status_code, 200)
        listed = {row.pk for row in response.context["cl"].result_list}
        self.assertNotIn(self.charge.transaction.pk, listed)
        self.assertEqual(len(listed), Transaction.objects.count() - 1)


class CreditRequestActionTests(AdminTestCase):
    def setUp(self):
        super().setUp()
        self.second_pending = credit_request_create(seller=self.alice, amount=40)

    def test_approve_selected_credits_each_selected_seller(self):
        response = self.run_action("approve_selected", self.pending, self.second_pending)
        self.assertRedirects(response, admin_url("payments_creditrequest_changelist"))
        self.alice.refresh_from_db()
        self.bob.refresh_from_db()
        self.assertEqual((self.alice.balance, self.bob.balance), (700 + 40, 400 + 250))

    def test_approve_selected_writes_one_journal_row_per_request(self):
        self.run_action("approve_selected", self.pending, self.second_pending)
        for credit_request in (self.pending, self.second_pending):
            row = Transaction.objects.get(credit_request=credit_request)
            self.assertEqual(
                (row.seller_id, row.kind, row.amount),
                (credit_request.seller_id, Transaction.Kind.CREDIT, credit_request.amount),
            )
        self.assertEqual(Transaction.objects.count(), 4 + 2)

    def test_approve_selected_records_the_logged_in_staff_member(self):
        self.run_action("approve_selected", self.pending)
        self.pending.refresh_from_db()
        self.assertEqual(self.pending.status, CreditRequest.Status.APPROVED)
        self.assertEqual(self.pending.decided_by, self.admin)
        self.assertIsNotNone(self.pending.decided_at)

    def test_approve_selected_reports_how_many_were_approved(self):
        response = self.run_action("approve_selected", self.pending, self.second_pending)
        self.assertEqual(
            self.messages_of(response), [(messages.SUCCESS, "Approved 2 credit request(s).")]
        )

    def test_approve_selected_leaves_unselected_requests_pending(self):
        self.run_action("approve_selected", self.pending)
        self.second_pending.refresh_from_db()
        self.assertEqual(self.second_pending.status, CreditRequest.Status.PENDING)
        self.alice.refresh_from_db()
        self.assertEqual(self.alice.balance, 700)
        self.assertFalse(Transaction.objects.filter(credit_request=self.second_pending).exists())

    def test_approving_an_approved_request_again_changes_nothing_and_warns(self):
        self.run_action("approve_selected", self.pending)
        before = books()
        response = self.run_action("approve_selected", self.pending)
        self.assertRedirects(response, admin_url("payments_creditrequest_changelist"))
        self.assertIn(
            (
                messages.WARNING,
                f"Credit request #{self.pending.pk}: This credit request has already been decided.",
            ),
            self.messages_of(response),
        )
        self.assertEqual(books(), before)

    def test_approving_a_mix_of_pending_and_decided_credits_only_the_pending(self):
        self.run_action("approve_selected", self.pending)
        response = self.run_action("approve_selected", self.pending, self.second_pending)
        levels = [level for level, _ in self.messages_of(response)]
        self.assertIn(messages.WARNING, levels)
        self.alice.refresh_from_db()
        self.bob.refresh_from_db()
        self.assertEqual((self.alice.balance, self.bob.balance), (740, 650))
        self.assertEqual(Transaction.objects.filter(credit_request=self.pending).count(), 1)
        self.assertEqual(ledger_problems(), [])

    def test_reject_selected_rejects_each_selected_request(self):
        response = self.run_action("reject_selected", self.pending, self.second_pending)
        self.assertRedirects(response, admin_url("payments_creditrequest_changelist"))
        for credit_request in (self.pending, self.second_pending):
            credit_request.refresh_from_db()
            self.assertEqual(credit_request.status, CreditRequest.Status.REJECTED)
            self.assertEqual(credit_request.decided_by, self.admin)

    def test_reject_selected_moves_no_money(self):
        before = books()
        self.run_action("reject_selected", self.pending, self.second_pending)
        after = books()
        self.assertEqual(after["Seller"], before["Seller"])
        self.assertEqual(after["PhoneAccount"], before["PhoneAccount"])
        self.assertEqual(after["Transaction"], before["Transaction"])

    def test_rejecting_an_approved_request_changes_nothing_and_warns(self):
        self.run_action("approve_selected", self.pending)
        before = books()
        response = self.run_action("reject_selected", self.pending)
        self.assertIn(messages.WARNING, [level for level, _ in self.messages_of(response)])
        self.assertEqual(books(), before)

    def test_approving_a_rejected_request_changes_nothing_and_warns(self):
        self.run_action("reject_selected", self.pending)
        before = books()
        response = self.run_action("approve_selected", self.pending)
        self.assertIn(messages.WARNING, [level for level, _ in self.messages_of(response)])
        self.assertEqual(books(), before)

    def test_an_approver_who_is_not_a_superuser_approves_through_the_admin(self):
        self.client.force_login(staff_make())
        self.assertIn("approve_selected", self.offered_actions("payments_creditrequest"))
        self.run_action("approve_selected", self.pending)
        self.pending.refresh_from_db()
        self.assertEqual(self.pending.status, CreditRequest.Status.APPROVED)

    def test_staff_who_may_only_view_requests_cannot_approve_them(self):
        viewer = staff_make(approver=False)
        viewer.user_permissions.add(Permission.objects.get(codename="view_creditrequest"))
        self.client.force_login(viewer)
        self.assertIn(self.pending.pk, self.listed("payments_creditrequest"))
        self.assertNotIn("approve_selected", self.offered_actions("payments_creditrequest"))
        before = books()
        self.run_action("approve_selected", self.pending)
        self.assertEqual(books(), before)

    def test_credit_requests_cannot_be_deleted_in_bulk(self):
        self.assertEqual(
            self.offered_actions("payments_creditrequest"), {"approve_selected", "reject_selected"}
        )
        before = books()
        self.run_action("delete_selected", self.pending)
        self.assertEqual(books(), before)


class CreditRequestFormTests(AdminTestCase):
    def test_add_page_is_refused_and_adds_nothing(self):
        before = books()
        self.assertEqual(self.client.get(admin_url("payments_creditrequest_add")).status_code, 403)
        response = self.client.post(
            admin_url("payments_creditrequest_add"),
            {"seller": self.alice.pk, "amount": 1_000, "status": "approved"},
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(books(), before)

    def test_change_form_is_read_only(self):
        response = self.client.get(admin_url("payments_creditrequest_change", self.pending.pk))
        self.assertEqual(response.status_code, 200)
        self.assertFalse(response.context["has_change_permission"])
        self.assertNotContains(response, 'name="status"')

    def test_posting_the_change_form_cannot_approve_a_request(self):
        before = books()
        response = self.client.post(
            admin_url("payments_creditrequest_change", self.pending.pk),
            {"seller": self.pending.seller_id, "amount": 999_999, "status": "approved"},
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(books(), before)

    def test_delete_page_is_refused_and_deletes_nothing(self):
        self.assertDeletePageRefused("payments_creditrequest", self.pending.pk)


class SellerFormTests(AdminTestCase):
    def change(self, **data):
        return self.client.post(
            admin_url("sellers_seller_change", self.alice.pk), {"name": "Alice", **data}
        )

    def test_posting_a_new_balance_leaves_the_balance_unchanged(self):
        before = books()
        response = self.change(name="Alice Renamed", balance=1_000_000)
        # The form was accepted (the rename saved) yet the balance was ignored.
        self.assertRedirects(response, admin_url("sellers_seller_changelist"))
        self.alice.refresh_from_db()
        self.assertEqual((self.alice.name, self.alice.balance), ("Alice Renamed", 700))
        after = books()
        self.assertEqual(after["Transaction"], before["Transaction"])
        self.assertEqual(ledger_problems(), [])

    def test_posting_another_user_does_not_reassign_the_seller(self):
        owner = self.alice.user_id
        response = self.change(user=staff_make().pk)
        self.assertRedirects(response, admin_url("sellers_seller_changelist"))
        self.alice.refresh_from_db()
        self.assertEqual(self.alice.user_id, owner)

    def test_change_form_shows_the_balance_read_only(self):
        response = self.client.get(admin_url("sellers_seller_change", self.alice.pk))
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, 'name="balance"')
        self.assertContains(response, "7.00 USD")

    def test_add_page_is_refused_and_adds_nothing(self):
        before = books()
        url = admin_url("sellers_seller_add")
        self.assertEqual(self.client.get(url).status_code, 403)
        response = self.client.post(url, {"name": "Mallory", "user": self.admin.pk})
        self.assertEqual(response.status_code, 403)
        self.assertEqual(books(), before)

    def test_delete_page_is_refused_and_deletes_nothing(self):
        self.assertDeletePageRefused("sellers_seller", self.alice.pk)

    def test_sellers_cannot_be_deleted_in_bulk(self):
        self.assertEqual(self.offered_actions("sellers_seller"), set())
        before = books()
        self.client.post(
            admin_url("sellers_seller_changelist"),
            {"action": "delete_selected", "_selected_action": [self.alice.pk], "post": "yes"},
        )
        self.assertEqual(books(), before)


class ReadOnlyRowChecks:
    """Shared checks for a table only the services write; subclasses name the table."""

    model_name: str

    def row(self):
        raise NotImplementedError

    def change_data(self) -> dict:
        raise NotImplementedError

    def test_add_page_is_refused_and_adds_nothing(self):
        before = books()
        url = admin_url(f"{self.model_name}_add")
        self.assertEqual(self.client.get(url).status_code, 403)
        self.assertEqual(self.client.post(url, self.change_data()).status_code, 403)
        self.assertEqual(books(), before)

    def test_change_form_is_read_only(self):
        response = self.client.get(admin_url(f"{self.model_name}_change", self.row().pk))
        self.assertEqual(response.status_code, 200)
        self.assertFalse(response.context["has_change_permission"])
        for field in self.change_data():
            self.assertNotContains(response, f'name="{field}"')

    def test_posting_the_change_form_is_refused_and_changes_nothing(self):
        before = books()
        response = self.client.post(
            admin_url(f"{self.model_name}_change", self.row().pk), self.change_data()
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(books(), before)

    def test_delete_page_is_refused_and_deletes_nothing(self):
        self.assertDeletePageRefused(self.model_name, self.row().pk)

    def test_rows_cannot_be_deleted_in_bulk_from_the_changelist(self):
        self.assertEqual(self.offered_actions(self.model_name), set())
        before = books()
        self.client.post(
            admin_url(f"{self.model_name}_changelist"),
            {"action": "delete_selected", "index": 0, "_selected_action": [self.row().pk]},
        )
        self.client.post(
            admin_url(f"{self.model_name}_changelist"),
            {"action": "delete_selected", "_selected_action": [self.row().pk], "post": "yes"},
        )
        self.assertEqual(books(), before)


class TransactionAdminTests(ReadOnlyRowChecks, AdminTestCase):
    model_name = "payments_transaction"

    def row(self):
        return self.charge.transaction

    def change_data(self) -> dict:
        return {"seller": self.alice.pk, "kind": "credit", "amount": 1, "balance_after": 1}


class PhoneChargeAdminTests(ReadOnlyRowChecks, AdminTestCase):
    model_name = "payments_phonecharge"

    def row(self):
        return self.charge

    def change_data(self) -> dict:
        return {"seller": self.bob.pk, "phone_account": OTHER_PHONE, "amount": 1}


class PhoneAccountAdminTests(ReadOnlyRowChecks, AdminTestCase):
    model_name = "payments_phoneaccount"

    def row(self):
        return PhoneAccount.objects.get(phone_number=PHONE)

    def change_data(self) -> dict:
        return {"phone_number": PHONE, "balance": 1_000_000}


class MoneyShownTests(AdminTestCase):
    """Amounts and balances in the currency (PAYLEDGER_CURRENCY, two decimals by
    default), sorted by the integer underneath."""

    def test_the_journal_shows_amounts_and_balances_after_in_the_currency(self):
        response = self.changelist("payments_transaction", {"kind": "charge"})
        self.assertContains(response, '<td class="field-amount_shown">3.00 USD</td>', html=True)
        self.assertContains(
            response, '<td class="field-balance_after_shown">7.00 USD</td>', html=True
        )

    def test_a_journal_rows_page_shows_its_amount_in_the_currency(self):
        page = self.client.get(admin_url("payments_transaction_change", self.charge.transaction.pk))
        self.assertContains(page, '<div class="readonly">3.00 USD</div>', html=True)

    def test_a_charge_is_listed_and_shown_with_its_amount_in_the_currency(self):
        listing = self.changelist("payments_phonecharge")
        page = self.client.get(admin_url("payments_phonecharge_change", self.charge.pk))
        self.assertContains(listing, '<td class="field-amount_shown">3.00 USD</td>', html=True)
        self.assertContains(page, '<div class="readonly">3.00 USD</div>', html=True)

    def test_a_phone_accounts_balance_is_shown_in_the_currency(self):
        response = self.changelist("payments_phoneaccount")
        self.assertContains(response, '<td class="field-balance_shown">3.00 USD</td>', html=True)

    def test_a_credit_request_is_listed_and_shown_with_its_amount_in_the_currency(self):
        listing = self.changelist("payments_creditrequest")
        page = self.client.get(admin_url("payments_creditrequest_change", self.pending.pk))
        self.assertContains(listing, '<td class="field-amount_shown">2.50 USD</td>', html=True)
        self.assertContains(page, '<div class="readonly">2.50 USD</div>', html=True)

    def test_approving_names_the_amount_in_the_currency(self):
        response = self.client.post(
            admin_url("payments_creditrequest_approve", self.pending.pk), follow=True
        )
        self.assertContains(response, f"Approved credit request #{self.pending.pk} (2.50 USD for")

    @override_settings(PAYLEDGER_CURRENCY="JPY", PAYLEDGER_CURRENCY_EXPONENT=0)
    def test_the_currency_setting_decides_what_the_admin_shows(self):
        response = self.changelist("sellers_seller")
        self.assertContains(response, '<td class="field-balance_shown">700 JPY</td>', html=True)

    def test_a_money_column_sorts_by_the_integer(self):
        def names(order: str) -> list[str]:
            listing = self.changelist("sellers_seller", {"o": order})
            return [seller.name for seller in listing.context["cl"].result_list]

        balance_column = SellerAdmin.list_display.index("balance_shown")  # 700 and 400
        self.assertEqual(names(f"{balance_column}"), ["Bob", "Alice"])
        self.assertEqual(names(f"-{balance_column}"), ["Alice", "Bob"])


class ApproverDayTests(AdminTestCase):
    """The approver's page-by-page workflow, through Django's test client (the browser
    suite drives the same pages in Chromium)."""

    def setUp(self):
        super().setUp()
        self.later_pending = credit_request_create(seller=self.alice, amount=75)

    def decide(self, decision: str, credit_request: CreditRequest, **data):
        return self.client.post(
            admin_url(f"payments_creditrequest_{decision}", credit_request.pk), data
        )

    def test_the_changelist_sums_up_the_pending_requests(self):
        response = self.changelist("payments_creditrequest")
        self.assertContains(
            response, "<strong>2</strong> pending requests, <strong>3.25 USD</strong> in all."
        )

    def test_a_requests_page_shows_the_sellers_balance_and_recent_journal(self):
        response = self.client.get(admin_url("payments_creditrequest_change", self.pending.pk))
        self.assertContains(response, "Seller&#x27;s balance")
        self.assertContains(response, '<div class="readonly">4.00 USD</div>', html=True)
        self.assertContains(response, 'class="seller-journal"')
        self.assertContains(
            response, "<td>charge</td><td>1.00 USD</td><td>4.00 USD</td>", html=False
        )

    def test_an_approver_gets_approve_and_reject_buttons_on_a_pending_request(self):
        response = self.client.get(admin_url("payments_creditrequest_change", self.pending.pk))
        self.assertContains(response, 'id="approve-button"')
        self.assertContains(response, 'id="reject-button"')

    def test_approving_asks_for_confirmation_first(self):
        response = self.client.get(admin_url("payments_creditrequest_approve", self.pending.pk))
        self.assertContains(response, "Yes, approve")
        self.pending.refresh_from_db()
        self.assertEqual(self.pending.status, CreditRequest.Status.PENDING)

    def test_confirming_credits_the_seller_once_and_opens_the_next_pending_request(self):
        response = self.decide("approve", self.pending)
        self.assertRedirects(
            response, admin_url("payments_creditrequest_change", self.later_pending.pk)
        )
        self.bob.refresh_from_db()
        self.assertEqual(self.bob.balance, 400 + 250)
        self.assertEqual(Transaction.objects.filter(credit_request=self.pending).count(), 1)

    def test_the_last_decision_returns_to_the_list(self):
        self.decide("approve", self.pending)
        response = self.decide("reject", self.later_pending)
        self.assertRedirects(response, admin_url("payments_creditrequest_changelist"))

    def test_rejecting_keeps_the_reason_for_the_seller(self):
        self.decide("reject", self.pending, reason="Unpaid invoice")
        self.pending.refresh_from_db()
        self.assertEqual(
            (self.pending.status, self.pending.rejection_reason), ("rejected", "Unpaid invoice")
        )

    def test_a_reason_with_a_null_character_is_shown_as_a_form_error_and_decides_nothing(self):
        before = books()
        response = self.decide("reject", self.pending, reason="Unpaid\x00")
        self.assertFormErrorShown(response, "Null characters are not allowed.")
        # The text comes back as typed, the NUL marked by the replacement character.
        self.assertContains(response, "Unpaid\ufffd</textarea>")
        self.assertEqual(books(), before)

    def test_an_overlong_reason_is_shown_as_a_form_error_and_decides_nothing(self):
        before = books()
        response = self.decide("reject", self.pending, reason="x" * 501)
        self.assertContains(response, "A reason has at most 500 characters.")
        self.assertEqual(books(), before)

    def test_deciding_a_request_decided_meanwhile_warns_and_moves_nothing(self):
        self.decide("approve", self.pending)
        before = books()
        response = self.decide("approve", self.pending)
        self.assertIn(
            (
                messages.WARNING,
                f"Credit request #{self.pending.pk}: This credit request has already been decided.",
            ),
            self.messages_of(response),
        )
        self.assertEqual(books(), before)

    def test_a_viewer_gets_no_buttons_and_may_not_decide(self):
        viewer = staff_make(approver=False)
        viewer.user_permissions.add(Permission.objects.get(codename="view_creditrequest"))
        self.client.force_login(viewer)
        page = self.client.get(admin_url("payments_creditrequest_change", self.pending.pk))
        self.assertNotContains(page, 'id="approve-button"')
        before = books()
        self.assertEqual(self.decide("approve", self.pending).status_code, 403)
        self.assertEqual(self.client.get(
            admin_url("payments_creditrequest_reject", self.pending.pk)
        ).status_code, 403)  # fmt: skip
        self.assertEqual(books(), before)

    def test_a_sellers_page_shows_its_totals_and_links_to_its_journal(self):
        page = self.client.get(admin_url("sellers_seller_change", self.alice.pk))
        self.assertContains(page, '<div class="readonly">10.00 USD</div>', html=True)  # credited
        self.assertContains(page, '<div class="readonly">3.00 USD</div>', html=True)  # charged
        journal = self.listed("payments_transaction", {"seller__id__exact": self.alice.pk})
        self.assertEqual(journal, set(self.alice.transactions.values_list("pk", flat=True)))


class ReverseChargeTests(AdminTestCase):
    """A charge's page offers Reverse to staff who may reverse, through the service."""

    def setUp(self):
        self.reverser = staff_make(approver=False, reverser=True)
        self.client.force_login(self.reverser)
        self.reverse_url = admin_url("payments_phonecharge_reverse", self.charge.pk)

    def charge_page(self):
        # Reading a charge needs the view permission the reverse permission goes with.
        return self.client.get(admin_url("payments_phonecharge_change", self.charge.pk))

    def test_the_charge_page_offers_reverse_to_staff_who_may_reverse(self):
        self.reverser.user_permissions.add(Permission.objects.get(codename="view_phonecharge"))
        self.assertContains(self.charge_page(), 'id="reverse-button"')

    def test_the_charge_page_offers_no_reverse_to_staff_who_may_only_view(self):
        viewer = staff_make(approver=False)
        viewer.user_permissions.add(Permission.objects.get(codename="view_phonecharge"))
        self.client.force_login(viewer)
        response = self.charge_page()
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, 'id="reverse-button"')

    def test_the_confirmation_page_names_the_amount_and_moves_nothing(self):
        before = books()
        self.assertContains(self.client.get(self.reverse_url), "<strong>3.00 USD</strong>")
        self.assertEqual(books(), before)

    def test_confirming_gives_the_amount_back_and_keeps_the_reason(self):
        response = self.client.post(self.reverse_url, {"reason": "Operator refused"})
        self.assertRedirects(
            response,
            admin_url("payments_phonecharge_change", self.charge.pk),
            fetch_redirect_response=False,
        )
        self.alice.refresh_from_db()
        self.assertEqual(self.alice.balance, 1_000)
        self.assertEqual(self.charge.__class__.objects.get(pk=self.charge.pk).reversal.reason,
                         "Operator refused")  # fmt: skip
        self.assertEqual(ledger_problems(), [])

    def test_reversing_twice_warns_and_moves_nothing_more(self):
        self.client.post(self.reverse_url)
        before = books()
        response = self.client.post(self.reverse_url)
        self.assertIn(
            (messages.WARNING, f"Charge #{self.charge.pk}: This charge has already been reversed."),
            self.messages_of(response),
        )
        self.assertEqual(books(), before)

    def test_a_reason_with_a_null_character_is_shown_as_a_form_error_and_moves_nothing(self):
        before = books()
        response = self.client.post(self.reverse_url, {"reason": "Operator\x00"})
        self.assertFormErrorShown(response, "Null characters are not allowed.")
        self.assertEqual(books(), before)

    def test_staff_who_may_not_reverse_are_refused_and_nothing_moves(self):
        self.client.force_login(staff_make())
        before = books()
        self.assertEqual(self.client.post(self.reverse_url).status_code, 403)
        self.assertEqual(books(), before)


class OwnSellerAdminTests(AdminTestCase):
    """A seller's user given staff powers by mistake cannot move its own money
    through the admin: not with the buttons, not with the actions."""

    def setUp(self):
        self.bob_user = staff_powers_give(self.bob.user, reverser=True)
        for codename in ("view_creditrequest", "view_phonecharge"):
            self.bob_user.user_permissions.add(Permission.objects.get(codename=codename))
        self.client.force_login(self.bob_user)
        self.own_charge = self.other_charge
        self.refusal = (
            messages.WARNING,
            f"Credit request #{self.pending.pk}: {OwnSellerForbidden.message}",
        )

    def test_approving_its_own_request_with_the_button_warns_and_changes_nothing(self):
        before = books()
        response = self.client.post(admin_url("payments_creditrequest_approve", self.pending.pk))
        self.assertIn(self.refusal, self.messages_of(response))
        self.assertEqual(books(), before)

    def test_rejecting_its_own_request_with_the_button_warns_and_changes_nothing(self):
        before = books()
        response = self.client.post(
            admin_url("payments_creditrequest_reject", self.pending.pk), {"reason": "No"}
        )
        self.assertIn(self.refusal, self.messages_of(response))
        self.assertEqual(books(), before)

    def test_approving_its_own_request_with_the_action_warns_and_changes_nothing(self):
        before = books()
        response = self.run_action("approve_selected", self.pending)
        self.assertEqual(self.messages_of(response), [self.refusal])
        self.assertEqual(books(), before)

    def test_reversing_its_own_charge_warns_and_changes_nothing(self):
        before = books()
        response = self.client.post(
            admin_url("payments_phonecharge_reverse", self.own_charge.pk), {"reason": "Mine"}
        )
        self.assertIn(
            (messages.WARNING, f"Charge #{self.own_charge.pk}: {OwnSellerForbidden.message}"),
            self.messages_of(response),
        )
        self.assertEqual(books(), before)

    def test_it_still_decides_another_sellers_request(self):
        alices_request = credit_request_create(seller=self.alice, amount=40)
        self.client.post(admin_url("payments_creditrequest_approve", alices_request.pk))
        self.alice.refresh_from_db()
        self.assertEqual(self.alice.balance, 700 + 40)
