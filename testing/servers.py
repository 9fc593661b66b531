"""The one harness for tests, benchmarks and scripts that run PayLedger as it is deployed.

A test server is gunicorn (through `make serve` or directly) on a free loopback
port with the production environment; readiness is polled, and the server is
stopped by its process group id. The servers use the test database, so tests
set up rows with the ORM and check what the server wrote. DEBUG is never set:
production is the default.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import redis
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management.utils import get_random_secret_key
from django.db import connection
from django.test import TransactionTestCase, tag

from sellers.models import Seller
from testing.factories import PASSWORD, api_key_make

ROOT = Path(settings.BASE_DIR)
HOST = "pay.example.com"
START_TIMEOUT = 60
STORM = 30
REDIS_SERVER = shutil.which("redis-server")
User = get_user_model()


class RedisServer:
    """A private redis-server on a free loopback port, keeping nothing on disk.

    Not the machine's shared Redis: whoever else uses it may flush it in the
    middle of a storm, and the counts must be exact.
    """

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port),
                "--save", "", "--appendonly", "no", "--dir", tempfile.gettempdir(),
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    return free_port()


def database_url_of_the_tests() -> str:
    """The test database as a DATABASE_URL, so the server sees the test's rows."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    # The embedded server's host is its socket directory, a path: quoted, it fits a URL.
    host = quote(db["HOST"] or "localhost", safe="")
    return f"postgres://{credentials}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def production_environment(**variables: str) -> dict[str, str]:
    """What an operator sets: the secrets, the hosts, the database. DEBUG stays unset."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "SECRET_KEY": get_random_secret_key(),
        # The test's own keys: the server reads the secrets the test wrote.
        "PAYLEDGER_WEBHOOK_SECRET_KEYS": ",".join(settings.PAYLEDGER_WEBHOOK_SECRET_KEYS),
        "ALLOWED_HOSTS": f"{HOST},127.0.0.1,localhost",
        "DATABASE_URL": database_url_of_the_tests(),
        # No HOST: gunicorn.conf.py listens on loopback unless told otherwise.
        "PORT": str(free_port()),
        **variables,
    }


class Server:
    """One gunicorn (through `make serve` or directly), its log, and how to stop it."""

    def __init__(
        self, command: list[str], environment: dict[str, str], *, stderr_apart: bool = False
    ):
        """``stderr_apart``: stderr goes to a file of its own (``errors()``), so the
        log holds stdout alone."""
        self.base_url = f"http://127.0.0.1:{environment['PORT']}"
        self.log_dir = tempfile.TemporaryDirectory(prefix="payledger-server-")
        self.log_path = Path(self.log_dir.name) / "server.log"
        self.errors_path = Path(self.log_dir.name) / "stderr.log"
        with open(self.log_path, "wb") as log, open(self.errors_path, "wb") as errors:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=errors if stderr_apart else subprocess.STDOUT,
                start_new_session=True,
            )

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited:\n{self.output()}")
            try:
                if requests.get(self.url("/healthz"), timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the server did not answer in {START_TIMEOUT} s:\n{self.output()}")

    def stop(self) -> None:
        # The process group: make, and the gunicorn master and workers it started.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def cleanup(self) -> None:
        self.stop()
        self.log_dir.cleanup()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def errors(self) -> str:
        return self.errors_path.read_text(errors="replace")

    def wait_for_lines(self, wanted, count: int) -> list[dict]:
        """The log lines ``wanted`` accepts, once there are ``count`` (or after 10 s).

        A worker writes a request's lines as it answers, so they may come just
        after the response does.
        """
        deadline = time.monotonic() + 10
        while True:
            lines = [line for line in self.log_lines() if wanted(line)]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    def log_lines(self) -> list[dict]:
        """The JSON lines the server wrote (any other, e.g. a traceback on stderr, skipped)."""
        lines = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


@tag("long")
class ServerTestCase(TransactionTestCase):
    command: list[str]
    environment: dict[str, str] = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.server_start()

    @classmethod
    def server_start(cls) -> Server:
        """One more server running ``command``, ready, and stopped after the class."""
        server = Server(cls.command, production_environment(**cls.server_environment()))
        cls.addClassCleanup(server.cleanup)
        server.wait_until_ready()
        return server

    @classmethod
    def server_environment(cls) -> dict[str, str]:
        return cls.environment

    def url(self, path: str) -> str:
        return self.server.url(path)


def superuser_make() -> User:
    # The server checks passwords with production's hasher, not the tests' MD5.
    hasher = PBKDF2PasswordHasher()
    user = User.objects.create_superuser(username="root", email="", password=None)
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    return user


class ProxiedSession(requests.Session):
    """A browser behind the proxy: the proxy forwards the public Host and says HTTPS.

    The browser talks HTTPS to the proxy, so it sends the Secure cookies back;
    requests would not over this plain-HTTP hop, so they are unmarked here.
    """

    def __init__(self):
        super().__init__()
        self.headers.update({"Host": HOST, "X-Forwarded-Proto": "https"})

    def request(self, *args, **kwargs) -> requests.Response:
        response = super().request(*args, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return response


def charge_storm(
    server: Server, seller: Seller, count: int = STORM, **headers: str
) -> list[tuple[int, str]]:
    """``count`` charges of 1 by one seller from 8 threads, each on a fresh connection.

    Eight clients at once keep several gunicorn workers busy, so the charges
    are spread across worker processes. Each carries X-Request-ID
    ``storm-<seller>-<n>``. Returns (status, error code) pairs.
    """
    token = api_key_make(seller.user)

    def charge(number: int) -> tuple[int, str]:
        response = requests.post(
            server.url("/api/payments/phone-charge/"),
            json={"phone_number": "+14155550123", "amount": 1},
            headers={
                "Authorization": f"Token {token}",
                "X-Request-ID": f"storm-{seller.pk}-{number}",
                **headers,
            },
        )
        return response.status_code, response.json().get("code", "")

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(charge, range(count)))


def statuses_by_worker(server: Server, seller: Seller, count: int = STORM) -> dict[int, Counter]:
    """From the request lines: which worker (pid) answered what, in a storm."""
    prefix = f"storm-{seller.pk}-"
    lines = server.wait_for_lines(
        lambda line: (
            line["message"] == "request_finished" and line.get("request_id", "").startswith(prefix)
        ),
        count,
    )
    workers: dict[int, Counter] = {}
    for line in lines:
        workers.setdefault(line["pid"], Counter())[line["status"]] += 1
    return workers


def csrf_token(page: requests.Response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
