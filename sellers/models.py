from django.conf import settings
from django.db import models

from payledger_project.models import ServiceOwnedBalance


class Seller(ServiceOwnedBalance):
    """A user who holds credit and sells phone top-ups.

    ``balance`` is changed only by ``payments.services`` (``ServiceOwnedBalance``
    keeps every other save off it); the database refuses a negative balance
    whatever the code does.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="seller"
    )
    name = models.CharField(max_length=150)
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(balance__gte=0), name="seller_balance_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"
