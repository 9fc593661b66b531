"""
ASGI config for payledger_project project.

It exposes the ASGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/asgi/
"""

import os

from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured

SETTINGS_MODULE = os.environ.setdefault("DJANGO_SETTINGS_MODULE", "payledger_project.settings")

try:
    application = get_asgi_application()
except ImproperlyConfigured as error:  # one line saying what to set, as in wsgi.py
    raise SystemExit(f"{SETTINGS_MODULE}: {error}") from None
