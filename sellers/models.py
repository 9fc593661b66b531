from django.conf import settings
from django.db import models
from django.utils import timezone

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


class ApiKey(models.Model):
    """An API key as the database keeps it: the SHA-256 digest of the key, never the key.

    A key is 160 random bits, so a fast digest is enough: no one can search that
    space for a key with a given digest (a slow hash protects guessable passwords,
    not random keys), and a copy of this table authenticates no one. ``prefix``, the
    key's first characters, names the key to its owner and to staff; the rest of
    the key stays secret.
    """

    # The (user, prefix) constraint's index serves look-ups by user; no index of its own.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_keys",
        db_index=False,
    )
    # Unique by a constraint, not unique=True, which on PostgreSQL adds a second
    # index (for LIKE) that no query uses.
    digest = models.CharField(max_length=64)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(default=timezone.now)
    # None: the key works until it is revoked.
    expires_at = models.DateTimeField(null=True, blank=True)
    # Minted by a login that gave a second-factor code: only such a key lets
    # staff approve, reject or reverse while PAYLEDGER_STAFF_OTP_REQUIRED is on.
    second_factor = models.BooleanField(default=False, db_default=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["digest"], name="api_key_digest_unique"),
            models.UniqueConstraint(
                fields=["user", "prefix"], name="api_key_prefix_unique_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}…"
