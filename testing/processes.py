"""Servers as processes, without Django: a free loopback port, a server started in
its own process group with its output in a log file, readiness polled, and the
server stopped by its group id.

Tests reach these through ``testing.servers`` (which adds the test database and the
production environment); the benchmark, which runs outside Django, imports them here.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One server (gunicorn, through `make serve` or directly, or runserver), its log,
    and how to stop it."""

    def __init__(
        self,
        command: list[str],
        environment: dict[str, str],
        ready_path: str = "/healthz",
        cwd: Path = ROOT,
        stderr_apart: bool = False,
    ):
        """``stderr_apart``: stderr goes to a file of its own (``errors()``), so the
        log holds stdout alone."""
        self.base_url = f"http://127.0.0.1:{environment['PORT']}"
        self.ready_path = ready_path
        self.log_dir = tempfile.TemporaryDirectory(prefix="payledger-server-")
        self.log_path = Path(self.log_dir.name) / "server.log"
        self.errors_path = Path(self.log_dir.name) / "stderr.log"
        with open(self.log_path, "wb") as log, open(self.errors_path, "wb") as errors:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
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
                if requests.get(self.url(self.ready_path), timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the server did not answer in {START_TIMEOUT} s:\n{self.output()}")

    def ready(self) -> "Server":
        """This server once it answers; one that never does is cleaned up (the error
        carries its log)."""
        try:
            self.wait_until_ready()
        except AssertionError:
            self.cleanup()
            raise
        return self

    def stop(self, signal_number: int = signal.SIGTERM) -> None:
        """Signals the process group (make, and the gunicorn master and workers it
        started; or runserver's reloader and its child, with SIGINT, a Ctrl-C) and
        waits for the command to exit."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal_number)
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
