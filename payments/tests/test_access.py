"""Who may do what, endpoint by endpoint: one table, every role.

Roles: the seller who owns the data, another seller, staff without
permissions, an approver (staff in the "Credit approvers" group: may decide
credit and view sellers, requests and journals) and a superuser.
"""

import csv
import importlib
import io

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import TestCase
from django.urls import reverse

from payments.models import CreditRequest
from payments.permissions import (
    CREDIT_APPROVER_PERMISSIONS,
    CREDIT_APPROVERS,
    credit_approvers_group,
)
from payments.services import credit_request_create, phone_charge_create
from testing.assertions import ErrorShapeAssertions, books
from testing.factories import (
    PASSWORD,
    client_for,
    seller_make,
    staff_make,
    staff_powers_give,
)

User = get_user_model()
ROLES = ["owner", "other seller", "staff", "approver", "superuser"]
# What a list shows: the caller's own seller's rows, nobody's, or everybody's.
OWN, NONE, ALL = "own", "none", "all"


class AccessTableTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = seller_make(balance=1_000)
        cls.other = seller_make(balance=1_000)
        phone_charge_create(seller_id=cls.owner.pk, phone_number="+14155550123", amount=10)
        phone_charge_create(seller_id=cls.other.pk, phone_number="+14155550124", amount=10)
        cls.owners_request = credit_request_create(seller=cls.owner, amount=50)
        credit_request_create(seller=cls.other, amount=60)
        cls.users = {
            "owner": cls.owner.user,
            "other seller": cls.other.user,
            "staff": staff_make(approver=False),
            "approver": staff_make(),
            "superuser": User.objects.create_superuser(username="root", password=PASSWORD),
        }

    def seller_ids_seen(self, role: str) -> dict[str, set[int]]:
        """The sellers whose rows each list endpoint shows to ``role``."""
        client = client_for(self.users[role])
        sellers = client.get(reverse("seller-list")).json()["results"]
        requests = client.get(reverse("credit-request-list")).json()["results"]
        journal = client.get(reverse("transaction-list")).json()["results"]
        export = csv.DictReader(io.StringIO(b"".join(
            client.get(reverse("transaction-export")).streaming_content
        ).decode()))  # fmt: skip
        return {
            "sellers": {row["id"] for row in sellers},
            "credit requests": {row["seller"] for row in requests},
            "journal": {row["seller"] for row in journal},
            "export": {int(row["seller"]) for row in export},
        }

    def expected_ids(self, role: str, seen: str) -> set[int]:
        own = {"owner": {self.owner.pk}, "other seller": {self.other.pk}}.get(role, set())
        return {OWN: own, NONE: set(), ALL: {self.owner.pk, self.other.pk}}[seen]

    def test_each_role_lists_exactly_the_rows_it_may_see(self):
        table = {
            "owner": OWN,
            "other seller": OWN,
            "staff": NONE,
            "approver": ALL,
            "superuser": ALL,
        }
        for role, seen in table.items():
            for endpoint, ids in self.seller_ids_seen(role).items():
                with self.subTest(role=role, endpoint=endpoint):
                    self.assertEqual(ids, self.expected_ids(role, seen))

    def test_each_role_reads_the_owners_records_only_if_it_may(self):
        reads = {
            "seller detail": reverse("seller-detail", args=[self.owner.pk]),
            "credit request detail": reverse(
                "credit-request-detail", args=[self.owners_request.pk]
            ),
        }
        table = {"owner": 200, "other seller": 404, "staff": 404, "approver": 200, "superuser": 200}
        for role, status in table.items():
            client = client_for(self.users[role])
            for name, url in reads.items():
                with self.subTest(role=role, read=name):
                    self.assertEqual(client.get(url).status_code, status)

    def test_me_is_the_callers_own_seller_account_or_404(self):
        table = {"owner": 200, "other seller": 200, "staff": 404, "approver": 404, "superuser": 404}
        for role, status in table.items():
            with self.subTest(role=role):
                response = client_for(self.users[role]).get(reverse("seller-me"))
                self.assertEqual(response.status_code, status)
                if status == 200:
                    self.assertEqual(response.json()["username"], self.users[role].username)

    def test_only_approvers_and_superusers_decide_credit_requests(self):
        table = {"owner": 403, "other seller": 403, "staff": 403, "approver": 200, "superuser": 200}
        for decision in ("approve", "reject"):
            for role, status in table.items():
                pending = credit_request_create(seller=self.owner, amount=5)
                with self.subTest(role=role, decision=decision):
                    response = client_for(self.users[role]).post(
                        reverse(f"credit-request-{decision}", args=[pending.pk])
                    )
                    self.assertEqual(response.status_code, status, response.content)
                    pending.refresh_from_db()
                    decided = pending.status != CreditRequest.Status.PENDING
                    self.assertEqual(decided, status == 200)
                    if status == 403:
                        self.assertEqual(response.json()["code"], "permission_denied")

    def test_only_sellers_move_their_own_money(self):
        table = {"owner": 201, "other seller": 201, "staff": 403, "approver": 403, "superuser": 403}
        for role, status in table.items():
            client = client_for(self.users[role])
            with self.subTest(role=role, operation="charge"):
                response = client.post(
                    reverse("phone-charge"),
                    {"phone_number": "+14155550125", "amount": 1},
                    format="json",
                )
                self.assertEqual(response.status_code, status)
            with self.subTest(role=role, operation="ask for credit"):
                response = client.post(reverse("credit-request-list"), {"amount": 1}, format="json")
                self.assertEqual(response.status_code, status)


