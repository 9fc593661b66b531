from django.db import connection
from django.test import TestCase
from rest_framework import exceptions

from sellers.authentication import TOKEN_LOOKUP, SellerTokenAuthentication
from sellers.services import api_key_digest
from testing.factories import api_key_make, seller_make, staff_make


class SellerTokenAuthenticationTests(TestCase):
    def setUp(self):
        self.authentication = SellerTokenAuthentication()

    def test_token_user_and_seller_come_back_from_one_query(self):
        seller = seller_make(balance=500)
        key = api_key_make(seller.user)
        with self.assertNumQueries(1):
            user, api_key = self.authentication.authenticate_credentials(key)
            self.assertEqual(
                (api_key.digest, api_key.user, user.seller), (api_key_digest(key), user, seller)
            )
            self.assertEqual(user.seller.balance, 500)
            self.assertEqual(user.seller.user, user)

    def test_a_user_without_a_seller_has_none_without_another_query(self):
        staff = staff_make()
        key = api_key_make(staff)
        with self.assertNumQueries(1):
            user, _ = self.authentication.authenticate_credentials(key)
            self.assertEqual(user, staff)
            self.assertFalse(hasattr(user, "seller"))

    def test_an_unknown_token_is_refused(self):
        with self.assertRaisesMessage(exceptions.AuthenticationFailed, "Invalid token."):
            self.authentication.authenticate_credentials("0" * 40)

    def test_an_inactive_users_token_is_refused(self):
        seller = seller_make()
        key = api_key_make(seller.user)
        seller.user.is_active = False
        seller.user.save(update_fields=["is_active"])
        with self.assertRaisesMessage(exceptions.AuthenticationFailed, "inactive"):
            self.authentication.authenticate_credentials(key)


class TokenLookupPlanTests(TestCase):
    KEYS = 20_000

    def test_the_look_up_is_one_step_down_the_digests_unique_index(self):
        seller = seller_make()
        with connection.cursor() as cursor:
            # Many keys (only the plan is under test): digests of numbers, unique prefixes.
            cursor.execute(
                "INSERT INTO sellers_apikey (user_id, digest, prefix, created_at)"
                " SELECT %s, encode(sha256(n::text::bytea), 'hex'), lpad(to_hex(n), 8, '0'), now()"
                " FROM generate_series(1, %s) AS n",
                [seller.user_id, self.KEYS],
            )
            cursor.execute("ANALYZE sellers_apikey")
            cursor.execute("EXPLAIN " + TOKEN_LOOKUP.sql, {"digest": api_key_digest("7")})
            plan = "\n".join(line for (line,) in cursor.fetchall())
        self.assertIn("Index Scan using api_key_digest_unique on sellers_apikey k", plan)
        self.assertNotIn("Seq Scan on sellers_apikey", plan)
        user, _ = SellerTokenAuthentication().authenticate_credentials("7")
        self.assertEqual(user.seller, seller)
