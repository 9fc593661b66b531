from django.contrib.auth.models import Permission
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APITestCase

from payments.models import Event
from payments.services import credit_request_create
from testing.assertions import ErrorShapeAssertions
from testing.factories import client_for, seller_make, staff_make
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_create
from webhooks.tests.resolver import resolving_to


class WebhookEndpointApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.url = reverse("webhook-endpoint-list")
        self.seller = seller_make()
        self.client = client_for(self.seller.user)

    def register(self, url="https://shop.example.com/hooks", types=("phone_charge.created",)):
        with resolving_to("93.184.215.14"):
            return self.client.post(
                self.url, {"url": url, "event_types": list(types)}, format="json"
            )

    def test_a_seller_registers_an_endpoint_and_sees_its_secret_once(self):
        created = self.register()
        self.assertEqual(created.status_code, status.HTTP_201_CREATED, created.content)
        secret = created.json()["secret"]
        self.assertTrue(secret.startswith("whsec_"))
        self.assertEqual(WebhookEndpoint.objects.get().secret, secret)
        shown = self.client.get(reverse("webhook-endpoint-detail", args=[created.json()["id"]]))
        self.assertNotIn("secret", shown.json())
        self.assertNotIn("secret", self.client.get(self.url).json()["results"][0])

    def test_a_new_endpoint_starts_after_the_events_already_written(self):
        seller = seller_make(balance=100)
        endpoint = webhook_endpoint_create(
            seller=seller, url="http://127.0.0.1:8400/", event_types=["phone_charge.created"]
        )
        self.assertEqual(endpoint.last_event_id, Event.objects.filter(seller=seller).last().pk)

    def test_a_seller_lists_only_its_own_endpoints(self):
        self.register()
        webhook_endpoint_create(
            seller=seller_make(), url="http://127.0.0.1:8400/", event_types=["phone_charge.created"]
        )
        self.assertEqual(self.client.get(self.url).json()["count"], 1)

    def test_staff_with_the_view_permission_see_every_endpoint_without_secrets(self):
        self.register()
        staff = staff_make(approver=False)
        staff.user_permissions.add(Permission.objects.get(codename="view_webhookendpoint"))
        body = client_for(staff).get(self.url).json()
        self.assertEqual(body["count"], 1)
        self.assertNotIn("secret", body["results"][0])

    def test_staff_cannot_register_an_endpoint(self):
        with resolving_to("93.184.215.14"):
            response = client_for(staff_make()).post(
                self.url,
                {"url": "https://a.example.com/", "event_types": ["phone_charge.created"]},
                format="json",
            )
        self.assertErrorResponse(response, status.HTTP_403_FORBIDDEN, "permission_denied")

    def test_a_seller_deletes_its_endpoint(self):
        endpoint_id = self.register().json()["id"]
        response = self.client.delete(reverse("webhook-endpoint-detail", args=[endpoint_id]))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(WebhookEndpoint.objects.exists())

    def test_a_seller_cannot_delete_another_seller_endpoint(self):
        endpoint = webhook_endpoint_create(
            seller=seller_make(), url="http://127.0.0.1:8400/", event_types=["phone_charge.created"]
        )
        response = self.client.delete(reverse("webhook-endpoint-detail", args=[endpoint.pk]))
        self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")
        self.assertTrue(WebhookEndpoint.objects.exists())

    def test_a_second_endpoint_for_the_same_url_is_refused_naming_the_first(self):
        first = self.register().json()["id"]
        again = self.register(types=["credit_request.approved"])
        body = self.assertErrorResponse(again, status.HTTP_409_CONFLICT, "duplicate_url")
        self.assertEqual(body["endpoint_id"], first)
        self.assertEqual(WebhookEndpoint.objects.count(), 1)

    def test_another_seller_may_register_the_same_url(self):
        self.register()
        with resolving_to("93.184.215.14"):
            response = client_for(seller_make().user).post(
                self.url,
                {"url": "https://shop.example.com/hooks", "event_types": ["phone_charge.created"]},
                format="json",
            )
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)

    @override_settings(PAYLEDGER_WEBHOOK_ENDPOINTS_MAX=2)
    def test_a_seller_at_the_endpoint_limit_is_refused(self):
        for n in range(2):
            self.assertEqual(self.register(f"https://shop.example.com/{n}").status_code, 201)
        response = self.register("https://shop.example.com/2")
        body = self.assertErrorResponse(response, status.HTTP_409_CONFLICT, "endpoint_limit")
        self.assertEqual(body["limit"], 2)
        self.assertEqual(WebhookEndpoint.objects.count(), 2)

    @override_settings(PAYLEDGER_WEBHOOK_ENDPOINTS_MAX=2)
    def test_a_deleted_endpoint_frees_its_place_under_the_limit(self):
        first = self.register("https://shop.example.com/0").json()["id"]
        self.register("https://shop.example.com/1")
        self.client.delete(reverse("webhook-endpoint-detail", args=[first]))
        self.assertEqual(self.register("https://shop.example.com/2").status_code, 201)

    def test_the_database_refuses_a_second_endpoint_for_the_same_url(self):
        self.register()
        endpoint = WebhookEndpoint.objects.get()
        with self.assertRaises(IntegrityError), transaction.atomic():
            WebhookEndpoint.objects.create(
                seller=self.seller, url=endpoint.url, event_types=endpoint.event_types
            )

    def test_an_unknown_event_type_is_refused(self):
        response = self.register(types=["charge.made"])
        self.assertFieldError(response, "event_types")
        self.assertFalse(WebhookEndpoint.objects.exists())

    def test_no_event_types_is_refused(self):
        response = self.register(types=[])
        self.assertFieldError(response, "event_types")

    def test_a_seller_sees_its_endpoint_delivery_attempts_newest_first(self):
        endpoint = WebhookEndpoint.objects.get(pk=self.register().json()["id"])
        credit_request_create(seller=self.seller, amount=5)
        event = Event.objects.latest("id")
        for attempt, status_code in enumerate([500, 200], start=1):
            WebhookDelivery.objects.create(
                endpoint=endpoint,
                event=event,
                attempt=attempt,
                delivered=status_code == 200,
                status_code=status_code,
                duration_ms=5,
            )
        body = self.client.get(reverse("webhook-endpoint-deliveries", args=[endpoint.pk])).json()
        self.assertEqual([d["status_code"] for d in body["results"]], [200, 500])

    def test_another_seller_cannot_see_the_delivery_attempts(self):
        endpoint_id = self.register().json()["id"]
        response = client_for(seller_make().user).get(
            reverse("webhook-endpoint-deliveries", args=[endpoint_id])
        )
        self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")


