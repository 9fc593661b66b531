"""`python manage.py create_api_key <username>`: a key for a user who has no way to log
in through the API yet (or a script's own key), made by the service login uses."""

from io import StringIO

from django.core.management import CommandError, call_command
from django.test import TestCase
from django.urls import reverse
from rest_framework.test import APIClient

from sellers.models import ApiKey
from sellers.services import api_key_digest
from testing.factories import seller_make, staff_make


def create_api_key(username: str) -> str:
    out = StringIO()
    call_command("create_api_key", username, stdout=out)
    return out.getvalue().strip()


class CreateApiKeyTests(TestCase):
    def test_the_printed_key_authenticates_as_the_user(self):
        staff = staff_make()
        seller_make(name="Someone else's shop")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {create_api_key(staff.username)}")

        response = client.get(reverse("seller-list"))

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["count"], 1)

    def test_the_database_keeps_only_the_keys_digest(self):
        staff = staff_make()
        key = create_api_key(staff.username)
        self.assertEqual(ApiKey.objects.get(user=staff).digest, api_key_digest(key))
        self.assertFalse(ApiKey.objects.filter(digest=key).exists())

    def test_an_unknown_user_is_refused_and_no_key_is_made(self):
        with self.assertRaisesMessage(CommandError, "No user is named 'nobody'."):
            create_api_key("nobody")
        self.assertFalse(ApiKey.objects.exists())

    def test_an_inactive_user_is_refused_and_no_key_is_made(self):
        staff = staff_make()
        staff.is_active = False
        staff.save(update_fields=["is_active"])
        with self.assertRaisesMessage(CommandError, "inactive"):
            create_api_key(staff.username)
        self.assertFalse(ApiKey.objects.exists())
