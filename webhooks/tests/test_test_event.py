"""Sending a test event to an endpoint: a ``webhook.test`` event for that endpoint
alone, delivered like any other, moving no money; from the API and the admin."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework import status
from standardwebhooks import Webhook

from payments.models import Event, Transaction
from payments.selectors import ledger_problems
from payments.services import phone_charge_create
from testing.assertions import ErrorShapeAssertions
from testing.factories import PASSWORD, client_for, seller_make, staff_make
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_deliver_next, webhook_endpoint_create
from webhooks.tests.receiver import Receiver

User = get_user_model()


class TestEventCase(ErrorShapeAssertions, TestCase):
    def setUp(self):
        self.receiver = Receiver(lambda event_id, nth: 200)
        self.addCleanup(self.receiver.stop)
        self.seller = seller_make(balance=500)
        self.endpoint = webhook_endpoint_create(
            seller=self.seller, url=self.receiver.url("one"), event_types=["phone_charge.created"]
        )

    def send(self, user=None, endpoint=None):
        endpoint = endpoint or self.endpoint
        client = client_for(user or self.seller.user)
        return client.post(reverse("webhook-endpoint-send-test-event", args=[endpoint.pk]))

    def deliver_all(self) -> None:
        while webhook_deliver_next():
            pass


class SendTestEventApiTests(TestEventCase):
    def test_the_owner_queues_a_webhook_test_event_naming_the_endpoint(self):
        response = self.send()
        self.assertEqual(response.status_code, status.HTTP_202_ACCEPTED, response.content)
        body = response.json()
        self.assertEqual(body["type"], "webhook.test")
        self.assertEqual(body["data"], {"endpoint": self.endpoint.pk})
        self.assertEqual(body["seller"], self.seller.pk)
        self.assertEqual(Event.objects.get(pk=body["id"]).type, Event.Type.WEBHOOK_TEST)

    @override_settings(PAYLEDGER_THROTTLE_RATES={"webhook_test": "2/minute"})
    def test_past_the_rate_a_test_event_is_throttled_and_none_is_written(self):
        self.send()
        self.send()
        self.assertErrorResponse(self.send(), status.HTTP_429_TOO_MANY_REQUESTS, "throttled")
        self.assertEqual(Event.objects.filter(type=Event.Type.WEBHOOK_TEST).count(), 2)

    def test_the_test_event_is_delivered_signed_to_that_endpoint(self):
        event_id = self.send().json()["id"]
        self.deliver_all()
        [received] = self.receiver.received
        self.assertEqual(received.event_id, event_id)
        event = Webhook(self.endpoint.secret).verify(received.body, received.headers)
        self.assertEqual(event["type"], "webhook.test")
        self.assertTrue(WebhookDelivery.objects.get(event_id=event_id).delivered)

    def test_another_endpoint_of_the_seller_does_not_get_it(self):
        webhook_endpoint_create(
            seller=self.seller,
            url=self.receiver.url("two"),
            event_types=["phone_charge.created", "credit_request.created"],
        )
        self.send()
        self.deliver_all()
        self.assertEqual([r.path for r in self.receiver.received], ["one"])

    def test_it_comes_in_order_after_the_endpoints_earlier_events(self):
        charge = phone_charge_create(
            seller_id=self.seller.pk, phone_number="+14155550123", amount=1
        )
        test_event_id = self.send().json()["id"]
        self.deliver_all()
        types = [r.headers["webhook-id"] for r in self.receiver.received]
        charge_event = Event.objects.get(type="phone_charge.created", payload__id=charge.pk)
        self.assertEqual(types, [str(charge_event.pk), str(test_event_id)])

    def test_it_moves_no_money(self):
        self.send()
        self.deliver_all()
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 500)
        self.assertEqual(Transaction.objects.filter(seller=self.seller).count(), 1)  # the credit
        self.assertEqual(ledger_problems(), [])

    def test_another_seller_cannot_send_one(self):
        response = self.send(user=seller_make().user)
        self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")
        self.assertFalse(Event.objects.filter(type=Event.Type.WEBHOOK_TEST).exists())

    def test_staff_cannot_send_one_through_the_api(self):
        response = self.send(user=staff_make())
        self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
        self.assertFalse(Event.objects.filter(type=Event.Type.WEBHOOK_TEST).exists())

    def test_without_a_token_nothing_is_queued(self):
        response = self.client.post(
            reverse("webhook-endpoint-send-test-event", args=[self.endpoint.pk])
        )
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertFalse(Event.objects.filter(type=Event.Type.WEBHOOK_TEST).exists())

    def test_a_failing_endpoint_refuses_it(self):
        WebhookEndpoint.objects.update(
            status=WebhookEndpoint.Status.FAILING, failing_since=timezone.now()
        )
        response = self.send()
        self.assertErrorResponse(response, status.HTTP_409_CONFLICT, "endpoint_failing")
        self.assertFalse(Event.objects.filter(type=Event.Type.WEBHOOK_TEST).exists())

    def test_an_endpoint_cannot_subscribe_to_test_events(self):
        response = client_for(self.seller.user).post(
            reverse("webhook-endpoint-list"),
            {"url": self.receiver.url("three"), "event_types": ["webhook.test"]},
            format="json",
        )
        self.assertFieldError(response, "event_types")
        self.assertEqual(WebhookEndpoint.objects.count(), 1)


class SendTestEventAdminTests(TestEventCase):
    def staff_with(self, *codenames: str):
        user = User.objects.create_user(username="support", password=PASSWORD, is_staff=True)
        for codename in codenames:
            user.user_permissions.add(Permission.objects.get(codename=codename))
        self.client.force_login(user)

    def run_action(self):
        return self.client.post(
            reverse("admin:webhooks_webhookendpoint_changelist"),
            {"action": "send_test_event", "_selected_action": [self.endpoint.pk]},
            follow=True,
        )

    def test_staff_who_may_change_endpoints_send_a_test_event_that_is_delivered(self):
        self.staff_with("view_webhookendpoint", "change_webhookendpoint")
        response = self.run_action()
        self.assertContains(response, "Queued 1 test event(s)")
        self.deliver_all()
        [received] = self.receiver.received
        event = Webhook(self.endpoint.secret).verify(received.body, received.headers)
        self.assertEqual(event["data"], {"endpoint": self.endpoint.pk})

    def test_staff_who_may_only_view_endpoints_are_not_offered_the_action(self):
        self.staff_with("view_webhookendpoint")
        response = self.client.get(reverse("admin:webhooks_webhookendpoint_changelist"))
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, "send_test_event")
        self.run_action()
        self.assertFalse(Event.objects.filter(type=Event.Type.WEBHOOK_TEST).exists())

    def test_the_admin_never_shows_a_secret(self):
        self.staff_with("view_webhookendpoint", "change_webhookendpoint")
        page = self.client.get(
            reverse("admin:webhooks_webhookendpoint_change", args=[self.endpoint.pk])
        )
        self.assertEqual(page.status_code, 200)
        self.assertNotContains(page, self.endpoint.secret)
        self.assertNotContains(page, "whsec_")
