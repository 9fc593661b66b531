"""The audit trail: each tracked staff action and sensitive change appears with
who, when, from which address and what changed; nobody edits it."""

import csv
import io
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import InternalError
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from payments.permissions import CREDIT_APPROVERS
from payments.services import credit_request_create, phone_charge_create
from sellers.models import Seller
from testing.factories import PASSWORD, api_key_make, seller_make, staff_make

User = get_user_model()
ADDRESS = "203.0.113.7"


def database_now():
    """The database's clock, which stamps events: its transaction's start."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


class TrailTestCase(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.staff = staff_make(reverser=True)
        self.root = User.objects.create_superuser(username="root", password=PASSWORD)
        self.started = database_now()

    def api_as(self, user) -> APIClient:
        client = APIClient(REMOTE_ADDR=ADDRESS)
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_make(user)}")
        return client

    def admin_as(self, user):
        self.client.force_login(user)
        self.client.defaults["REMOTE_ADDR"] = ADDRESS
        return self.client

    def event(self, label: str) -> AuditEvent:
        """The latest event so labelled (each label belongs to one table)."""
        return AuditEvent.objects.filter(pgh_label=label).order_by("-pgh_id").first()

    def assert_recorded(self, event: AuditEvent, *, actor, url: str) -> None:
        """Who, when and from where."""
        self.assertEqual(event.pgh_context["user"], actor.pk)
        self.assertEqual(event.pgh_context["remote_addr"], ADDRESS)
        self.assertEqual(event.pgh_context["url"], url)
        self.assertLessEqual(self.started, event.pgh_created_at)
        self.assertLessEqual(event.pgh_created_at, timezone.now())


class StaffActionTests(TrailTestCase):
    def test_an_approval_through_the_api_is_recorded(self):
        request = credit_request_create(seller=self.seller, amount=250)
        url = reverse("credit-request-approve", args=[request.pk])
        self.assertEqual(self.api_as(self.staff).post(url).status_code, 200)
        event = self.event("credit_request.approved")
        self.assert_recorded(event, actor=self.staff, url=url)
        self.assertEqual(event.pgh_obj_id, str(request.pk))
        self.assertEqual(
            (event.pgh_data["status"], event.pgh_data["decided_by_id"], event.pgh_data["amount"]),
            ("approved", self.staff.pk, 250),
        )

    def test_a_rejection_in_the_admin_is_recorded_with_its_reason(self):
        request = credit_request_create(seller=self.seller, amount=250)
        url = reverse("admin:payments_creditrequest_reject", args=[request.pk])
        self.admin_as(self.staff).post(url, {"reason": "no documents"})
        event = self.event("credit_request.rejected")
        self.assert_recorded(event, actor=self.staff, url=url)
        self.assertEqual(
            (event.pgh_data["status"], event.pgh_data["rejection_reason"]),
            ("rejected", "no documents"),
        )

    def test_a_reversal_is_recorded(self):
        charge = phone_charge_create(
            seller_id=self.seller.pk, phone_number="+14155550123", amount=120
        )
        url = reverse("phone-charges-reverse", args=[charge.pk])
        response = self.api_as(self.staff).post(url, {"reason": "wrong number"}, format="json")
        self.assertEqual(response.status_code, 201, response.content)
        event = self.event("charge.reversed")
        self.assert_recorded(event, actor=self.staff, url=url)
        self.assertEqual(
            (
                event.pgh_data["charge_id"],
                event.pgh_data["reason"],
                event.pgh_data["reversed_by_id"],
            ),
            (charge.pk, "wrong number", self.staff.pk),
        )

    def test_a_charge_records_nothing(self):
        before = AuditEvent.objects.count()
        phone_charge_create(seller_id=self.seller.pk, phone_number="+14155550123", amount=120)
        self.assertEqual(AuditEvent.objects.count(), before)


class AddressTests(TrailTestCase):
    def approve_with(self, **headers) -> AuditEvent:
        request = credit_request_create(seller=self.seller, amount=5)
        client = self.api_as(self.staff)
        client.post(reverse("credit-request-approve", args=[request.pk]), **headers)
        return self.event("credit_request.approved")

    def test_a_forwarded_for_header_is_ignored_without_proxies(self):
        event = self.approve_with(HTTP_X_FORWARDED_FOR="198.51.100.66")
        self.assertEqual(event.pgh_context["remote_addr"], ADDRESS)

    @override_settings(REST_FRAMEWORK={"NUM_PROXIES": 1})
    def test_behind_one_proxy_the_address_is_the_one_the_proxy_wrote(self):
        event = self.approve_with(HTTP_X_FORWARDED_FOR="198.51.100.66, 192.0.2.10")
        self.assertEqual(event.pgh_context["remote_addr"], "192.0.2.10")


class PermissionChangeTests(TrailTestCase):
    def user_change(self, user, **fields) -> None:
        """Save ``user``'s admin change form with ``fields`` changed."""
        data = {
            "username": user.username,
            "is_active": "on",
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            "groups": [group.pk for group in user.groups.all()],
            "user_permissions": [p.pk for p in user.user_permissions.all()],
            **({"is_staff": "on"} if user.is_staff else {}),
            **fields,
        }
        data = {key: value for key, value in data.items() if value is not None}
        url = reverse("admin:auth_user_change", args=[user.pk])
        response = self.admin_as(self.root).post(url, data)
        self.assertEqual(response.status_code, 302, response.content.decode()[:3000])
        return url

    def test_making_a_user_staff_is_recorded(self):
        user = User.objects.create_user(username="newcomer", password=PASSWORD)
        url = self.user_change(user, is_staff="on")
        event = self.event("user.changed")
        self.assert_recorded(event, actor=self.root, url=url)
        self.assertEqual(event.pgh_diff["is_staff"], [False, True])
        self.assertNotIn("password", event.pgh_data)

    def test_adding_a_user_to_a_group_is_recorded(self):
        group = Group.objects.get(name=CREDIT_APPROVERS)
        user = User.objects.create_user(username="newcomer", password=PASSWORD, is_staff=True)
        url = self.user_change(user, groups=[group.pk])
        event = self.event("user_group.added")
        self.assert_recorded(event, actor=self.root, url=url)
        self.assertEqual(
            (event.pgh_data["user_id"], event.pgh_data["group_id"]), (user.pk, group.pk)
        )

    def test_removing_a_user_from_a_group_is_recorded(self):
        url = self.user_change(self.staff, groups=[])
        event = self.event("user_group.removed")
        self.assert_recorded(event, actor=self.root, url=url)
        self.assertEqual(event.pgh_data["user_id"], self.staff.pk)

    def test_granting_a_user_a_permission_is_recorded(self):
        permission = Permission.objects.get(codename="view_seller")
        user = User.objects.create_user(username="newcomer", password=PASSWORD, is_staff=True)
        url = self.user_change(user, user_permissions=[permission.pk])
        event = self.event("user_permission.added")
        self.assert_recorded(event, actor=self.root, url=url)
        self.assertEqual(event.pgh_data["permission_id"], permission.pk)

    def test_changing_a_groups_permissions_is_recorded(self):
        group = Group.objects.get(name=CREDIT_APPROVERS)
        permission = Permission.objects.get(codename="reverse_phonecharge")
        url = reverse("admin:auth_group_change", args=[group.pk])
        kept = list(group.permissions.values_list("pk", flat=True))
        self.admin_as(self.root).post(
            url, {"name": group.name, "permissions": [*kept, permission.pk]}
        )
        event = self.event("group_permission.added")
        self.assert_recorded(event, actor=self.root, url=url)
        self.assertEqual(
            (event.pgh_data["group_id"], event.pgh_data["permission_id"]), (group.pk, permission.pk)
        )

    def test_creating_a_group_is_recorded(self):
        url = reverse("admin:auth_group_add")
        self.admin_as(self.root).post(url, {"name": "Auditors"})
        event = self.event("group.created")
        self.assert_recorded(event, actor=self.root, url=url)
        self.assertEqual(event.pgh_data["name"], "Auditors")

    def test_creating_a_staff_user_is_recorded(self):
        created = User.objects.create_user(username="clerk", is_staff=True)
        event = AuditEvent.objects.get(pgh_label="staff_user.created", pgh_obj_id=str(created.pk))
        self.assertEqual(event.pgh_data["username"], created.username)

    def test_registering_a_seller_records_no_staff_user(self):
        seller = seller_make()
        self.assertFalse(
            AuditEvent.objects.filter(
                pgh_label="staff_user.created", pgh_obj_id=str(seller.user_id)
            ).exists()
        )

    def test_deleting_a_staff_user_is_recorded(self):
        leaver = User.objects.create_user(username="leaver", is_staff=True)
        url = reverse("admin:auth_user_delete", args=[leaver.pk])
        self.admin_as(self.root).post(url, {"post": "yes"})
        event = self.event("staff_user.deleted")
        self.assert_recorded(event, actor=self.root, url=url)
        self.assertEqual(event.pgh_data["username"], "leaver")


