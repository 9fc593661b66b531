"""API keys: what the database keeps cannot be used as a key, and each login is its own key."""

from datetime import timedelta

from django.db import connection
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from sellers.models import ApiKey
from testing.assertions import ErrorShapeAssertions
from testing.factories import PASSWORD, seller_make, staff_make


def login(user) -> str:
    response = APIClient().post(
        reverse("api-token-auth"), {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


def status_with(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(reverse("seller-list")).status_code


def database_dump() -> set[str]:
    """Every value in every table, as text, as a dump or a copy of the database shows it."""
    values = set()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            values.update(str(value) for row in cursor.fetchall() for value in row)
    return values


class DatabaseDumpTests(TestCase):
    def test_no_value_in_a_dump_of_the_database_authenticates(self):
        keys = [login(seller_make().user) for _ in range(2)] + [login(staff_make())]
        self.assertEqual([status_with(key) for key in keys], [200, 200, 200])
        # A key in a header is one word: a value with a space in it cannot be sent as one.
        candidates = {value for value in database_dump() if value and len(value.split()) == 1}
        authenticating = [value for value in candidates if status_with(value) != 401]
        self.assertEqual(authenticating, [])


class LoginTests(TestCase):
    def setUp(self):
        self.user = seller_make().user

    def test_logging_in_twice_gives_two_keys_that_both_work(self):
        first, second = login(self.user), login(self.user)
        self.assertNotEqual(first, second)
        self.assertEqual((status_with(first), status_with(second)), (200, 200))

    def test_logout_revokes_only_the_key_it_was_called_with(self):
        first, second = login(self.user), login(self.user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
        self.assertEqual(client.post(reverse("logout")).status_code, 204)
        self.assertEqual((status_with(first), status_with(second)), (401, 200))


class ExpiryTests(ErrorShapeAssertions, TestCase):
    def setUp(self):
        self.user = seller_make().user

    def test_without_a_ttl_a_key_never_expires(self):
        login(self.user)
        self.assertIsNone(ApiKey.objects.get().expires_at)

    @override_settings(PAYLEDGER_API_KEY_TTL_DAYS=30)
    def test_with_a_ttl_a_key_expires_that_many_days_after_login(self):
        login(self.user)
        api_key = ApiKey.objects.get()
        self.assertEqual(api_key.expires_at - api_key.created_at, timedelta(days=30))

    def test_an_expired_key_is_refused_as_expired(self):
        key = login(self.user)
        ApiKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        response = client.get(reverse("seller-me"))
        body = self.assertErrorResponse(response, 401, "authentication_failed")
        self.assertEqual(body["message"], "Token has expired.")

    def test_a_key_before_its_expiry_works(self):
        key = login(self.user)
        ApiKey.objects.update(expires_at=timezone.now() + timedelta(minutes=1))
        self.assertEqual(status_with(key), 200)

    def test_logging_in_clears_the_users_expired_keys(self):
        login(self.user)
        ApiKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        login(self.user)
        self.assertEqual(ApiKey.objects.filter(user=self.user).count(), 1)
        self.assertIsNone(ApiKey.objects.get().expires_at)


@override_settings(PAYLEDGER_API_KEYS_PER_USER=2)
class KeysPerUserTests(TestCase):
    def test_a_login_beyond_the_cap_revokes_the_users_oldest_key(self):
        user = seller_make().user
        oldest, middle, newest = login(user), login(user), login(user)
        self.assertEqual([status_with(key) for key in (oldest, middle, newest)], [401, 200, 200])

    def test_the_cap_counts_each_users_keys_apart(self):
        first, second = seller_make().user, seller_make().user
        keys = [login(first), login(first), login(second)]
        self.assertEqual([status_with(key) for key in keys], [200, 200, 200])


class ApiKeyListApiTests(ErrorShapeAssertions, TestCase):
    def setUp(self):
        self.user = seller_make().user
        self.first, self.second = login(self.user), login(self.user)
        self.others = login(seller_make().user)
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {self.first}")

    def test_the_list_names_the_callers_keys_by_prefix_newest_first(self):
        response = self.client.get(reverse("api-key-list"))
        self.assertEqual(response.status_code, 200)
        keys = response.json()["results"]
        self.assertEqual([key["prefix"] for key in keys], [self.second[:8], self.first[:8]])
        self.assertEqual(set(keys[0]), {"prefix", "created_at", "expires_at"})

    def test_the_list_never_shows_a_key_or_its_digest(self):
        body = self.client.get(reverse("api-key-list")).content.decode()
        for secret in [self.first, self.second, *ApiKey.objects.values_list("digest", flat=True)]:
            self.assertNotIn(secret, body)

    def test_staff_list_only_their_own_keys(self):
        staff = staff_make()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {login(staff)}")
        keys = client.get(reverse("api-key-list")).json()["results"]
        self.assertEqual(len(keys), 1)

    def test_the_list_without_a_key_is_refused(self):
        response = APIClient().get(reverse("api-key-list"))
        self.assertErrorResponse(response, 401, "not_authenticated")


class ApiKeyRevokeApiTests(ErrorShapeAssertions, TestCase):
    def setUp(self):
        self.user = seller_make().user
        self.first, self.second = login(self.user), login(self.user)
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {self.first}")

    def revoke(self, prefix: str):
        return self.client.delete(reverse("api-key-detail", args=[prefix]))

    def test_revoking_another_of_the_callers_keys_stops_only_that_key(self):
        self.assertEqual(self.revoke(self.second[:8]).status_code, 204)
        self.assertEqual((status_with(self.first), status_with(self.second)), (200, 401))

    def test_revoking_the_key_in_use_stops_it(self):
        self.assertEqual(self.revoke(self.first[:8]).status_code, 204)
        self.assertEqual((status_with(self.first), status_with(self.second)), (401, 200))

    def test_another_users_key_is_not_found_and_keeps_working(self):
        others = login(seller_make().user)
        self.assertErrorResponse(self.revoke(others[:8]), 404, "not_found")
        self.assertEqual(status_with(others), 200)

    def test_an_unknown_prefix_is_not_found(self):
        mine = {self.first[:8], self.second[:8]}
        unknown = next(
            prefix for prefix in ("00000000", "11111111", "22222222") if prefix not in mine
        )
        self.assertErrorResponse(self.revoke(unknown), 404, "not_found")
        self.assertEqual(ApiKey.objects.count(), 2)
