"""The WSGI application, for gunicorn (gunicorn.conf.py) and any WSGI server."""

import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "payledger_project.settings")

application = get_wsgi_application()

# Django imports the URLconf, and with it every view and library they use, on
# the first request: about 250 ms, which the first requests of each new worker
# would wait for. Imported here, it is paid before the server takes a request
# (with gunicorn's preload_app, once, in the master, before workers fork).
import_module(settings.ROOT_URLCONF)
