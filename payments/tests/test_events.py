"""Events: one per movement or decision, written in its transaction, and the feed."""

from unittest import mock

from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import TestCase
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APITestCase

from payments.exceptions import AlreadyDecided, AlreadyReversed, InsufficientBalance
from payments.models import Event, PhoneCharge
from payments.services import (
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
    phone_charge_reverse,
)
from testing.assertions import ErrorShapeAssertions
from testing.factories import client_for, seller_make, staff_make
from testing.keyed_requests import charge, crash_while_recording_the_answer

PHONE = "+14155550123"


class EventWritingTests(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.staff = staff_make()
        self.first_new_id = Event.objects.latest("id").pk

    def new_events(self):
        return Event.objects.filter(id__gt=self.first_new_id).order_by("id")

    def api_representation(self, path: str) -> dict:
        return client_for(self.staff).get(path).json()

    def test_asking_for_credit_writes_one_created_event_with_the_request_and_balance(self):
        credit_request = credit_request_create(seller=self.seller, amount=500)
        event = self.new_events().get()
        shown = self.api_representation(reverse("credit-request-detail", args=[credit_request.pk]))
        self.assertEqual((event.type, event.seller_id), ("credit_request.created", self.seller.pk))
        self.assertEqual(event.payload, {**shown, "balance": 1_000})

    def test_approval_writes_one_approved_event_with_the_new_balance(self):
        credit_request = credit_request_create(seller=self.seller, amount=500)
        credit_request_approve(credit_request_id=credit_request.pk, decided_by=self.staff)
        event = self.new_events().last()
        shown = self.api_representation(reverse("credit-request-detail", args=[credit_request.pk]))
        self.assertEqual(event.type, "credit_request.approved")
        self.assertEqual(event.payload, {**shown, "balance": 1_500})

    def test_rejection_writes_one_rejected_event_with_the_reason_and_unchanged_balance(self):
        credit_request = credit_request_create(seller=self.seller, amount=500)
        credit_request_reject(
            credit_request_id=credit_request.pk, decided_by=self.staff, reason="Unpaid"
        )
        event = self.new_events().last()
        self.assertEqual(event.type, "credit_request.rejected")
        self.assertEqual(
            (event.payload["status"], event.payload["rejection_reason"], event.payload["balance"]),
            ("rejected", "Unpaid", 1_000),
        )

    def test_a_charge_event_is_the_charge_as_the_api_answered_it(self):
        # The payload is built in SQL by the charge's statement; it must equal the API's answer.
        answer = client_for(self.seller.user).post(
            reverse("phone-charge"),
            {"phone_number": PHONE, "amount": 300, "reference": "order-1"},
            format="json",
        )
        event = self.new_events().get()
        self.assertEqual(event.type, "phone_charge.created")
        self.assertEqual(event.payload, answer.json())
        self.assertEqual(event.payload["balance"], 700)

    def test_a_charge_without_reference_has_a_null_reference_in_its_event(self):
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)
        self.assertIsNone(self.new_events().get().payload["reference"])
        self.assertEqual(self.new_events().get().payload["id"], charge.pk)

    def test_a_reversal_writes_one_reversed_event_as_the_charge_api_shows_it(self):
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        reverser = staff_make(reverser=True)
        answer = client_for(reverser).post(
            reverse("phone-charges-reverse", args=[charge.pk]),
            {"reason": "Wrong number"},
            format="json",
        )
        event = self.new_events().last()
        self.assertEqual(event.type, "phone_charge.reversed")
        self.assertEqual(event.payload, answer.json())
        self.assertEqual(event.payload["reversal"]["balance_after"], 1_000)

    def test_a_second_reversal_writes_no_event(self):
        charge = phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
        reverser = staff_make(reverser=True)
        phone_charge_reverse(charge_id=charge.pk, reversed_by=reverser)
        with self.assertRaises(AlreadyReversed):
            phone_charge_reverse(charge_id=charge.pk, reversed_by=reverser)
        self.assertEqual(self.new_events().filter(type="phone_charge.reversed").count(), 1)

    def test_event_ids_grow_in_the_order_things_happened(self):
        credit_request = credit_request_create(seller=self.seller, amount=500)
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1)
        credit_request_approve(credit_request_id=credit_request.pk, decided_by=self.staff)
        self.assertEqual(
            list(self.new_events().values_list("type", flat=True)),
            ["credit_request.created", "phone_charge.created", "credit_request.approved"],
        )

    def test_a_refused_charge_writes_no_event(self):
        with self.assertRaises(InsufficientBalance):
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=1_001)
        self.assertFalse(self.new_events().exists())

    def test_a_second_decision_writes_no_event(self):
        credit_request = credit_request_create(seller=self.seller, amount=500)
        credit_request_approve(credit_request_id=credit_request.pk, decided_by=self.staff)
        with self.assertRaises(AlreadyDecided):
            credit_request_reject(credit_request_id=credit_request.pk, decided_by=self.staff)
        self.assertEqual(self.new_events().count(), 2)

    def test_a_charge_rolled_back_after_it_ran_leaves_no_event(self):
        with self.assertRaises(RuntimeError), transaction.atomic():
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=300)
            raise RuntimeError("the caller's transaction fails after the charge")
        self.assertFalse(self.new_events().exists())
        self.assertFalse(PhoneCharge.objects.exists())

    def test_an_approval_rolled_back_after_it_ran_leaves_no_event(self):
        credit_request = credit_request_create(seller=self.seller, amount=500)
        with self.assertRaises(RuntimeError), transaction.atomic():
            credit_request_approve(credit_request_id=credit_request.pk, decided_by=self.staff)
            raise RuntimeError("the caller's transaction fails after the approval")
        self.assertEqual(list(self.new_events().values_list("type", flat=True)), [
            "credit_request.created"
        ])  # fmt: skip

    def test_an_event_that_cannot_be_written_undoes_the_approval(self):
        credit_request = credit_request_create(seller=self.seller, amount=500)
        with (
            mock.patch.object(Event.objects, "create", side_effect=RuntimeError("disk full")),
            self.assertRaises(RuntimeError),
        ):
            credit_request_approve(credit_request_id=credit_request.pk, decided_by=self.staff)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 1_000)
        credit_request.refresh_from_db()
        self.assertEqual(credit_request.status, "pending")


