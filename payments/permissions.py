"""Who may decide credit and read other sellers' books: one rule for the API and
the admin, carried by Django permissions held by staff (a superuser holds them
all, but only as staff). The services add what no permission lifts: the actor
of a decision or a reversal is staff and not the seller's own user."""

from django.db.models import Q
from rest_framework.permissions import BasePermission

from payledger_project.permissions import staff_may
from sellers.permissions import VIEW_SELLERS

APPROVE_CREDIT = "payments.approve_creditrequest"
VIEW_CREDIT_REQUESTS = "payments.view_creditrequest"
VIEW_JOURNAL = "payments.view_transaction"
VIEW_CHARGES = "payments.view_phonecharge"
REVERSE_CHARGE = "payments.reverse_phonecharge"
VIEW_EVENTS = "payments.view_event"

CREDIT_APPROVERS = "Credit approvers"
# What an approver needs: to decide requests, and to see the sellers and books
# behind them.
CREDIT_APPROVER_PERMISSIONS = [APPROVE_CREDIT, VIEW_SELLERS, VIEW_CREDIT_REQUESTS, VIEW_JOURNAL]


def credit_approvers_group(group_model, permission_model):
    """The "Credit approvers" group with its permissions, created if missing.

    Takes the models as arguments so the data migration can pass its
    historical ones.
    """
    group, _ = group_model.objects.get_or_create(name=CREDIT_APPROVERS)
    wanted = Q()
    for permission in CREDIT_APPROVER_PERMISSIONS:
        app_label, codename = permission.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    group.permissions.add(*permission_model.objects.filter(wanted))
    return group


class CanDecideCreditRequests(BasePermission):
    message = "Only credit approvers can approve or reject credit requests."

    def has_permission(self, request, view) -> bool:
        # Staff only: a seller placed in "Credit approvers" by mistake decides nothing.
        return staff_may(request.user, APPROVE_CREDIT)


class CanReversePhoneCharges(BasePermission):
    message = "Only staff allowed to reverse charges can reverse them."

    def has_permission(self, request, view) -> bool:
        # Staff only: a seller never undoes its own sale, whatever it was granted.
        return staff_may(request.user, REVERSE_CHARGE)
