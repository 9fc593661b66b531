"""The admin's enrolment page: a staff member scans the QR code (or types the
secret), confirms with a code, and sees the recovery codes once."""

import base64

import segno
from django import forms
from django.contrib import admin
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django_otp import login as otp_login

from payledger_project.second_factor.services import (
    authenticator_confirm,
    authenticator_start,
    second_factor_enrolled,
)


class ConfirmForm(forms.Form):
    otp_code = forms.CharField(
        label="Code",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def authenticator_enrol(request):
    if second_factor_enrolled(request.user):
        return redirect("admin:index")
    device = authenticator_start(request.user)
    form = ConfirmForm(request.POST or None)
    if form.is_valid():
        codes = authenticator_confirm(device=device, code=form.cleaned_data["otp_code"])
        if codes is not None:
            otp_login(request, device)
            return TemplateResponse(
                request,
                "second_factor/recovery_codes.html",
                {**admin.site.each_context(request), "title": "Recovery codes", "codes": codes},
            )
        form.add_error("otp_code", "That code is not the one your authenticator shows now.")
    context = {
        **admin.site.each_context(request),
        "title": "Set up your authenticator",
        "form": form,
        "qr_code": segno.make(device.config_url, error="m").svg_data_uri(scale=4),
        "secret": base64.b32encode(device.bin_key).decode(),
    }
    return TemplateResponse(request, "second_factor/enrol.html", context)
