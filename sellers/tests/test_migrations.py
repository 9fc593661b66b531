"""Data migrations, run forward over rows written by the schema before them."""

import importlib

from django.db import connection
from rest_framework.test import APIClient

from testing.migrations import MigrationTestCase

DRF_KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # DRF's documentation's example key
# rest_framework.authtoken's migrations, which made the table its tokens lived in.
DRF_MIGRATIONS = [
    "0001_initial",
    "0002_auto_20160226_1747",
    "0003_tokenproxy",
    "0004_alter_tokenproxy_options",
]


def drf_token_table_create(state):
    """authtoken_token as DRF's own migrations made it, when the app was installed."""
    for name in DRF_MIGRATIONS:
        module = importlib.import_module(f"rest_framework.authtoken.migrations.{name}")
        with connection.schema_editor() as editor:
            state = module.Migration(name, "authtoken").apply(state, editor)
    return state


class DrfTokensBecomeApiKeysMigrationTests(MigrationTestCase):
    before = [("sellers", "0001_initial")]
    after = [("sellers", "0002_api_keys")]

    def setUp(self):
        super().setUp()
        old = drf_token_table_create(self.executor.loader.project_state(self.before)).apps
        user = old.get_model("auth", "User").objects.create(username="alice")
        old.get_model("sellers", "Seller").objects.create(user_id=user.pk, name="Alice")
        old.get_model("authtoken", "Token").objects.create(key=DRF_KEY, user_id=user.pk)

    def test_a_key_issued_by_drf_authenticates_after_the_migration(self):
        self.migrate_forward()
        # The code authenticates against today's schema: the later migrations too.
        self.migrate_to_latest()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {DRF_KEY}")
        response = client.get("/api/sellers/me/")
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["username"], "alice")

    def test_the_migration_keeps_the_keys_digest_and_prefix_and_drops_drfs_table(self):
        new = self.migrate_forward()
        api_key = new.get_model("sellers", "ApiKey").objects.get()
        self.assertEqual(
            (api_key.prefix, api_key.expires_at, api_key.user.username),
            (DRF_KEY[:8], None, "alice"),
        )
        self.assertNotEqual(api_key.digest, DRF_KEY)
        with connection.cursor() as cursor:
            self.assertNotIn("authtoken_token", connection.introspection.table_names(cursor))
