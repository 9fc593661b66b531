#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Settings, unless DJANGO_SETTINGS_MODULE says otherwise: the test settings for
`test`; production's (payledger_project.settings) when the environment sets DEBUG
off (anything but 1, true, yes or on, as the settings read it), or names a
database (DATABASE_URL) without asking for DEBUG, as an operator's does;
otherwise a developer's (payledger_project.development_settings: DEBUG on, and
the embedded PostgreSQL when DATABASE_URL is unset). So an operator's command
never runs with the development keys, and a developer who points DATABASE_URL at
a database of their own says DEBUG=true. (Which commands are bound by the
request timeouts is the settings' decision: see REQUEST_COMMANDS there.)
"""

import os
import sys

PRODUCTION, DEVELOPMENT = "payledger_project.settings", "payledger_project.development_settings"


def settings_module(command: str) -> str:
    from payledger_project.environment import env

    if command == "test":
        return "payledger_project.test_settings"
    debug = env.bool("DEBUG", None)
    if debug is False or (debug is None and env.str("DATABASE_URL", "")):
        return PRODUCTION
    return DEVELOPMENT


def main():
    """Run administrative tasks."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    chosen = os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module(command))
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
        sys.exit(f"{chosen}: {error}")


if __name__ == "__main__":
    main()
