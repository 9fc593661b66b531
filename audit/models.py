"""The audit trail: who changed what, when, from which address (issue 28).

PostgreSQL triggers (django-pghistory on django-pgtrigger) write an event row for
each tracked change, in the transaction that makes it, whatever code makes it:
the services, the admin, a command, a shell. The request's context (the acting
user, the URL, the client's address) is attached by ``audit.middleware``. Event
tables refuse UPDATE and DELETE (append-only triggers), and so does the context
table, beyond adding keys (migration 0002).

The tracked models are proxies declared here, so the triggers and their
migrations belong to this app: no other app knows the trail exists, and none
imports it. What is recorded, and what never is:

- credit requests approved or rejected (status, who decided, reason);
- charges reversed (the reversal row: charge, reason, who);
- staff accounts created, deleted, and staff, superuser or active flags or the
  username changed (never the password hash or last_login);
- a user's groups and permissions, and a group's permissions, added or removed;
  groups created, renamed or deleted;
- sellers created and changed, balance excepted (balances are the journal's);
- webhook endpoints created, changed (URL, event types, status), their secret
  rotated, and deleted, never a secret nor their delivery bookkeeping.
"""

import pghistory
import pgtrigger
from django.contrib.auth.models import Group, User
from django.db import models
from pghistory.models import Events

from payments.models import CreditRequest, PhoneChargeReversal
from sellers.models import Seller
from webhooks.models import WebhookEndpoint

STAFF = pgtrigger.Q(new__is_staff=True) | pgtrigger.Q(new__is_superuser=True)
WAS_STAFF = pgtrigger.Q(old__is_staff=True) | pgtrigger.Q(old__is_superuser=True)
USER_FIELDS = ["username", "is_staff", "is_superuser", "is_active"]
ENDPOINT_SETTINGS = ["seller", "url", "event_types", "status"]
# The tracked object's events are read through AuditEvent, not from the object:
# no reverse accessor (Seller.events is the payments feed's).
TRACKED_OBJECT = pghistory.ObjForeignKey(related_name="+")


def _changed(prefix: str, condition: pgtrigger.Condition | None = None) -> tuple:
    """An update as two events, the row before it and after it (PostgreSQL fires
    the triggers in name order: "before_change" first), so that the trail's diff
    on the second says what changed, even the first time. By default, any change
    to the recorded fields."""
    kwargs = {"condition": condition} if condition else {}
    return (
        pghistory.UpdateEvent(f"{prefix}.before_change", row="OLD", **kwargs),
        pghistory.UpdateEvent(f"{prefix}.changed", **kwargs),
    )


def _recorded(*trackers, **options):
    """pghistory.track with the trail's rules: append-only, and no reverse
    accessor on the tracked model."""
    return pghistory.track(
        *trackers, **{"obj_field": TRACKED_OBJECT, "append_only": True, **options}
    )


def _decided(status: str) -> pgtrigger.Q:
    return pgtrigger.Q(old__status=CreditRequest.Status.PENDING, new__status=status)


@_recorded(
    pghistory.UpdateEvent("credit_request.approved", condition=_decided("approved")),
    pghistory.UpdateEvent("credit_request.rejected", condition=_decided("rejected")),
    fields=["seller", "amount", "status", "decided_by", "decided_at", "rejection_reason"],
    model_name="CreditRequestEvent",
)
class TrackedCreditRequest(CreditRequest):
    class Meta:
        proxy = True


@_recorded(
    pghistory.InsertEvent("charge.reversed"),
    model_name="ChargeReversalEvent",
)
class TrackedChargeReversal(PhoneChargeReversal):
    class Meta:
        proxy = True


@_recorded(
    pghistory.InsertEvent("staff_user.created", condition=STAFF),
    *_changed("user", condition=pgtrigger.AnyChange(*USER_FIELDS)),
    pghistory.DeleteEvent("staff_user.deleted", condition=WAS_STAFF),
    fields=USER_FIELDS,
    model_name="UserEvent",
)
class TrackedUser(User):
    class Meta:
        proxy = True


@_recorded(
    pghistory.InsertEvent("group.created"),
    *_changed("group"),
    pghistory.DeleteEvent("group.deleted"),
    model_name="GroupEvent",
)
class TrackedGroup(Group):
    class Meta:
        proxy = True


def _membership(label: str):
    """Rows of a many-to-many table added and removed: the table has no object
    of its own to point at, so the event keeps both ends."""
    return _recorded(
        pghistory.InsertEvent(f"{label}.added"),
        pghistory.DeleteEvent(f"{label}.removed"),
        obj_field=None,
        model_name=f"{''.join(part.title() for part in label.split('_'))}Event",
    )


@_membership("user_group")
class TrackedUserGroup(User.groups.through):
    class Meta:
        proxy = True


@_membership("user_permission")
class TrackedUserPermission(User.user_permissions.through):
    class Meta:
        proxy = True


@_membership("group_permission")
class TrackedGroupPermission(Group.permissions.through):
    class Meta:
        proxy = True


@_recorded(
    pghistory.InsertEvent("seller.created"),
    *_changed("seller"),
    exclude=["balance"],
    model_name="SellerEvent",
)
class TrackedSeller(Seller):
    class Meta:
        proxy = True


@_recorded(
    pghistory.InsertEvent("webhook_endpoint.created"),
    *_changed("webhook_endpoint", condition=pgtrigger.AnyChange(*ENDPOINT_SETTINGS)),
    # A rotation sets when the previous secret stops signing; re-encrypting the
    # secrets under a new key (rotate_webhook_secrets) changes only ciphertext.
    pghistory.UpdateEvent(
        "webhook_endpoint.secret_rotated",
        condition=pgtrigger.Q(
            new__previous_secret_expires_at__isnull=False,
            new__previous_secret_expires_at__df=pgtrigger.F("old__previous_secret_expires_at"),
        ),
    ),
    pghistory.DeleteEvent("webhook_endpoint.deleted"),
    # Never a secret, nor the delivery bookkeeping that changes on every attempt.
    fields=[*ENDPOINT_SETTINGS, "created_at", "previous_secret_expires_at"],
    model_name="WebhookEndpointEvent",
)
class TrackedWebhookEndpoint(WebhookEndpoint):
    class Meta:
        proxy = True


class AuditEvent(Events):
    """Every event of the trail, newest first, with its request's context: what
    the admin lists and ``export_audit_trail`` writes."""

    user = pghistory.ProxyField(
        "pgh_context__user",
        models.ForeignKey(User, on_delete=models.DO_NOTHING, null=True, help_text="Who acted."),
    )
    remote_addr = pghistory.ProxyField(
        "pgh_context__remote_addr",
        models.TextField(null=True, help_text="The client's address, as PROXY_COUNT reads it."),
    )
    url = pghistory.ProxyField(
        "pgh_context__url", models.TextField(null=True, help_text="The request's path.")
    )

    class Meta:
        proxy = True
        verbose_name = "audit event"
        verbose_name_plural = "audit trail"
