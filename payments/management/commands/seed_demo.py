from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from payments.permissions import credit_approvers_group
from payments.services import (
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
)
from sellers.models import Seller
from sellers.services import seller_register

User = get_user_model()
PASSWORD = "demo-passphrase-2026"
VIEWER_PERMISSIONS = [
    "view_seller",
    "view_creditrequest",
    "view_transaction",
    "view_phonecharge",
    "view_phoneaccount",
]
# Undoes charges, and sees the sellers, charges and journal rows it undoes.
REVERSER_PERMISSIONS = [
    "reverse_phonecharge",
    "view_phonecharge",
    "view_seller",
    "view_transaction",
]
# username, name, credits approved, charges (phone, amount), pending requests
SELLERS = [
    (
        "alice",
        "Alice Mobile",
        [50_000],
        [("+14155550101", 1_500), ("+14155550102", 2_500)],
        [20_000],
    ),
    ("bob", "Bob Top-ups", [10_000, 5_000], [("+14155550103", 9_000)], [7_500, 30_000]),
    ("carol", "Carol Kiosk", [2_000], [], [1_000]),
]


class Command(BaseCommand):
    help = (
        "Fill a developer's database with an approver, a reverser, a viewer and three "
        "sellers with credit, charges and pending requests. Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="seed even though DEBUG is off (not production!)"
        )

    def handle(self, *args, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates known passwords: run it with DEBUG on.")
        with transaction.atomic():
            approver = self.staff("approver")
            approver.groups.add(credit_approvers_group(Group, Permission))
            self.staff("reverser", permissions=REVERSER_PERMISSIONS)
            self.staff("viewer", permissions=VIEWER_PERMISSIONS)
            for username, name, credits, charges, pending in SELLERS:
                if Seller.objects.filter(user__username=username).exists():
                    continue
                seller = seller_register(username=username, password=PASSWORD, name=name)
                for amount in credits:
                    credit = credit_request_create(seller=seller, amount=amount)
                    credit_request_approve(credit_request_id=credit.pk, decided_by=approver)
                for phone, amount in charges:
                    phone_charge_create(seller_id=seller.pk, phone_number=phone, amount=amount)
                refused = credit_request_create(seller=seller, amount=999_999)
                credit_request_reject(
                    credit_request_id=refused.pk, decided_by=approver, reason="Demo: too large"
                )
                for amount in pending:
                    credit_request_create(seller=seller, amount=amount)
        self.stdout.write(
            "Demo data ready. Log in to the admin at /admin/ or to the API as 'approver' "
            "(decides credit requests), 'reverser' (reverses charges) or 'viewer' (reads "
            f"only), or to the API as the sellers alice, bob or carol; every password is "
            f"{PASSWORD!r}."
        )

    def staff(self, username: str, *, permissions: Sequence[str] = ()) -> User:
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        if created:
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
        user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
        return user
