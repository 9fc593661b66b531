from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APITestCase

from sellers.models import ApiKey, Seller
from sellers.services import api_key_digest
from testing.assertions import ErrorShapeAssertions
from testing.factories import (
    PASSWORD,
    WEAK_PASSWORDS,
    client_for,
    seller_make,
    staff_make,
)

User = get_user_model()
STRONG_PASSWORD = "tangerine-Orbit-4417"


class SellerRegisterApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.url = reverse("seller-list")

    def register(self, **fields):
        body = {"username": "alice", "password": STRONG_PASSWORD, "name": "Alice"} | fields
        return self.client.post(self.url, body, format="json")

    def assertNoSellerCreated(self):
        self.assertFalse(User.objects.exists())
        self.assertFalse(Seller.objects.exists())

    def test_registration_creates_a_seller_with_zero_balance(self):
        response = self.register()
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        body = response.json()
        self.assertTrue(body.pop("created_at"))
        seller = Seller.objects.get()
        self.assertEqual(
            body, {"id": seller.pk, "username": "alice", "name": "Alice", "balance": 0}
        )
        self.assertEqual(seller.balance, 0)

    def test_registration_response_never_contains_the_password(self):
        response = self.register()
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertNotIn("password", response.json())
        self.assertNotIn(STRONG_PASSWORD, response.content.decode())

    def test_registration_stores_a_usable_hashed_password(self):
        self.register()
        user = User.objects.get(username="alice")
        self.assertNotEqual(user.password, STRONG_PASSWORD)
        self.assertTrue(user.check_password(STRONG_PASSWORD))

    def test_registered_seller_is_not_staff(self):
        self.register(is_staff=True)
        self.assertFalse(User.objects.get(username="alice").is_staff)

    def test_duplicate_username_is_refused_with_a_username_error(self):
        existing = seller_make()
        response = self.register(username=existing.user.username)
        self.assertFieldError(response, "username")
        self.assertEqual(User.objects.count(), 1)
        self.assertEqual(Seller.objects.get(), existing)

    def test_weak_password_is_refused_with_a_password_error(self):
        for reason, password in WEAK_PASSWORDS.items():
            with self.subTest(reason):
                response = self.register(username="alicealice", password=password)
                self.assertFieldError(response, "password")
        self.assertNoSellerCreated()

    def test_missing_fields_are_each_reported(self):
        response = self.client.post(self.url, {}, format="json")
        for field in ("username", "password", "name"):
            with self.subTest(field):
                errors = self.assertFieldError(response, field)
                self.assertEqual(errors[0]["code"], "required")
        self.assertNoSellerCreated()

    def test_fields_of_the_wrong_type_are_refused(self):
        wrong_types = [
            ("username", ["alice"]),
            ("username", {"name": "alice"}),
            ("username", True),
            ("username", None),
            ("password", [STRONG_PASSWORD]),
            ("password", None),
            ("name", {"first": "Alice"}),
            ("name", False),
        ]
        for field, value in wrong_types:
            with self.subTest(field=field, value=value):
                self.assertFieldError(self.register(**{field: value}), field)
        self.assertNoSellerCreated()

    def test_over_long_fields_are_refused(self):
        too_long = {"username": "u" * 151, "name": "n" * 151, "password": "Pw-9" * 33}
        for field, value in too_long.items():
            with self.subTest(field):
                errors = self.assertFieldError(self.register(**{field: value}), field)
                self.assertEqual(errors[0]["code"], "max_length")
        self.assertNoSellerCreated()

    def test_fields_at_the_maximum_length_are_accepted(self):
        response = self.register(username="u" * 150, name="n" * 150)
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        self.assertEqual(Seller.objects.get().name, "n" * 150)

    def test_blank_name_is_refused(self):
        self.assertFieldError(self.register(name="   "), "name")
        self.assertNoSellerCreated()

    def test_username_with_forbidden_characters_is_refused(self):
        self.assertFieldError(self.register(username="alice smith!"), "username")
        self.assertNoSellerCreated()

    def test_null_character_in_a_field_is_refused(self):
        self.assertFieldError(self.register(name="Ali\x00ce"), "name")
        self.assertNoSellerCreated()

    def test_unicode_username_and_name_are_accepted(self):
        response = self.register(username="jürgen", name="Zoë Åström 李小龍")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        self.assertEqual(response.json()["name"], "Zoë Åström 李小龍")
        self.assertEqual(Seller.objects.get().user.username, "jürgen")

    def test_malformed_json_is_a_parse_error(self):
        response = self.client.post(
            self.url, '{"username": "alice",', content_type="application/json"
        )
        self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "parse_error")
        self.assertNoSellerCreated()


class TokenAuthApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.url = reverse("api-token-auth")
        self.seller = seller_make()

    def test_correct_credentials_return_a_new_key_of_which_the_database_keeps_the_digest(self):
        response = self.client.post(
            self.url, {"username": self.seller.user.username, "password": PASSWORD}, format="json"
        )
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertEqual(list(response.json()), ["token"])
        key = response.json()["token"]
        self.assertRegex(key, r"^[0-9a-f]{40}$")
        api_key = ApiKey.objects.get(user=self.seller.user)
        self.assertEqual((api_key.digest, api_key.prefix), (api_key_digest(key), key[:8]))

    def test_returned_token_authenticates_later_requests(self):
        response = self.client.post(
            self.url, {"username": self.seller.user.username, "password": PASSWORD}, format="json"
        )
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
        me = self.client.get(reverse("seller-me"))
        self.assertEqual(me.status_code, status.HTTP_200_OK)
        self.assertEqual(me.json()["id"], self.seller.pk)

    def test_wrong_password_is_refused_with_a_json_error(self):
        response = self.client.post(
            self.url, {"username": self.seller.user.username, "password": "wrong"}, format="json"
        )
        body = self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "validation_error")
        self.assertEqual(body["fields"]["non_field_errors"][0]["code"], "authorization")
        self.assertFalse(ApiKey.objects.exists())

    def test_unknown_username_is_refused_with_a_json_error(self):
        response = self.client.post(
            self.url, {"username": "nobody", "password": PASSWORD}, format="json"
        )
        body = self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "validation_error")
        self.assertEqual(body["fields"]["non_field_errors"][0]["code"], "authorization")
        self.assertFalse(ApiKey.objects.exists())

    def test_missing_credentials_are_each_reported(self):
        response = self.client.post(self.url, {}, format="json")
        self.assertFieldError(response, "username")
        self.assertFieldError(response, "password")
        self.assertFalse(ApiKey.objects.exists())


class SellerListApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.url = reverse("seller-list")
        self.seller = seller_make()
        self.other_seller = seller_make()

    def test_list_without_a_token_is_refused(self):
        response = self.client.get(self.url)
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "not_authenticated")
        self.assertEqual(response["WWW-Authenticate"], "Token")

    def test_list_with_an_unknown_token_is_refused(self):
        self.client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
        response = self.client.get(self.url)
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "authentication_failed")

    def test_seller_sees_only_itself(self):
        response = client_for(self.seller.user).get(self.url)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual([row["id"] for row in response.json()["results"]], [self.seller.pk])

    def test_staff_sees_every_seller(self):
        response = client_for(staff_make()).get(self.url)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(
            [row["id"] for row in response.json()["results"]],
            [self.seller.pk, self.other_seller.pk],
        )


class SellerDetailApiTests(ErrorShapeAssertions, APITestCase):
    def setUp(self):
        self.seller = seller_make(balance=250)
        self.other_seller = seller_make()

    def test_seller_reads_its_own_record(self):
        response = client_for(self.seller.user).get(reverse("seller-detail", args=[self.seller.pk]))
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual((response.json()["id"], response.json()["balance"]), (self.seller.pk, 250))

    def test_another_sellers_id_is_not_found(self):
        response = client_for(self.seller.user).get(
            reverse("seller-detail", args=[self.other_seller.pk])
        )
        self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")

    def test_non_numeric_id_is_not_found(self):
        response = client_for(self.seller.user).get(reverse("seller-detail", args=["abc"]))
        self.assertErrorResponse(response, status.HTTP_404_NOT_FOUND, "not_found")

    def test_staff_reads_any_seller(self):
        response = client_for(staff_make()).get(
            reverse("seller-detail", args=[self.other_seller.pk])
        )
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json()["id"], self.other_seller.pk)

    def test_detail_without_a_token_is_refused(self):
        response = self.client.get(reverse("seller-detail", args=[self.seller.pk]))
        self.assertErrorResponse(response, status.HTTP_401_UNAUTHORIZED, "not_authenticated")
