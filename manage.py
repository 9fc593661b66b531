#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Commands that serve (or test) API requests keep the request timeouts; every
# other command is an operator's (migrate, verify_ledger, ...) and may wait.
REQUEST_COMMANDS = {"runserver", "testserver", "test"}


def main():
    """Run administrative tasks."""
    test_run = sys.argv[1:2] == ["test"]
    os.environ.setdefault(
        "DJANGO_SETTINGS_MODULE",
        "payledger_project.test_settings" if test_run else "payledger_project.settings",
    )
    if sys.argv[1:2] and sys.argv[1] not in REQUEST_COMMANDS:
        os.environ["PAYLEDGER_LOCK_TIMEOUT_MS"] = "0"
        os.environ["PAYLEDGER_STATEMENT_TIMEOUT_MS"] = "0"
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Are you sure it's installed and "
            "available on your PYTHONPATH environment variable? Did you "
            "forget to activate a virtual environment?"
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
