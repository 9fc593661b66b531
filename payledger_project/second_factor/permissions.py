from rest_framework.permissions import BasePermission

from payledger_project.second_factor.services import second_factor_required


class StaffSecondFactor(BasePermission):
    """Staff move money through the API only with a key minted by a login that
    gave a code (docs/decisions/0014-staff-second-factor.md); keys minted before
    enrolment, or without a code, still read. Sellers are not asked."""

    code = "second_factor_required"
    message = (
        "Staff approve, reject and reverse only with an API key minted with a second-factor"
        " code: log in again at /api-token-auth/ with your otp_code."
    )

    def has_permission(self, request, view) -> bool:
        if not (second_factor_required() and request.user.is_staff):
            return True
        return getattr(request.auth, "second_factor", False)
