from unittest import mock

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import TestCase

from sellers.models import Seller
from sellers.services import seller_register
from testing.factories import WEAK_PASSWORDS

User = get_user_model()
STRONG_PASSWORD = "tangerine-Orbit-4417"


class SellerRegisterTests(TestCase):
    def test_new_seller_starts_with_a_zero_balance(self):
        seller = seller_register(username="alice", password=STRONG_PASSWORD, name="Alice")
        seller.refresh_from_db()
        self.assertEqual(seller.balance, 0)

    def test_new_seller_can_log_in_with_its_password(self):
        seller = seller_register(username="alice", password=STRONG_PASSWORD, name="Alice")
        self.assertTrue(seller.user.check_password(STRONG_PASSWORD))
        self.assertFalse(seller.user.is_staff)

    def test_duplicate_username_is_refused_and_creates_nothing(self):
        seller_register(username="alice", password=STRONG_PASSWORD, name="Alice")
        with self.assertRaises(ValidationError) as refused:
            seller_register(username="alice", password=STRONG_PASSWORD, name="Other Alice")
        self.assertIn("username", refused.exception.message_dict)
        self.assertEqual(User.objects.count(), 1)
        self.assertEqual(Seller.objects.get().name, "Alice")

    def test_duplicate_username_that_slips_past_the_check_is_still_refused(self):
        # Two registrations racing: both pass validate_unique, the unique index decides.
        seller_register(username="alice", password=STRONG_PASSWORD, name="Alice")
        with (
            mock.patch.object(User, "validate_unique"),
            self.assertRaises(ValidationError) as refused,
        ):
            seller_register(username="alice", password=STRONG_PASSWORD, name="Other Alice")
        self.assertIn("username", refused.exception.message_dict)
        self.assertEqual(User.objects.count(), 1)
        self.assertEqual(Seller.objects.count(), 1)

    def test_weak_password_is_refused_and_creates_no_user(self):
        for reason, password in WEAK_PASSWORDS.items():
            with self.subTest(reason):
                with self.assertRaises(ValidationError) as refused:
                    seller_register(username="alicealice", password=password, name="Alice")
                self.assertIn("password", refused.exception.message_dict)
        self.assertFalse(User.objects.exists())
        self.assertFalse(Seller.objects.exists())

    def test_invalid_username_is_refused_and_creates_no_user(self):
        with self.assertRaises(ValidationError) as refused:
            seller_register(username="alice smith!", password=STRONG_PASSWORD, name="Alice")
        self.assertIn("username", refused.exception.message_dict)
        self.assertFalse(User.objects.exists())

    def test_blank_name_is_refused_and_creates_no_user(self):
        with self.assertRaises(ValidationError) as refused:
            seller_register(username="alice", password=STRONG_PASSWORD, name="")
        self.assertIn("name", refused.exception.message_dict)
        self.assertFalse(User.objects.exists())

    def test_over_long_name_is_refused_and_creates_no_user(self):
        with self.assertRaises(ValidationError) as refused:
            seller_register(username="alice", password=STRONG_PASSWORD, name="n" * 151)
        self.assertIn("name", refused.exception.message_dict)
        self.assertFalse(User.objects.exists())

    def test_unicode_username_and_name_are_kept_as_written(self):
        seller = seller_register(username="jürgen", password=STRONG_PASSWORD, name="Zoë 李小龍")
        seller.refresh_from_db()
        self.assertEqual((seller.user.username, seller.name), ("jürgen", "Zoë 李小龍"))
