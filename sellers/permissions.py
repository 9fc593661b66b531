from rest_framework.permissions import BasePermission


class IsSeller(BasePermission):
    message = "Only sellers can do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and hasattr(request.user, "seller"))
