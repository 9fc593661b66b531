"""The admin site: Django's, with its login under the API's login limit.

Password guesses at the admin count against the same counters as guesses at
``/api-token-auth/`` (``LoginRateThrottle``: per client address and per
username, in the shared cache). Past the limit the login page answers 429 with
``Retry-After`` and says why, without checking the password, so the right
password is refused too until the window closes.
"""

import math

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from payledger_project.throttles import LoginRateThrottle


class LimitedAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, refused before the password is checked once the
    login limit is reached."""

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
        return super().clean()


class PayLedgerAdminSite(admin.AdminSite):
    login_form = LimitedAdminAuthenticationForm

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if getattr(form, "retry_after", None) is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response
