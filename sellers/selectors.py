from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from payledger_project.permissions import staff_may
from sellers.models import ApiKey, Seller
from sellers.permissions import VIEW_SELLERS


def seller_list(*, user: AbstractBaseUser) -> QuerySet[Seller]:
    """Staff with ``sellers.view_seller`` see every seller; anyone else only its own
    seller account (none if it has none)."""
    sellers = Seller.objects.select_related("user")
    if not user.is_authenticated:
        return sellers.none()
    if staff_may(user, VIEW_SELLERS):
        return sellers
    return sellers.filter(user=user)


def api_key_list(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    """The user's own keys, newest first; staff too see only theirs (the admin lists all)."""
    if not user.is_authenticated:
        return ApiKey.objects.none()
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")