class OwnSellerApiTests(ErrorShapeAssertions, TestCase):
    """A seller given staff powers by mistake cannot move its own money through the API."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.charge = phone_charge_create(
            seller_id=self.seller.pk, phone_number="+14155550123", amount=300
        )
        self.client = client_for(self.seller.user)

    def ask_for_a_billion(self) -> int:
        response = self.client.post(
            reverse("credit-request-list"), {"amount": 1_000_000_000}, format="json"
        )
        self.assertEqual(response.status_code, 201, response.content)
        return response.json()["id"]

    def test_a_seller_in_credit_approvers_cannot_approve_its_own_request(self):
        staff_powers_give(self.seller.user)
        credit_request_id = self.ask_for_a_billion()
        before = books()
        response = self.client.post(reverse("credit-request-approve", args=[credit_request_id]))
        self.assertErrorResponse(response, 403, "own_seller_forbidden")
        self.assertEqual(books(), before)

    def test_a_seller_in_credit_approvers_cannot_reject_its_own_request(self):
        staff_powers_give(self.seller.user)
        credit_request_id = self.ask_for_a_billion()
        before = books()
        response = self.client.post(reverse("credit-request-reject", args=[credit_request_id]))
        self.assertErrorResponse(response, 403, "own_seller_forbidden")
        self.assertEqual(books(), before)

    def test_a_user_in_credit_approvers_who_is_not_staff_may_not_decide(self):
        self.seller.user.groups.add(credit_approvers_group(Group, Permission))
        credit_request_id = self.ask_for_a_billion()
        before = books()
        for decision in ("approve", "reject"):
            with self.subTest(decision=decision):
                response = self.client.post(
                    reverse(f"credit-request-{decision}", args=[credit_request_id])
                )
                self.assertErrorResponse(response, 403, "permission_denied")
        self.assertEqual(books(), before)

    def test_a_seller_allowed_to_reverse_cannot_reverse_its_own_charge(self):
        staff_powers_give(self.seller.user, approver=False, reverser=True)
        before = books()
        response = self.client.post(
            reverse("phone-charges-reverse", args=[self.charge.pk]), {}, format="json"
        )
        self.assertErrorResponse(response, 403, "own_seller_forbidden")
        self.assertEqual(books(), before)


class CreditApproversGroupTests(TestCase):
    def test_the_data_migration_creates_the_group_with_the_approver_permissions(self):
        Group.objects.filter(name=CREDIT_APPROVERS).delete()
        migration = importlib.import_module("payments.migrations.0005_credit_approvers_group")
        migration.create_credit_approvers(apps, schema_editor=None)
        granted = Group.objects.get(name=CREDIT_APPROVERS).permissions.values_list(
            "content_type__app_label", "codename"
        )
        self.assertEqual(
            sorted(f"{app}.{codename}" for app, codename in granted),
            sorted(CREDIT_APPROVER_PERMISSIONS),
        )

    def test_a_member_of_the_group_may_approve_credit(self):
        member = User.objects.create_user(username="ann", password=PASSWORD, is_staff=True)
        member.groups.add(Group.objects.get_or_create(name=CREDIT_APPROVERS)[0])
        migration = importlib.import_module("payments.migrations.0005_credit_approvers_group")
        migration.create_credit_approvers(apps, schema_editor=None)
        self.assertTrue(User.objects.get(pk=member.pk).has_perm("payments.approve_creditrequest"))
