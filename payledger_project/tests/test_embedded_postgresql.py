"""The developer's database: manage.py with no DATABASE_URL starts or joins the
embedded PostgreSQL, keeps its data, and stops it when the last user leaves;
with DATABASE_URL it never touches it.

Each test gives the processes it starts a data directory of its own
(PAYLEDGER_PGDATA), so that stopping a server never stops the one the suite
itself may be running on, and stops what it started.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase, tag

ROOT = Path(settings.BASE_DIR)
ANNOUNCEMENT = "Using the embedded PostgreSQL"
SHOW_DATABASE = (
    "from django.db import connection; d = connection.settings_dict; "
    "print(d['ENGINE'], d['HOST'], d['NAME'])"
)


def developer_environment(data_dir: str, **variables: str) -> dict[str, str]:
    """A developer's shell: no DATABASE_URL, no DEBUG, no settings module."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PAYLEDGER_PGDATA": data_dir,
        **variables,
    }


def manage(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def shell(code: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    result = manage("shell", "--verbosity", "0", "-c", code, environment=environment)
    assert result.returncode == 0, result.stderr
    return result


def status(data_dir: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "payledger_project.postgresql.embedded", "status"],
        cwd=ROOT,
        env={**os.environ, "PAYLEDGER_PGDATA": data_dir},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@tag("long")
class EmbeddedTestCase(SimpleTestCase):
    def setUp(self):
        # Under /tmp: the socket lives in the data directory, and its path must be short.
        self.data_dir = tempfile.mkdtemp(prefix="pl-pg-")
        self.addCleanup(self._remove_data_dir)
        self.environment = developer_environment(self.data_dir)

    def _remove_data_dir(self):
        subprocess.run(
            [sys.executable, "-m", "payledger_project.postgresql.embedded", "stop"],
            cwd=ROOT,
            env={**os.environ, "PAYLEDGER_PGDATA": self.data_dir},
            capture_output=True,
        )
        subprocess.run(["rm", "-rf", self.data_dir], check=True)


class WithoutDatabaseUrlTests(EmbeddedTestCase):
    def test_manage_py_uses_the_embedded_server_and_says_so_once_on_stderr(self):
        result = shell(SHOW_DATABASE, self.environment)

        engine, host, name = result.stdout.split()
        self.assertEqual(engine, "payledger_project.postgresql")
        self.assertEqual(host, self.data_dir)  # its socket directory
        self.assertEqual(name, "payledger")
        self.assertEqual(result.stderr.count(ANNOUNCEMENT), 1, result.stderr)
        self.assertNotIn(ANNOUNCEMENT, result.stdout)

    def test_the_last_process_stops_the_server_and_its_data_survive_the_restart(self):
        shell(
            "from django.db import connection; c = connection.cursor(); "
            "c.execute('CREATE TABLE kept (note text)'); "
            "c.execute(\"INSERT INTO kept VALUES ('still here')\")",
            self.environment,
        )
        self.assertTrue(status(self.data_dir).startswith("stopped"), status(self.data_dir))

        result = shell(
            "from django.db import connection; c = connection.cursor(); "
            "c.execute('SELECT note FROM kept'); print(c.fetchone()[0])",
            self.environment,
        )
        self.assertEqual(result.stdout.strip(), "still here")
        self.assertTrue(status(self.data_dir).startswith("stopped"))

    def test_a_short_command_leaves_the_server_to_a_process_still_using_it(self):
        holder = self.hold_the_server()

        shell("print('migrate, say')", self.environment)

        self.assertTrue(status(self.data_dir).startswith("running"))
        holder.stdin.write("SELECT 1\n")
        holder.stdin.flush()
        self.assertEqual(holder.stdout.readline().strip(), "1")  # its session is still there
        holder.stdin.close()
        holder.wait(timeout=30)
        self.assertTrue(status(self.data_dir).startswith("stopped"))

    def test_a_killed_process_keeps_the_server_only_until_the_next_one_leaves(self):
        holder = self.hold_the_server()
        holder.kill()  # no exit handler: it stays on the list of users
        holder.wait()
        self.assertTrue(status(self.data_dir).startswith("running"))

        shell("print('next')", self.environment)

        self.assertTrue(status(self.data_dir).startswith("stopped"), status(self.data_dir))
        shell("print('and the one after starts it again')", self.environment)

    def hold_the_server(self) -> subprocess.Popen:
        """A manage.py process that has joined the server and answers one query per
        line on its stdin until it is closed."""
        code = (
            "import sys; from django.db import connection; c = connection.cursor()\n"
            "print('ready', flush=True)\n"
            "for line in sys.stdin:\n"
            "    c.execute(line); print(c.fetchone()[0], flush=True)\n"
        )
        holder = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", code],
            cwd=ROOT,
            env=self.environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.addCleanup(lambda: holder.poll() is None and holder.kill())
        self.assertEqual(holder.stdout.readline().strip(), "ready")
        return holder


class WithDatabaseUrlTests(EmbeddedTestCase):
    DATABASE_URL = "postgres://operator@db.example.com:5432/payledger_production"
    PRODUCTION_SECRETS = {
        "SECRET_KEY": "s" * 50,
        "PAYLEDGER_WEBHOOK_SECRET_KEYS": "cGF5bGVkZ2VyLXRlc3RzLW9ubHktd2ViaG9vay1rZXk=",
    }

    def test_manage_py_uses_database_url_and_never_the_embedded_server(self):
        for debug in ("", "false", "true"):
            with self.subTest(DEBUG=debug or "unset"):
                environment = {
                    **self.environment,
                    **self.PRODUCTION_SECRETS,
                    "DATABASE_URL": self.DATABASE_URL,
                }
                if debug:
                    environment["DEBUG"] = debug

                result = shell(SHOW_DATABASE, environment)

                self.assertEqual(
                    result.stdout.split(),
                    ["payledger_project.postgresql", "db.example.com", "payledger_production"],
                )
                self.assertNotIn(ANNOUNCEMENT, result.stderr)
                # Never started, nor even initialised.
                self.assertEqual(os.listdir(self.data_dir), [])

    def test_with_database_url_and_debug_unset_manage_py_takes_the_production_settings(self):
        # An operator's shell names the database and nothing else: the command must
        # not run with DEBUG on and the development keys (which would, say, encrypt
        # the webhook secrets with a key derived from a published one).
        environment = {**self.environment, "DATABASE_URL": self.DATABASE_URL}

        result = manage("check", environment=environment)

        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(
            result.stderr.strip(),
            "payledger_project.settings: SECRET_KEY must be set when DEBUG is off.",
        )
        self.assertEqual(os.listdir(self.data_dir), [])


class RunserverTests(EmbeddedTestCase):
    def test_runserver_and_its_reloaded_child_share_the_server_until_interrupted(self):
        from testing.servers import free_port

        port = free_port()
        log = Path(self.data_dir).parent / f"{Path(self.data_dir).name}.runserver.log"
        self.addCleanup(log.unlink, missing_ok=True)
        with open(log, "wb") as output:
            server = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
                cwd=ROOT,
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.addCleanup(lambda: server.poll() is None and os.killpg(server.pid, signal.SIGKILL))
        wait_for_200(f"http://127.0.0.1:{port}/healthz", server, log)
        self.assertTrue(status(self.data_dir).startswith("running"))
        self.assertEqual(log.read_text().count(ANNOUNCEMENT), 1, log.read_text())

        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C: the reloader and its child
        server.wait(timeout=30)

        self.assertTrue(status(self.data_dir).startswith("stopped"), status(self.data_dir))


def wait_for_200(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no 200 from {url} in {timeout} s:\n{log.read_text()}")
