"""Each event's payload follows its one definition (payments/events.py), on every
path that writes it: the services called directly, the API, the admin's buttons
and actions, and the demo seed command.

An event is compared with the definition applied to the rows it describes, read
back from the database: the credit request, the charge and its journal row, the
reversal and its journal row, and the seller's balance from the journal."""

import datetime
import json
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import SimpleTestCase, TestCase, TransactionTestCase
from django.urls import reverse
from rest_framework import serializers

from payments.events import (
    PAYLOADS,
    Field,
    event_payload,
    event_payload_sql,
    event_types_by_payload,
    rfc3339,
)
from payments.models import CreditRequest, Event, PhoneCharge, Transaction
from payments.services import (
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
    phone_charge_reverse,
)
from testing.factories import PASSWORD, client_for, seller_make, staff_make

PHONE = "+14155550123"
EVENTS_DOCS = Path(settings.BASE_DIR) / "docs" / "webhooks.md"
CREATED = Event.Type.CREDIT_REQUEST_CREATED
APPROVED = Event.Type.CREDIT_REQUEST_APPROVED
REJECTED = Event.Type.CREDIT_REQUEST_REJECTED
CHARGED = Event.Type.PHONE_CHARGE_CREATED
REVERSED = Event.Type.PHONE_CHARGE_REVERSED
MOVEMENTS = [APPROVED, CHARGED, REVERSED]  # the types with a journal row of their own
INSTANTS = [
    datetime.datetime(2026, 12, 5, 19, 29, 5, 123456, tzinfo=datetime.UTC),
    datetime.datetime(2026, 12, 5, 19, 29, 5, tzinfo=datetime.UTC),
    datetime.datetime(2026, 12, 5, 19, 29, 5, 1, tzinfo=datetime.UTC),
    datetime.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("America/Lima")),
]


def balance_when(event: Event) -> int:
    """The seller's balance when ``event`` was written, from the journal.

    A seller's events and journal rows are each numbered in commit order (both
    are written under the seller's row lock), and each movement's event has one
    journal row: the balance is the balance_after of the nth row, n the movement
    events up to this one."""
    movements = Event.objects.filter(
        seller_id=event.seller_id, id__lte=event.pk, type__in=MOVEMENTS
    ).count()
    if movements == 0:
        return 0
    journal = Transaction.objects.filter(seller_id=event.seller_id).order_by("id")
    return journal[movements - 1].balance_after


def credit_request_values(event: Event) -> dict:
    credit_request = CreditRequest.objects.get(pk=event.payload["id"])
    values = {
        "id": credit_request.pk,
        "seller": credit_request.seller_id,
        "amount": credit_request.amount,
        "status": credit_request.status,
        "created_at": credit_request.created_at,
        "decided_at": credit_request.decided_at,
        "decided_by": credit_request.decided_by_id,
        "rejection_reason": credit_request.rejection_reason,
        "balance": balance_when(event),
    }
    if event.type == CREATED:  # as it was then: decided since, perhaps
        undecided = {"decided_at": None, "decided_by": None, "rejection_reason": None}
        values |= {"status": CreditRequest.Status.PENDING, **undecided}
    return values


def charge_values(event: Event) -> dict:
    charge = PhoneCharge.objects.select_related("transaction").get(pk=event.payload["id"])
    return {
        "id": charge.pk,
        "seller": charge.seller_id,
        "phone_number": charge.phone_account_id,
        "amount": charge.amount,
        "created_at": charge.created_at,
        "reference": charge.reference,
        "transaction_id": charge.transaction.pk,
        "balance": charge.transaction.balance_after,
    }


def reversed_charge_values(event: Event) -> dict:
    charge = PhoneCharge.objects.select_related("reversal__transaction").get(pk=event.payload["id"])
    reversal = charge.reversal
    return {
        **charge_values(event),
        "reversed": True,
        "reversed_at": reversal.created_at,
        "reversal": {
            "transaction_id": reversal.transaction.pk,
            "reason": reversal.reason,
            "reversed_at": reversal.created_at,
            "reversed_by": reversal.reversed_by_id,
            "balance_after": reversal.transaction.balance_after,
        },
    }