class SellerAndWebhookTests(TrailTestCase):
    def endpoint_register(self, client: APIClient):
        return client.post(
            reverse("webhook-endpoint-list"),
            {"url": "http://127.0.0.1:9/hook", "event_types": ["credit_request.approved"]},
            format="json",
        )

    def test_renaming_a_seller_in_the_admin_is_recorded_but_not_its_balance(self):
        url = reverse("admin:sellers_seller_change", args=[self.seller.pk])
        response = self.admin_as(self.root).post(url, {"name": "Renamed Shop"})
        self.assertEqual(response.status_code, 302, response.content.decode()[:2000])
        event = self.event("seller.changed")
        self.assert_recorded(event, actor=self.root, url=url)
        self.assertEqual(event.pgh_diff["name"][1], "Renamed Shop")
        self.assertNotIn("balance", event.pgh_data)

    def test_a_webhook_endpoint_created_and_deleted_is_recorded_without_its_secret(self):
        client = self.api_as(self.seller.user)
        created = self.endpoint_register(client)
        self.assertEqual(created.status_code, 201, created.content)
        secret = created.json()["secret"]
        detail = reverse("webhook-endpoint-detail", args=[created.json()["id"]])
        self.assertEqual(client.delete(detail).status_code, 204)
        for label, url in [
            ("webhook_endpoint.created", reverse("webhook-endpoint-list")),
            ("webhook_endpoint.deleted", detail),
        ]:
            with self.subTest(label):
                event = self.event(label)
                self.assert_recorded(event, actor=self.seller.user, url=url)
                self.assertEqual(event.pgh_data["url"], "http://127.0.0.1:9/hook")
                self.assertNotIn("secret", event.pgh_data)
                self.assertNotIn(secret, str(event.pgh_data))

    def test_rotating_a_webhook_secret_is_recorded_without_either_secret(self):
        client = self.api_as(self.seller.user)
        created = self.endpoint_register(client).json()
        url = reverse("webhook-endpoint-rotate-secret", args=[created["id"]])
        rotated = client.post(url)
        self.assertEqual(rotated.status_code, 200, rotated.content)
        event = self.event("webhook_endpoint.secret_rotated")
        self.assert_recorded(event, actor=self.seller.user, url=url)
        self.assertIsNotNone(event.pgh_data["previous_secret_expires_at"])
        for secret in (created["secret"], rotated.json()["secret"]):
            self.assertNotIn(secret, str(event.pgh_data))
        self.assertFalse(AuditEvent.objects.filter(pgh_label="webhook_endpoint.changed").exists())

    def test_re_encrypting_the_secrets_under_a_new_key_is_no_rotation(self):
        self.endpoint_register(self.api_as(self.seller.user))
        call_command("rotate_webhook_secrets", stdout=io.StringIO())
        self.assertFalse(
            AuditEvent.objects.filter(pgh_label__startswith="webhook_endpoint.")
            .exclude(pgh_label="webhook_endpoint.created")
            .exists()
        )


