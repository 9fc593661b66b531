#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Settings, unless DJANGO_SETTINGS_MODULE says otherwise: the test settings for
`test`; production's (payledger_project.settings) when the environment sets DEBUG
off, or names a database (DATABASE_URL) without asking for DEBUG, as an operator's
does; otherwise a developer's (payledger_project.development_settings: DEBUG on,
and the embedded PostgreSQL when DATABASE_URL is unset). So an operator's command
never runs with the development keys, and a developer who points DATABASE_URL at
a database of their own says DEBUG=true.
"""

import os
import sys

# Commands that serve (or test) API requests keep the request timeouts; every
# other command is an operator's (migrate, verify_ledger, ...) and may wait.
REQUEST_COMMANDS = {"runserver", "testserver", "test"}
FALSE = {"0", "false", "no", "off"}
PRODUCTION, DEVELOPMENT = "payledger_project.settings", "payledger_project.development_settings"


def settings_module(command: str) -> str:
    if command == "test":
        return "payledger_project.test_settings"
    debug = os.environ.get("DEBUG", "").strip().lower()
    if debug in FALSE:
        return PRODUCTION
    if not debug and os.environ.get("DATABASE_URL"):
        return PRODUCTION
    return DEVELOPMENT


def main():
    """Run administrative tasks."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module(command))
    if command and command not in REQUEST_COMMANDS:
        os.environ["PAYLEDGER_LOCK_TIMEOUT_MS"] = "0"
        os.environ["PAYLEDGER_STATEMENT_TIMEOUT_MS"] = "0"
    try:
        from django.core.exceptions import ImproperlyConfigured
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Are you sure it's installed and "
            "available on your PYTHONPATH environment variable? Did you "
            "forget to activate a virtual environment?"
        ) from exc
    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # A missing or wrong setting: the one line that says what to set.
        sys.exit(f"{os.environ['DJANGO_SETTINGS_MODULE']}: {error}")


if __name__ == "__main__":
    main()
