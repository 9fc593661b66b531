from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from sellers.models import Seller


def seller_list(*, user: AbstractBaseUser) -> QuerySet[Seller]:
    """Staff see every seller; a seller sees only itself."""
    sellers = Seller.objects.select_related("user")
    if not user.is_authenticated:
        return sellers.none()
    if user.is_staff:
        return sellers
    return sellers.filter(user=user)
