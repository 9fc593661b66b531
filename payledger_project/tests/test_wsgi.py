"""What loading the WSGI application does before the server takes a request.

gunicorn (preload_app) loads it once in the master and forks the workers from
it, so whatever is loaded here is not paid by a worker's first requests.
"""

import subprocess
import sys
from pathlib import Path

from django.test import SimpleTestCase

from testing.servers import production_environment

ROOT = Path(__file__).resolve().parents[2]


def after_loading_the_application(expression: str) -> str:
    """``expression`` evaluated in a fresh process that has just loaded the application."""
    program = (
        "import sys\nimport payledger_project.wsgi\nfrom django.db import connections\n"
        f"print({expression})"
    )
    return subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env=production_environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


class LoadingTheApplicationTests(SimpleTestCase):
    def test_without_debug_in_its_environment_the_served_app_is_not_in_debug_mode(self):
        self.assertNotIn("DEBUG", production_environment())
        debug = after_loading_the_application("__import__('django.conf').conf.settings.DEBUG")
        self.assertEqual(debug, "False")

    def test_it_imports_the_views_so_a_new_worker_answers_at_once(self):
        self.assertEqual(after_loading_the_application("'payments.api' in sys.modules"), "True")

    def test_it_opens_no_database_connection_a_forked_worker_would_share(self):
        opened = after_loading_the_application(
            "[c.alias for c in connections.all() if c.connection is not None]"
        )
        self.assertEqual(opened, "[]")
