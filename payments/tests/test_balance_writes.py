"""Balances move only through payments/services.py: any other save keeps its hands off them."""

import ast
import re
import threading
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import TestCase, TransactionTestCase
from django.urls import reverse

from payments.admin import SellerAdmin
from payments.models import PhoneAccount, Transaction
from payments.selectors import ledger_problems
from payments.services import phone_charge_create
from sellers.models import Seller
from testing.factories import PASSWORD, seller_make

PHONE = "+14155550123"
BALANCE_OWNER = Path("payments/services.py")
# Folders whose code never runs in the service: tests and their harness (testing/,
# whose planted bugs quote the balance SQL and whose generated book writes test and
# scratch databases with SQL), migrations, and the measurement code (scripts, the
# bench yardstick) that writes scratch databases with SQL.
NOT_SERVICE_CODE = {"tests", "testing", "migrations", "scripts", "bench"}
User = get_user_model()


class StaleSaveTests(TestCase):
    def test_saving_a_seller_read_before_a_charge_keeps_the_charged_balance(self):
        seller = seller_make(balance=1_000)
        stale = Seller.objects.get(pk=seller.pk)
        phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=300)

        stale.name = "Renamed"
        stale.save()

        seller.refresh_from_db()
        self.assertEqual((seller.name, seller.balance), ("Renamed", 700))
        self.assertEqual(ledger_problems(), [])

    def test_saving_a_phone_account_read_before_a_charge_keeps_the_charged_balance(self):
        seller = seller_make(balance=1_000)
        phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=100)
        stale = PhoneAccount.objects.get(phone_number=PHONE)
        phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=200)

        stale.save()

        self.assertEqual(PhoneAccount.objects.get(phone_number=PHONE).balance, 300)
        self.assertEqual(ledger_problems(), [])

    def test_a_seller_cannot_be_created_holding_money(self):
        user = User.objects.create_user(username="rich", password=PASSWORD)
        with self.assertRaises(ValueError):
            Seller.objects.create(user=user, name="Rich", balance=500)
        self.assertFalse(Seller.objects.filter(user=user).exists())

    def test_a_phone_account_cannot_be_created_holding_money(self):
        with self.assertRaises(ValueError):
            PhoneAccount.objects.create(phone_number=PHONE, balance=500)
        self.assertFalse(PhoneAccount.objects.exists())


class AdminSaveRacingAChargeTests(TransactionTestCase):
    def test_a_charge_committed_between_the_admin_read_and_save_stays_in_the_books(self):
        admin_user = User.objects.create_superuser(username="root", password=PASSWORD)
        seller = seller_make(name="Alice", balance=1_000)
        read_object = SellerAdmin.get_object

        def read_then_let_a_charge_commit(admin, request, object_id, from_field=None):
            loaded = read_object(admin, request, object_id, from_field)
            # Another connection charges and commits while the form is being saved.
            other = threading.Thread(
                target=lambda: (
                    phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=300),
                    connection.close(),
                )
            )
            other.start()
            other.join()
            return loaded

        self.client.force_login(admin_user)
        with mock.patch.object(SellerAdmin, "get_object", read_then_let_a_charge_commit):
            response = self.client.post(
                reverse("admin:sellers_seller_change", args=[seller.pk]), {"name": "Alice Shop"}
            )

        self.assertEqual(response.status_code, 302)
        seller.refresh_from_db()
        last_row = Transaction.objects.filter(seller=seller).latest("id")
        self.assertEqual((seller.name, seller.balance), ("Alice Shop", 700))
        self.assertEqual(last_row.balance_after, seller.balance)
        self.assertEqual(ledger_problems(), [])


# Raw SQL that sets a balance, or inserts one in a column list.
SQL_BALANCE_WRITE = re.compile(r"\bSET\s+balance\b|\(\s*[\w\s,]*\bbalance\b[\w\s,]*\)", re.I)


def balance_writes(tree: ast.AST) -> list[int]:
    """Line numbers where code assigns a ``balance``, passes one to a write, names it
    in ``update_fields`` or writes it in SQL."""
    writes = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if SQL_BALANCE_WRITE.search(node.value):
                writes.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "balance" for t in targets):
                writes.append(node.lineno)
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            for keyword in node.keywords:
                if keyword.arg == "balance" and (
                    name in {"update", "create", "update_or_create", "get_or_create"}
                    or name in {"Seller", "PhoneAccount"}
                ):
                    writes.append(node.lineno)
                if keyword.arg == "update_fields" and "balance" in ast.unparse(keyword.value):
                    writes.append(node.lineno)
    return writes


class BalanceOwnershipTests(TestCase):
    def test_no_module_but_payments_services_writes_a_balance(self):
        root = Path(settings.BASE_DIR)
        offenders = {}
        for path in sorted(root.glob("*/**/*.py")):
            relative = path.relative_to(root)
            if relative.parts[0].startswith(".") or NOT_SERVICE_CODE & set(relative.parts):
                continue
            if relative == BALANCE_OWNER:
                continue
            lines = balance_writes(ast.parse(path.read_text(), filename=str(relative)))
            if lines:
                offenders[str(relative)] = lines
        self.assertEqual(offenders, {})

    def test_the_balance_write_finder_sees_the_services_writes(self):
        # The scan above must be able to fail: the one owner does write balances.
        tree = ast.parse((Path(settings.BASE_DIR) / BALANCE_OWNER).read_text())
        self.assertTrue(balance_writes(tree))