VALUES_FROM_ROWS = {
    CREATED: credit_request_values,
    APPROVED: credit_request_values,
    REJECTED: credit_request_values,
    CHARGED: charge_values,
    REVERSED: reversed_charge_values,
}


class EventPayloadAssertions:
    def events_mark(self) -> None:
        """Events written from now on are the test's."""
        self.events_before = Event.objects.order_by("id").values_list("id", flat=True).last() or 0

    def new_event(self, event_type: str) -> Event:
        """The one event of ``event_type`` written since ``events_mark``."""
        return Event.objects.get(id__gt=self.events_before, type=event_type)

    def assertFollowsDefinition(self, event: Event) -> None:
        expected = event_payload(event.type, **VALUES_FROM_ROWS[event.type](event))
        self.assertEqual(event.payload, expected)
        self.assertEqual(event.seller_id, expected["seller"])


def charge_sample(instant=INSTANTS[0], reference=None) -> dict:
    return {
        "id": 42,
        "seller": 7,
        "phone_number": PHONE,
        "amount": 1_500,
        "created_at": instant,
        "reference": reference,
        "transaction_id": 97,
        "balance": 48_500,
    }


class DefinitionTests(SimpleTestCase):
    def test_every_event_type_has_a_payload_definition(self):
        self.assertEqual(set(PAYLOADS), set(Event.Type.values))

    def test_a_date_is_written_as_the_api_writes_it(self):
        api_date = serializers.DateTimeField()
        for instant in INSTANTS:
            with self.subTest(instant=instant):
                self.assertEqual(rfc3339(instant), api_date.to_representation(instant))

    def test_a_payload_without_one_of_its_fields_is_refused(self):
        values = charge_sample()
        del values["reference"]
        with self.assertRaisesMessage(TypeError, "['reference']"):
            event_payload(CHARGED, **values)

    def test_a_payload_with_a_field_of_another_is_refused(self):
        with self.assertRaisesMessage(TypeError, "['reversed']"):
            event_payload(CHARGED, **charge_sample(), reversed=True)

    def test_null_is_refused_where_a_field_may_not_be_null(self):
        with self.assertRaisesMessage(ValueError, "transaction_id"):
            event_payload(CHARGED, **{**charge_sample(), "transaction_id": None})


def table_rows(fields: tuple[Field, ...], prefix: str = "") -> list[str]:
    rows = []
    for field in fields:
        kind = f"{field.kind} or null" if field.nullable else str(field.kind)
        rows.append(f"| `{prefix}{field.name}` | {kind} | {field.description} |")
        rows += table_rows(field.fields, f"{prefix}{field.name}.")
    return rows


def payloads_markdown() -> str:
    """The payloads as docs/webhooks.md lists them: the event types sharing each,
    what it is, and a table of its fields."""
    sections = []
    for payload, event_types in event_types_by_payload().items():
        names = ", ".join(f"`{event_type}`" for event_type in event_types)
        table = [
            "| Field | Type | Description |",
            "| --- | --- | --- |",
            *table_rows(payload.fields),
        ]
        sections.append(f"**{names}**: {payload.description}\n\n" + "\n".join(table) + "\n")
    return "\n".join(sections)


class DocumentationTests(SimpleTestCase):
    def test_the_docs_list_each_event_type_with_the_fields_of_its_payload(self):
        expected = payloads_markdown()
        self.assertIn(
            expected,
            EVENTS_DOCS.read_text(),
            f"{EVENTS_DOCS.name} must list the payloads as defined; paste:\n\n{expected}",
        )


def samples(event_type: str, instant: datetime.datetime) -> list[dict]:
    """Values for each field of ``event_type``: once with every nullable field null,
    once with none null."""
    if event_type == Event.Type.WEBHOOK_TEST:
        return [{"endpoint": 5}]
    if event_type in {CREATED, APPROVED, REJECTED}:
        pending = {"id": 3, "seller": 7, "amount": 50_000, "status": "pending"}
        undecided = {"decided_at": None, "decided_by": None, "rejection_reason": None}
        decided = {"decided_at": instant, "decided_by": 2, "rejection_reason": "Unpaid \"'\\"}
        return [
            {**pending, "created_at": instant, **undecided, "balance": 0},
            {**pending, "created_at": instant, **decided, "balance": 9_007_199_254_740_993},
        ]
    charges = [charge_sample(instant), charge_sample(instant, reference="order-1042")]
    if event_type == CHARGED:
        return charges
    reversal = {"transaction_id": 98, "reversed_at": instant, "reversed_by": 2, "balance_after": 1}
    return [
        {
            **charge,
            "reversed": True,
            "reversed_at": instant,
            "reversal": {**reversal, "reason": reason},
        }
        for charge, reason in zip(charges, [None, "Wrong number"], strict=True)
    ]