class AppendOnlyTests(TrailTestCase):
    def setUp(self):
        super().setUp()
        self.seller.name = "Renamed"
        self.seller.save(update_fields=["name"])

    def refused(self, sql: str) -> None:
        with (
            self.assertRaises(InternalError),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)

    def test_an_event_row_cannot_be_updated(self):
        self.refused("UPDATE audit_sellerevent SET name = 'Forged'")
        self.assertEqual(self.event("seller.changed").pgh_data["name"], "Renamed")

    def test_an_event_row_cannot_be_deleted(self):
        self.refused("DELETE FROM audit_sellerevent")
        self.assertTrue(AuditEvent.objects.filter(pgh_label="seller.changed").exists())

    def test_a_context_cannot_be_rewritten_or_deleted(self):
        credit_request = credit_request_create(seller=self.seller, amount=5)
        self.api_as(self.staff).post(reverse("credit-request-approve", args=[credit_request.pk]))
        self.refused("UPDATE pghistory_context SET metadata = jsonb_set(metadata, '{user}', '1')")
        self.refused("DELETE FROM pghistory_context")
        self.assertEqual(self.event("credit_request.approved").pgh_context["user"], self.staff.pk)


class TrailAdminTests(TrailTestCase):
    def setUp(self):
        super().setUp()
        Seller.objects.filter(pk=self.seller.pk).update(name="Renamed")
        self.admin_as(self.root)
        self.changelist = reverse("admin:audit_auditevent_changelist")

    def test_the_trail_is_listed_with_who_and_from_where(self):
        credit_request = credit_request_create(seller=self.seller, amount=5)
        self.api_as(self.staff).post(reverse("credit-request-approve", args=[credit_request.pk]))
        response = self.client.get(self.changelist)
        self.assertContains(response, "credit_request.approved")
        self.assertContains(response, ADDRESS)

    def test_the_trail_has_no_add_page(self):
        self.assertEqual(self.client.get(reverse("admin:audit_auditevent_add")).status_code, 403)

    def test_an_event_cannot_be_changed_or_deleted_from_the_admin(self):
        slug = AuditEvent.objects.get(pgh_label="seller.changed").pgh_slug
        change = reverse("admin:audit_auditevent_change", args=[slug])
        delete = reverse("admin:audit_auditevent_delete", args=[slug])
        self.client.post(change, {"pgh_label": "forged"})
        self.assertEqual(self.client.post(delete, {"post": "yes"}).status_code, 403)
        self.assertTrue(AuditEvent.objects.filter(pgh_label="seller.changed").exists())
        self.assertNotContains(self.client.get(self.changelist), "delete_selected")

    def test_the_api_has_no_way_to_the_trail(self):
        schema = self.client.get(reverse("schema"), HTTP_ACCEPT="application/json").content
        self.assertNotIn(b"audit", schema.lower())


