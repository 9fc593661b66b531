from django.test import TestCase
from rest_framework import exceptions
from rest_framework.authtoken.models import Token

from sellers.authentication import SellerTokenAuthentication
from sellers.tests.factories import seller_make, staff_make


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


class SellerTokenAuthenticationTests(TestCase):
    def setUp(self):
        self.authentication = SellerTokenAuthentication()

    def test_token_user_and_seller_come_back_from_one_query(self):
        seller = seller_make(balance=500)
        key = token_for(seller.user)
        with self.assertNumQueries(1):
            user, token = self.authentication.authenticate_credentials(key)
            self.assertEqual((token.key, token.user, user.seller), (key, user, seller))
            self.assertEqual(user.seller.balance, 500)
            self.assertEqual(user.seller.user, user)

    def test_a_user_without_a_seller_has_none_without_another_query(self):
        staff = staff_make()
        key = token_for(staff)
        with self.assertNumQueries(1):
            user, _ = self.authentication.authenticate_credentials(key)
            self.assertEqual(user, staff)
            self.assertFalse(hasattr(user, "seller"))

    def test_an_unknown_token_is_refused(self):
        with self.assertRaisesMessage(exceptions.AuthenticationFailed, "Invalid token."):
            self.authentication.authenticate_credentials("0" * 40)

    def test_an_inactive_users_token_is_refused(self):
        seller = seller_make()
        key = token_for(seller.user)
        seller.user.is_active = False
        seller.user.save(update_fields=["is_active"])
        with self.assertRaisesMessage(exceptions.AuthenticationFailed, "inactive"):
            self.authentication.authenticate_credentials(key)
