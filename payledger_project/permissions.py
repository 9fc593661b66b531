"""Access rules every app applies, so no app reaches into another for them.

Staff read beyond their own seller only while holding the Django permission that
names what they read (a superuser holds them all, but only as staff); a seller is
a user with a seller account. Each app names its own permissions
(``payments/permissions.py``, ``sellers/permissions.py``, ``webhooks/selectors.py``).
"""

from rest_framework.permissions import BasePermission


def staff_may(user, permission: str) -> bool:
    """Whether ``user`` reads beyond its own seller: staff holding ``permission``.
    Sellers are never asked, so their requests pay no permission queries."""
    return user.is_staff and user.has_perm(permission)


class IsSeller(BasePermission):
    message = "Only sellers can do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and hasattr(request.user, "seller"))
