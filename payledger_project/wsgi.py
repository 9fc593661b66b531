"""The WSGI application, for gunicorn (gunicorn.conf.py) and any WSGI server.

Production's settings unless DJANGO_SETTINGS_MODULE says otherwise: DEBUG off
unless asked, and SECRET_KEY, PAYLEDGER_WEBHOOK_SECRET_KEYS and DATABASE_URL
required. A missing or wrong one stops the server with one line saying what to set.
"""

import os
from importlib import import_module

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

SETTINGS_MODULE = os.environ.setdefault("DJANGO_SETTINGS_MODULE", "payledger_project.settings")

try:
    application = get_wsgi_application()
except ImproperlyConfigured as error:
    raise SystemExit(f"{SETTINGS_MODULE}: {error}") from None

# Django imports the URLconf, and with it every view and library they use, on
# the first request: about 250 ms, which the first requests of each new worker
# would wait for. Imported here, it is paid before the server takes a request
# (with gunicorn's preload_app, once, in the master, before workers fork).
import_module(settings.ROOT_URLCONF)
