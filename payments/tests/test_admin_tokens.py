"""No admin page shows an API token or lets staff mint one for a seller: a token
is the seller's money."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import TestCase
from django.urls import NoReverseMatch, reverse
from rest_framework.authtoken.models import Token

from payments.services import credit_request_create, phone_charge_create
from sellers.tests.factories import PASSWORD, client_for, seller_make

User = get_user_model()


class AdminTokenTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.root = User.objects.create_superuser(username="root", password=PASSWORD)
        seller = seller_make(balance=1_000)
        client_for(seller.user)
        phone_charge_create(seller_id=seller.pk, phone_number="+14155550123", amount=10)
        credit_request_create(seller=seller, amount=5)
        # A user nothing protects, so its delete page lists what goes with it.
        cls.deletable = User.objects.create_user(username="leaver", password=PASSWORD)
        client_for(cls.deletable)
        cls.keys = list(Token.objects.values_list("key", flat=True))

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

    def test_deleting_users_in_bulk_asks_to_confirm_without_showing_token_keys(self):
        page = self.client.post(
            reverse("admin:auth_user_changelist"),
            {
                "action": "delete_selected",
                "_selected_action": [self.deletable.pk],
            },
        )
        self.assertContains(page, "Token: (hidden)")
        self.assertFalse(any(key in page.content.decode() for key in self.keys))

    def test_the_admin_has_no_page_for_tokens(self):
        with self.assertRaises(NoReverseMatch):
            reverse("admin:authtoken_tokenproxy_changelist")