class ExportTests(TrailTestCase):
    def export(self, *arguments: str) -> list[dict]:
        out = io.StringIO()
        call_command("export_audit_trail", *arguments, stdout=out)
        return list(csv.DictReader(io.StringIO(out.getvalue())))

    def test_the_export_writes_each_event_with_who_and_from_where(self):
        credit_request = credit_request_create(seller=self.seller, amount=5)
        self.api_as(self.staff).post(reverse("credit-request-approve", args=[credit_request.pk]))
        today = timezone.now().date()
        rows = self.export("--since", today.isoformat())
        approved = [
            row
            for row in rows
            if row["event"] == "credit_request.approved"
            and row["object_id"] == str(credit_request.pk)
        ]
        self.assertEqual(len(approved), 1)
        self.assertEqual(
            (approved[0]["username"], approved[0]["remote_addr"], approved[0]["object_id"]),
            (self.staff.username, ADDRESS, str(credit_request.pk)),
        )

    def test_the_export_keeps_to_its_date_range(self):
        today = timezone.now().date()
        self.assertTrue(self.export("--since", today.isoformat()))
        self.assertEqual(
            self.export(
                "--since", (today - timedelta(days=2)).isoformat(), "--until", today.isoformat()
            ),
            [],
        )


class TrailMigrationTests(TestCase):
    def test_every_recorded_field_and_trigger_has_its_migration(self):
        # A field added to a tracked model changes what its events hold.
        call_command("makemigrations", "audit", check=True, dry_run=True, verbosity=0)