@override_settings(PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK=False)
class WebhookUrlSafetyTests(ErrorShapeAssertions, APITestCase):
    """Server-side request forgery: only HTTPS to public addresses, as production runs."""

    def setUp(self):
        self.client = client_for(seller_make().user)

    def register(self, url: str):
        return self.client.post(
            reverse("webhook-endpoint-list"),
            {"url": url, "event_types": ["phone_charge.created"]},
            format="json",
        )

    def assertRefused(self, response, code: str | None = None):
        errors = self.assertFieldError(response, "url")
        self.assertFalse(WebhookEndpoint.objects.exists())
        if code is not None:
            self.assertEqual([error["code"] for error in errors], [code])

    def test_plain_http_is_refused(self):
        with resolving_to("93.184.215.14"):
            self.assertRefused(self.register("http://shop.example.com/hooks"))

    def test_a_public_https_url_is_accepted(self):
        with resolving_to("93.184.215.14"):
            response = self.register("https://shop.example.com/hooks")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)

    def test_loopback_is_refused(self):
        self.assertRefused(self.register("https://127.0.0.1/hooks"))
        self.assertRefused(self.register("https://[::1]/hooks"))

    def test_a_name_that_resolves_to_loopback_is_refused(self):
        with resolving_to("93.184.215.14", "127.0.0.1"):
            self.assertRefused(self.register("https://sneaky.example.com/hooks"))

    def test_private_addresses_are_refused(self):
        for address in ("10.0.0.5", "172.16.3.4", "192.168.1.1", "fd00::1", "100.64.0.1"):
            with self.subTest(address), resolving_to(address):
                self.assertRefused(self.register("https://internal.example.com/hooks"))

    def test_link_local_and_the_cloud_metadata_address_are_refused(self):
        for address in ("169.254.169.254", "fe80::1", "::ffff:169.254.169.254"):
            with self.subTest(address), resolving_to(address):
                self.assertRefused(self.register("https://metadata.example.com/latest"))

    def test_the_metadata_address_through_the_nat64_prefix_is_refused(self):
        self.assertRefused(self.register("https://[64:ff9b::a9fe:a9fe]/x"), "forbidden_address")

    def test_loopback_through_a_6to4_address_is_refused(self):
        self.assertRefused(self.register("https://[2002:7f00:1::]/x"), "forbidden_address")

    def test_the_metadata_address_in_ipv4_compatible_form_is_refused(self):
        self.assertRefused(self.register("https://[::169.254.169.254]/x"), "forbidden_address")

    def test_a_site_local_address_is_refused(self):
        self.assertRefused(self.register("https://[fec0::1]/x"), "forbidden_address")

    def test_an_unclosed_ipv6_bracket_is_refused_on_url(self):
        self.assertRefused(self.register("https://[::1"), "invalid_url")

    def test_a_bracketed_host_that_is_not_an_ipv6_address_is_refused_on_url(self):
        self.assertRefused(self.register("https://[abc]/"), "invalid_url")

    def test_a_name_that_does_not_resolve_is_refused(self):
        self.assertRefused(self.register("https://no-such-host.invalid/hooks"))

    def test_credentials_in_the_url_are_refused(self):
        with resolving_to("93.184.215.14"):
            self.assertRefused(self.register("https://user:pw@shop.example.com/hooks"))

    @override_settings(PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK=True)
    def test_the_test_setting_allows_loopback_over_http_but_still_not_private(self):
        response = self.register("http://127.0.0.1:8400/hooks")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        with resolving_to("10.0.0.5"):
            self.assertFieldError(self.register("http://internal.example.com/"), "url")
