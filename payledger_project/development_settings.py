"""Settings for a developer's machine: manage.py's default (see manage.py).

Production's settings with DEBUG on unless the environment says otherwise (so a
development secret key, console logs, plain HTTP), and, when DATABASE_URL is
unset, the embedded PostgreSQL in the checkout's .pgdata
(payledger_project/postgresql/embedded.py). DATABASE_URL, when set, is always
the database.
"""

import os

os.environ.setdefault("DEBUG", "true")
# Webhooks to a receiver on this machine (`manage.py listen_webhooks`); honoured
# only with DEBUG on. PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK=false turns it off.
os.environ.setdefault("PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK", "true")

from payledger_project.settings import *  # noqa: E402, F403
