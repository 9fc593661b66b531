from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from payledger_project.models import ServiceOwnedBalance
from sellers.models import Seller


class CreditRequest(models.Model):
    """A seller's request for more credit, decided once by staff."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    seller = models.ForeignKey(Seller, on_delete=models.PROTECT, related_name="credit_requests")
    amount = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="decided_credit_requests",
    )
    # NULL, not "": only a rejected request can carry a reason (a CHECK says so).
    rejection_reason = models.CharField(  # noqa: DJ001
        max_length=500, null=True, blank=True, help_text="Why it was rejected, shown to the seller."
    )

    class Meta:
        ordering = ["-id"]
        permissions = [("approve_creditrequest", "Can approve or reject credit requests")]
        indexes = [models.Index(fields=["status", "id"], name="creditrequest_status_id")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="creditrequest_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected"]),
                name="creditrequest_status_valid",
            ),
            # A decision always records when and by whom; a pending request has neither.
            models.CheckConstraint(
                condition=Q(rejection_reason__isnull=True) | Q(status="rejected"),
                name="creditrequest_reason_only_when_rejected",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="pending", decided_at__isnull=True, decided_by__isnull=True)
                    | (~Q(status="pending") & Q(decided_at__isnull=False, decided_by__isnull=False))
                ),
                name="creditrequest_decision_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"Credit request #{self.pk} ({self.amount}, {self.status})"


class PhoneAccount(ServiceOwnedBalance):
    """The running total a phone number has received from charges."""

    phone_number = models.CharField(max_length=16, unique=True, help_text="E.164")
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["phone_number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0), name="phoneaccount_balance_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.phone_number


class PhoneCharge(models.Model):
    """A top-up sold by a seller: debits the seller, credits the phone."""

    seller = models.ForeignKey(Seller, on_delete=models.PROTECT, related_name="phone_charges")
    phone_account = models.ForeignKey(
        PhoneAccount,
        on_delete=models.PROTECT,
        to_field="phone_number",
        db_column="phone_number",
        related_name="charges",
    )
    amount = models.BigIntegerField()
    # Set by payments.services from the database's clock under the seller's row lock.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # NULL, not "": charges without one are not all "the same reference".
    reference = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True, help_text="The client's own id, e.g. an order number."
    )

    class Meta:
        ordering = ["-id"]
        permissions = [("reverse_phonecharge", "Can reverse phone charges")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="phonecharge_amount_positive"),
            models.UniqueConstraint(
                fields=["seller", "reference"],
                condition=Q(reference__isnull=False),
                name="phonecharge_seller_reference_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Charge #{self.pk} {self.phone_account_id} ({self.amount})"

    @property
    def phone_number(self) -> str:
        return self.phone_account_id


class PhoneChargeReversal(models.Model):
    """Undoes a charge without editing it: the amount goes back from the phone to
    the seller as a new journal row. One per charge, which the database enforces."""

    charge = models.OneToOneField(PhoneCharge, on_delete=models.PROTECT, related_name="reversal")
    # NULL, not "": no reason given is not a reason.
    reason = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="phone_charge_reversals"
    )
    # Set by payments.services from the database's clock under the seller's row lock.
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Reversal of charge #{self.charge_id}"


class Transaction(models.Model):
    """The append-only journal: one row per movement of a seller's money.

    Each row points at its one cause; the one-to-one links make the database
    refuse a second journal row for the same credit request, charge or reversal.
    """

    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit"
        CHARGE = "charge", "Phone charge"
        REVERSAL = "reversal", "Charge reversal"

    seller = models.ForeignKey(Seller, on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    # Set by payments.services from the database's clock under the seller's row lock.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    credit_request = models.OneToOneField(
        CreditRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="transaction"
    )
    phone_charge = models.OneToOneField(
        PhoneCharge, on_delete=models.PROTECT, null=True, blank=True, related_name="transaction"
    )
    reversal = models.OneToOneField(
        PhoneChargeReversal,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transaction",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["seller", "id"], name="transaction_seller_id"),
            # Journal pages: newest first, optionally within a created_at range.
            models.Index(fields=["seller", "-created_at", "-id"], name="transaction_seller_newest"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transaction_amount_positive"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="transaction_balance_after_non_negative"
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        kind="credit",
                        credit_request__isnull=False,
                        phone_charge__isnull=True,
                        reversal__isnull=True,
                    )
                    | Q(
                        kind="charge",
                        phone_charge__isnull=False,
                        credit_request__isnull=True,
                        reversal__isnull=True,
                    )
                    | Q(
                        kind="reversal",
                        reversal__isnull=False,
                        credit_request__isnull=True,
                        phone_charge__isnull=True,
                    )
                ),
                name="transaction_source_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} -> {self.balance_after} (seller #{self.seller_id})"


class Event(models.Model):
    """Something that happened to a seller's money or requests, for its systems to follow.

    Written in the same database transaction as the movement or decision it
    describes, after taking the seller's row lock, so a seller's events are
    numbered in the order they committed: a cursor over ids never skips one.
    """

    class Type(models.TextChoices):
        CREDIT_REQUEST_CREATED = "credit_request.created"
        CREDIT_REQUEST_APPROVED = "credit_request.approved"
        CREDIT_REQUEST_REJECTED = "credit_request.rejected"
        PHONE_CHARGE_CREATED = "phone_charge.created"
        PHONE_CHARGE_REVERSED = "phone_charge.reversed"
        # Sent by a seller to one of its webhook endpoints; moves no money.
        WEBHOOK_TEST = "webhook.test"

    type = models.CharField(max_length=32, choices=Type.choices)
    seller = models.ForeignKey(Seller, on_delete=models.PROTECT, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(
        encoder=DjangoJSONEncoder,
        help_text="The object as the API shows it, with the seller's balance after the event.",
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["seller", "id"], name="event_seller_id")]

    def __str__(self) -> str:
        return f"Event #{self.pk} {self.type} (seller #{self.seller_id})"


class IdempotencyKey(models.Model):
    """A client's retry key and the answer it got, replayed for the same request.

    Written in the same database transaction as the money movement it guards,
    so a charge can never commit without its key, nor a key without its charge.
    """

    # Per user, not per seller: staff (who have no seller) send keys too.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotencykey_user_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} (user #{self.user_id})"
