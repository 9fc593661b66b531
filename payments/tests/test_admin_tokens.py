"""No admin page shows an API key or lets staff mint one for a seller: a key is
the seller's money. Staff see keys by prefix and revoke them."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import TestCase
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from payments.services import credit_request_create, phone_charge_create
from sellers.models import ApiKey
from testing.factories import PASSWORD, api_key_make, seller_make

User = get_user_model()


class AdminTokenTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.root = User.objects.create_superuser(username="root", password=PASSWORD)
        seller = seller_make(balance=1_000)
        cls.keys = [api_key_make(seller.user)]
        phone_charge_create(seller_id=seller.pk, phone_number="+14155550123", amount=10)
        credit_request_create(seller=seller, amount=5)
        # A user nothing protects, so its delete page lists what goes with it.
        cls.deletable = User.objects.create_user(username="leaver", password=PASSWORD)
        cls.keys.append(api_key_make(cls.deletable))

    def setUp(self):
        self.client.force_login(self.root)

    def admin_pages(self) -> list[str]:
        pages = [reverse("admin:index")]
        for model in admin.site._registry:
            prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
            pages += [reverse(f"{prefix}_changelist"), reverse(f"{prefix}_add")]
            for pk in model._default_manager.values_list("pk", flat=True):
                pages += [reverse(f"{prefix}_{page}", args=[pk]) for page in ("change", "delete")]
        return pages

    def test_no_admin_page_shows_a_token_key(self):
        self.assertTrue(self.keys)
        showing = [
            page
            for page in self.admin_pages()
            if any(key in self.client.get(page).content.decode() for key in self.keys)
        ]
        self.assertEqual(showing, [])

    def test_deleting_users_in_bulk_asks_to_confirm_naming_keys_by_prefix_only(self):
        page = self.client.post(
            reverse("admin:auth_user_changelist"),
            {
                "action": "delete_selected",
                "_selected_action": [self.deletable.pk],
            },
        )
        self.assertContains(page, f"{self.keys[-1][:8]}…")
        self.assertFalse(any(key in page.content.decode() for key in self.keys))

    def test_the_admin_cannot_mint_a_key(self):
        self.assertEqual(self.client.get(reverse("admin:sellers_apikey_add")).status_code, 403)
        with self.assertRaises(NoReverseMatch):
            reverse("admin:authtoken_tokenproxy_changelist")

    def test_the_key_list_names_each_key_by_its_prefix(self):
        page = self.client.get(reverse("admin:sellers_apikey_changelist"))
        for key in self.keys:
            self.assertContains(page, key[:8])
            self.assertNotContains(page, key)

    def test_a_key_revoked_in_the_admin_stops_working(self):
        key = self.keys[0]
        api_key = ApiKey.objects.get(prefix=key[:8])
        self.client.post(reverse("admin:sellers_apikey_delete", args=[api_key.pk]), {"post": "yes"})
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        self.assertEqual(client.get(reverse("seller-me")).status_code, 401)
        self.assertFalse(ApiKey.objects.filter(pk=api_key.pk).exists())
