"""The entry points as their users run them: an operator's gunicorn, WSGI import
and manage.py refuse a missing setting with one line, and a developer's seed
steps work, literally, in a fresh copy of the repository with no environment."""

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase, tag

from testing.processes import Server
from testing.servers import (
    ANNOUNCEMENT,
    developer_environment,
    free_port,
    production_environment,
)

ROOT = Path(settings.BASE_DIR)
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
ENTRY_POINTS = {
    "gunicorn": [GUNICORN, "--config", "gunicorn.conf.py"],
    "wsgi import": [sys.executable, "-c", "import payledger_project.wsgi"],
    "manage.py with DEBUG=false": [sys.executable, "manage.py", "check"],
}


class MissingProductionSettingTests(SimpleTestCase):
    def test_each_entry_point_says_what_to_set_in_one_line_without_a_traceback(self):
        for missing in ("SECRET_KEY", "PAYLEDGER_WEBHOOK_SECRET_KEYS", "DATABASE_URL"):
            for name, command in ENTRY_POINTS.items():
                with self.subTest(missing=missing, entry_point=name):
                    environment = production_environment(DEBUG="false")
                    del environment[missing]

                    result = subprocess.run(
                        command, cwd=ROOT, env=environment, capture_output=True, text=True,
                        timeout=60,
                    )  # fmt: skip

                    self.assertNotEqual(result.returncode, 0)
                    self.assertNotIn("Traceback", result.stderr)
                    [line] = result.stderr.splitlines()
                    self.assertIn(f"{missing} must be set", line)

    def test_a_wrong_setting_is_one_line_too(self):
        environment = production_environment(DEBUG="false", PROXY_COUNT="two")

        result = subprocess.run(
            ENTRY_POINTS["manage.py with DEBUG=false"], cwd=ROOT, env=environment,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(
            result.stderr, "payledger_project.settings: PROXY_COUNT must be a whole number.\n"
        )


@tag("long")
class SeedStepsTests(SimpleTestCase):
    """README's first steps in a fresh copy, with a venv and nothing else set:
    migrate, createsuperuser, runserver (the test step is CI's own run)."""

    def setUp(self):
        self.copy = Path(tempfile.mkdtemp(prefix="pl-seed-"))
        self.addCleanup(self.remove_copy)
        files = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode().split("\0")  # fmt: skip
        for name in filter(None, files):
            if (ROOT / name).is_file():
                (self.copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, self.copy / name)
        # The copy's own .pgdata: no PAYLEDGER_PGDATA.
        self.environment = developer_environment(str(self.copy / ".pgdata"))
        del self.environment["PAYLEDGER_PGDATA"]

    def remove_copy(self):
        subprocess.run(
            [sys.executable, "-m", "payledger_project.postgresql.embedded", "stop"],
            cwd=self.copy, env=self.environment, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.copy, ignore_errors=True)

    def python(self, *args: str, **variables: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, *args], cwd=self.copy, env={**self.environment, **variables},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        return result

    def test_migrate_createsuperuser_and_runserver_work_as_written(self):
        self.python("manage.py", "migrate")
        self.python(
            "manage.py", "createsuperuser", "--noinput",
            DJANGO_SUPERUSER_USERNAME="admin", DJANGO_SUPERUSER_EMAIL="admin@example.com",
            DJANGO_SUPERUSER_PASSWORD="a-long-development-password",
        )  # fmt: skip
        check = self.python(
            "manage.py", "shell", "-c",
            "from django.contrib.auth.models import User; "
            "print(User.objects.get(username='admin').is_superuser)",
        )  # fmt: skip
        self.assertEqual(check.stdout.split()[-1], "True")
        self.assertIn(ANNOUNCEMENT, check.stderr)

        port = str(free_port())
        server = Server(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
            {**self.environment, "PORT": port},
            cwd=self.copy,
        )
        self.addCleanup(server.cleanup)
        server.wait_until_ready()
        self.assertNotIn("unapplied migration", server.output())

        server.stop(signal.SIGINT)  # Ctrl-C: the reloader and its child
        copy_status = subprocess.run(
            [sys.executable, "-m", "payledger_project.postgresql.embedded", "status"],
            cwd=self.copy, env=self.environment, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        self.assertTrue(copy_status.startswith("stopped"), copy_status)
