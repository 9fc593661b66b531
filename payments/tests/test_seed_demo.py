from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import TestCase, override_settings

from payments.models import CreditRequest, PhoneCharge, Transaction
from payments.selectors import ledger_problems
from sellers.models import Seller

User = get_user_model()


def seed_demo() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (User, Seller, CreditRequest, PhoneCharge, Transaction)
    }


@override_settings(DEBUG=True)
class SeedDemoTests(TestCase):
    def test_it_creates_an_approver_a_viewer_and_three_sellers_with_history(self):
        seed_demo()
        approver, viewer = (
            User.objects.get(username="approver"),
            User.objects.get(username="viewer"),
        )
        self.assertTrue(approver.has_perm("payments.approve_creditrequest"))
        self.assertFalse(viewer.has_perm("payments.approve_creditrequest"))
        self.assertTrue(viewer.has_perm("payments.view_transaction"))
        self.assertEqual(Seller.objects.count(), 3)
        self.assertEqual(CreditRequest.objects.filter(status="pending").count(), 4)
        self.assertTrue(PhoneCharge.objects.exists())
        self.assertEqual(ledger_problems(), [])

    def test_it_creates_a_reverser_who_reverses_charges_and_decides_no_credit(self):
        seed_demo()
        reverser = User.objects.get(username="reverser")
        self.assertTrue(reverser.is_staff)
        self.assertTrue(reverser.has_perm("payments.reverse_phonecharge"))
        self.assertTrue(reverser.has_perm("payments.view_phonecharge"))
        self.assertFalse(reverser.has_perm("payments.approve_creditrequest"))

    def test_running_it_twice_doubles_nothing(self):
        seed_demo()
        first = counts()
        seed_demo()
        self.assertEqual(counts(), first)

    def test_it_prints_which_login_does_what(self):
        printed = seed_demo()
        for role in ("'approver' (decides credit requests)", "'reverser' (reverses charges)"):
            self.assertIn(role, printed)

    @override_settings(DEBUG=False)
    def test_it_refuses_to_run_with_debug_off(self):
        with self.assertRaisesMessage(CommandError, "DEBUG"):
            seed_demo()
        self.assertEqual(Seller.objects.count(), 0)
