from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from payments.permissions import VIEW_SELLERS, staff_may
from sellers.models import Seller


def seller_list(*, user: AbstractBaseUser) -> QuerySet[Seller]:
    """Staff with ``sellers.view_seller`` see every seller; anyone else only its own
    seller account (none if it has none)."""
    sellers = Seller.objects.select_related("user")
    if not user.is_authenticated:
        return sellers.none()
    if staff_may(user, VIEW_SELLERS):
        return sellers
    return sellers.filter(user=user)