class ChargeCrashTests(APITestCase):
    """The crash-between style of the idempotency tests: a charge whose request
    fails after the money moved commits nothing, event included; one that
    commits has exactly one event."""

    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)

    def test_a_crash_before_the_key_is_recorded_leaves_no_charge_event(self):
        with crash_while_recording_the_answer(self):
            charge(self.client, key="order-1", amount=200)
        self.assertFalse(Event.objects.filter(type="phone_charge.created").exists())

    def test_a_committed_charge_replayed_has_exactly_one_event(self):
        first = charge(self.client, key="order-1")
        charge(self.client, key="order-1")
        event = Event.objects.get(type="phone_charge.created")
        self.assertEqual(event.payload["id"], first.json()["id"])


class EventListApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.url = reverse("event-list")
        self.seller = seller_make(balance=1_000)
        self.other = seller_make(balance=50)
        for amount in (1, 2, 3):
            phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=amount)

    def own_ids(self) -> list[int]:
        return list(Event.objects.filter(seller=self.seller).values_list("id", flat=True))

    def test_a_seller_lists_its_own_events_oldest_first(self):
        body = client_for(self.seller.user).get(self.url).json()
        self.assertEqual([e["id"] for e in body["results"]], self.own_ids())
        self.assertEqual(set(body["results"][0]), {"id", "type", "seller", "created_at", "data"})

    def test_after_lists_only_later_events(self):
        ids = self.own_ids()
        body = client_for(self.seller.user).get(self.url, {"after": ids[1]}).json()
        self.assertEqual([e["id"] for e in body["results"]], ids[2:])

    def test_type_filters_the_events(self):
        body = client_for(self.seller.user).get(self.url, {"type": "phone_charge.created"}).json()
        self.assertEqual([e["data"]["amount"] for e in body["results"]], [1, 2, 3])

    def test_pages_follow_each_other_without_losing_an_event(self):
        client = client_for(self.seller.user)
        page = client.get(self.url, {"limit": 2}).json()
        seen = [e["id"] for e in page["results"]]
        phone_charge_create(seller_id=self.seller.pk, phone_number=PHONE, amount=4)
        while page["next"]:
            page = client.get(page["next"]).json()
            seen += [e["id"] for e in page["results"]]
        self.assertEqual(seen, self.own_ids())

    def test_an_unknown_type_is_refused(self):
        response = client_for(self.seller.user).get(self.url, {"type": "charge.made"})
        self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "validation_error")

    def test_a_negative_after_is_refused(self):
        response = client_for(self.seller.user).get(self.url, {"after": "-1"})
        self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "validation_error")

    def test_staff_with_the_view_permission_see_every_seller_events(self):
        staff = staff_make(approver=False)
        staff.user_permissions.add(Permission.objects.get(codename="view_event"))
        body = client_for(staff).get(self.url, {"limit": 500}).json()
        self.assertEqual(len(body["results"]), Event.objects.count())

    def test_staff_without_the_view_permission_see_no_events(self):
        body = client_for(staff_make(approver=False)).get(self.url).json()
        self.assertEqual(body["results"], [])

    def test_events_need_a_token(self):
        response = self.client.get(self.url)
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "not_authenticated")