def parameters(values: dict, prefix: str = "") -> tuple[dict, dict]:
    """SQL expressions naming a parameter for each field (an object's: a mapping),
    and those parameters."""
    expressions, params = {}, {}
    for name, value in values.items():
        if isinstance(value, dict):
            expressions[name], nested = parameters(value, f"{prefix}{name}__")
            params |= nested
        else:
            expressions[name] = f"%({prefix}{name})s"
            params[f"{prefix}{name}"] = value
    return expressions, params


class SqlRenderingTests(TestCase):
    """The charge's statement builds its payload in PostgreSQL: the SQL the
    definition makes renders what the definition renders in Python."""

    def rendered_by_postgresql(self, event_type: str, values: dict) -> dict:
        expressions, params = parameters(values)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {event_payload_sql(event_type, **expressions)}::jsonb", params)
            return json.loads(cursor.fetchone()[0])

    def test_postgresql_renders_every_payload_as_the_definition_does(self):
        for event_type in PAYLOADS:
            for instant in INSTANTS:
                for values in samples(event_type, instant):
                    with self.subTest(event_type=event_type, values=values):
                        self.assertEqual(
                            self.rendered_by_postgresql(event_type, values),
                            event_payload(event_type, **values),
                        )


class ServicePathTests(EventPayloadAssertions, TestCase):
    """The services, called directly."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.staff = staff_make(reverser=True)
        self.events_mark()
        self.credit_request = credit_request_create(seller=self.seller, amount=500)

    def test_asking_for_credit_writes_the_defined_payload(self):
        self.assertFollowsDefinition(self.new_event(CREATED))

    def test_approving_writes_the_defined_payload(self):
        credit_request_approve(credit_request_id=self.credit_request.pk, decided_by=self.staff)
        self.assertFollowsDefinition(self.new_event(APPROVED))

    def test_rejecting_writes_the_defined_payload(self):
        credit_request_reject(
            credit_request_id=self.credit_request.pk, decided_by=self.staff, reason="Unpaid"
        )
        self.assertFollowsDefinition(self.new_event(REJECTED))

    def test_charging_writes_the_defined_payload(self):
        phone_charge_create(
            seller_id=self.seller.pk, phone_number=PHONE, amount=300, reference="order-1"
        )
        self.assertFollowsDefinition(self.new_event(CHARGED))

    def test_charging_without_a_reference_writes_the_defined_payload(self):
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        self.assertFollowsDefinition(self.new_event(CHARGED))

    def test_reversing_writes_the_defined_payload(self):
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        phone_charge_reverse(charge_id=charge.pk, reversed_by=self.staff, reason="Wrong number")
        self.assertFollowsDefinition(self.new_event(REVERSED))


class PreparedChargePathTests(EventPayloadAssertions, TransactionTestCase):
    """A charge outside any transaction, as the API's charges without an
    Idempotency-Key run: its statement prepared on the connection, then executed."""

    def test_a_charge_by_the_prepared_statement_writes_the_defined_payload(self):
        seller = seller_make(balance=1_000)
        self.events_mark()
        for amount in (1, 2):  # the first prepares the statement, the second executes it
            phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=amount)
        self.assertTrue(connection.prepared_statements)
        events = Event.objects.filter(id__gt=self.events_before).order_by("id")
        self.assertEqual(len(events), 2)
        for event in events:
            with self.subTest(amount=event.payload["amount"]):
                self.assertFollowsDefinition(event)


class ApiPathTests(EventPayloadAssertions, TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.seller_client = client_for(self.seller.user)
        self.staff_client = client_for(staff_make(reverser=True))
        self.events_mark()

    def ask(self) -> int:
        response = self.seller_client.post(
            reverse("credit-request-list"), {"amount": 500}, format="json"
        )
        self.assertEqual(response.status_code, 201)
        return response.json()["id"]

    def post_as_staff(self, name: str, pk: int, data: dict | None = None):
        response = self.staff_client.post(reverse(name, args=[pk]), data or {}, format="json")
        self.assertIn(response.status_code, {200, 201})

    def charge(self, **headers) -> int:
        response = self.seller_client.post(
            reverse("phone-charge"),
            {"phone_number": PHONE, "amount": 300, "reference": "order-1"},
            format="json",
            headers=headers,
        )
        self.assertEqual(response.status_code, 201)
        return response.json()["id"]

    def test_asking_for_credit_writes_the_defined_payload(self):
        self.ask()
        self.assertFollowsDefinition(self.new_event(CREATED))

    def test_approving_writes_the_defined_payload(self):
        self.post_as_staff("credit-request-approve", self.ask())
        self.assertFollowsDefinition(self.new_event(APPROVED))

    def test_rejecting_writes_the_defined_payload(self):
        self.post_as_staff("credit-request-reject", self.ask(), {"reason": "Unpaid"})
        self.assertFollowsDefinition(self.new_event(REJECTED))

    def test_charging_writes_the_defined_payload(self):
        self.charge()
        self.assertFollowsDefinition(self.new_event(CHARGED))

    def test_charging_with_an_idempotency_key_writes_the_defined_payload(self):
        self.charge(idempotency_key="order-1")
        self.assertFollowsDefinition(self.new_event(CHARGED))

    def test_reversing_writes_the_defined_payload(self):
        self.post_as_staff("phone-charges-reverse", self.charge(), {"reason": "Wrong number"})
        self.assertFollowsDefinition(self.new_event(REVERSED))


class AdminPathTests(EventPayloadAssertions, TestCase):
    """The admin's buttons (one request, one charge) and its bulk actions."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.credit_request = credit_request_create(seller=self.seller, amount=500)
        self.client.force_login(
            get_user_model().objects.create_superuser(username="root", password=PASSWORD)
        )
        self.events_mark()

    def post(self, name: str, *args, data: dict | None = None):
        response = self.client.post(reverse(f"admin:{name}", args=args), data or {})
        self.assertEqual(response.status_code, 302)

    def run_action(self, action: str):
        self.post(
            "payments_creditrequest_changelist",
            data={"action": action, "index": 0, "_selected_action": [self.credit_request.pk]},
        )

    def test_the_approve_button_writes_the_defined_payload(self):
        self.post("payments_creditrequest_approve", self.credit_request.pk)
        self.assertFollowsDefinition(self.new_event(APPROVED))

    def test_the_reject_button_writes_the_defined_payload(self):
        self.post("payments_creditrequest_reject", self.credit_request.pk, data={"reason": "No"})
        self.assertFollowsDefinition(self.new_event(REJECTED))

    def test_the_approve_action_writes_the_defined_payload(self):
        self.run_action("approve_selected")
        self.assertFollowsDefinition(self.new_event(APPROVED))

    def test_the_reject_action_writes_the_defined_payload(self):
        self.run_action("reject_selected")
        self.assertFollowsDefinition(self.new_event(REJECTED))

    def test_the_reverse_button_writes_the_defined_payload(self):
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        self.post("payments_phonecharge_reverse", charge.pk, data={"reason": "Wrong number"})
        self.assertFollowsDefinition(self.new_event(REVERSED))


class SeedCommandPathTests(EventPayloadAssertions, TestCase):
    """``seed_demo`` asks for, approves and rejects credit and charges, through the services."""

    def test_every_event_the_demo_seed_writes_has_the_defined_payload(self):
        self.events_mark()
        call_command("seed_demo", force=True, stdout=StringIO())
        events = Event.objects.filter(id__gt=self.events_before)
        self.assertEqual(
            set(events.values_list("type", flat=True)), {CREATED, APPROVED, REJECTED, CHARGED}
        )
        for event in events:
            with self.subTest(type=event.type, id=event.pk):
                self.assertFollowsDefinition(event)
