"""The admin site: Django's, with its login under the API's login limit and,
with PAYLEDGER_STAFF_OTP_REQUIRED on, behind staff's second factor.

Password guesses at the admin count against the same counters as guesses at
``/api-token-auth/`` (``LoginRateThrottle``: per client address and per
username, in the shared cache). Past the limit the login page answers 429 with
``Retry-After`` and says why, without checking the password, so the right
password is refused too until the window closes.

Second factor (payledger_project/second_factor/): a staff member with an
authenticator logs in with a password and a code from it (or a recovery code);
one without logs in with the password and is sent to enrol one before any other
admin page opens.
"""

import math
from functools import update_wrapper

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import path

from payledger_project.second_factor.services import (
    second_factor_enrolled,
    second_factor_match,
    second_factor_required,
)
from payledger_project.throttles import LoginRateThrottle


class LimitedAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, refused before the password is checked once the
    login limit is reached; with the second factor required, a staff member who
    has an authenticator must also give a code."""

    otp_code = forms.CharField(
        label="Code",
        required=False,
        max_length=32,
        help_text="From your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    retry_after: int | None = None

    def clean(self):
        throttle = LoginRateThrottle()
        if not throttle.allow_request(self.request, view=None):
            self.retry_after = math.ceil(throttle.wait())
            raise ValidationError(
                "Too many login attempts from this address or for this username. "
                f"Try again in {self.retry_after} seconds.",
                code="throttled",
            )
        cleaned_data = super().clean()
        user = self.user_cache
        if second_factor_required() and second_factor_enrolled(user):
            device = second_factor_match(user, self.cleaned_data.get("otp_code") or "")
            if device is None:
                raise ValidationError(
                    "Enter a valid code from your authenticator app, or an unused recovery code.",
                    code="invalid_second_factor",
                )
            # django-otp marks the session verified when Django logs the user in.
            user.otp_device = device
        return cleaned_data


def second_factor_missing(request) -> bool:
    """Whether this staff session still owes its second factor."""
    user = request.user
    return second_factor_required() and user.is_active and user.is_staff and not user.is_verified()


class PayLedgerAdminSite(admin.AdminSite):
    login_form = LimitedAdminAuthenticationForm
    login_template = "second_factor/login.html"

    def has_permission(self, request):
        # A session that owes a code from an enrolled authenticator logs in again;
        # one with nothing enrolled may open the enrolment page (admin_view).
        return super().has_permission(request) and not (
            second_factor_missing(request) and second_factor_enrolled(request.user)
        )

    def admin_view(self, view, cacheable=False):
        """Every admin page, logout aside, first sends a staff member without an
        authenticator to enrol one."""
        inner = super().admin_view(view, cacheable)
        if getattr(view, "__func__", None) is PayLedgerAdminSite.logout:
            return inner

        def enrolled_first(request, *args, **kwargs):
            if (
                request.user.is_authenticated
                and second_factor_missing(request)
                and not second_factor_enrolled(request.user)
            ):
                return redirect("admin:second_factor_enrol")
            return inner(request, *args, **kwargs)

        return update_wrapper(enrolled_first, inner)

    def get_urls(self):
        from payledger_project.second_factor.views import authenticator_enrol

        enrol = super().admin_view(authenticator_enrol)
        return [
            path("second-factor/enrol/", enrol, name="second_factor_enrol"),
            *super().get_urls(),
        ]

    def login(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "second_factor": second_factor_required()}
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if getattr(form, "retry_after", None) is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response
