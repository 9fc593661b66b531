"""Production on a laptop: `make prod-local`.

Runs the production configuration as a deployment does, on this machine:
`make serve` (the production settings, gunicorn, JSON log lines) and `make
worker` (webhook deliveries), behind a small TLS-terminating proxy on
https://localhost:8443 that overwrites X-Forwarded-For and X-Forwarded-Proto,
as the README asks of the proxy in front (PROXY_COUNT=1). So the admin's
Secure cookies, its CSRF origin check, the HTTPS redirect and HSTS all work
as they do in production.

What it sets, unless the environment already does:
- SECRET_KEY and PAYLEDGER_WEBHOOK_SECRET_KEYS: throwaway values generated once
  into ``.prod-local/secrets.env`` (git-ignored, mode 0600), with a self-signed
  certificate for localhost and 127.0.0.1 beside them;
- DATABASE_URL: the developer's embedded PostgreSQL (the one `make run` uses),
  kept running while this runs;
- ALLOWED_HOSTS: ``localhost,127.0.0.1``; PORT (the app server): 8000.
PROXY_COUNT is always 1 and DEBUG never set.

stdout carries the servers' log lines only (JSON, one object per line);
this script's own words (where to browse, what failed) go to stderr.
Ctrl-C (or SIGTERM) stops the proxy, the server and the worker.
"""

import argparse
import datetime
import http.client
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

# Headers of one hop only, never forwarded (RFC 9110, 7.6.1); the forwarding
# headers are written by the proxy, never passed through from the client.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length", "x-forwarded-for", "x-forwarded-proto",
}  # fmt: skip
UPSTREAM_TIMEOUT = 60
CLIENT_TIMEOUT = 30
START_TIMEOUT = 90
STOP_TIMEOUT = 40
CERTIFICATE_DAYS = 90


def say(message: str) -> None:
    print(f"prod-local: {message}", file=sys.stderr, flush=True)


def secrets_load(path: Path) -> dict[str, str]:
    """The throwaway secrets, generated on first use and kept for the next run
    (sessions and webhook secrets stay valid across restarts)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        values = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "PAYLEDGER_WEBHOOK_SECRET_KEYS": Fernet.generate_key().decode(),
        }
        path.touch(mode=0o600)
        path.write_text(
            "# Throwaway secrets for `make prod-local` on this machine only.\n"
            + "".join(f"{name}={value}\n" for name, value in values.items())
        )
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )


def certificate_make(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, made again when it
    is missing or expires within a day."""
    certificate, key = directory / "localhost.pem", directory / "localhost-key.pem"
    now = datetime.datetime.now(datetime.UTC)
    if certificate.exists() and key.exists():
        existing = x509.load_pem_x509_certificate(certificate.read_bytes())
        if existing.not_valid_after_utc > now + datetime.timedelta(days=1):
            return certificate, key
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PayLedger prod-local")])
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    issued = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key.touch(mode=0o600)
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certificate.write_bytes(issued.public_bytes(serialization.Encoding.PEM))
    return certificate, key


class ForwardingHandler(BaseHTTPRequestHandler):
    """One request from the browser, forwarded to the app server, answered, closed."""

    server: "TlsProxy"

    def do_request(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.error_send(411, "length_required", "Send the body with a Content-Length.")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    upstream.putheader(name, value)
            # Overwritten, not appended to: the client's own values are never believed.
            upstream.putheader("X-Forwarded-For", self.client_address[0])
            upstream.putheader("X-Forwarded-Proto", "https")
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            payload = response.read()
        except OSError:
            self.error_send(502, "bad_gateway", "The application server did not answer.")
            return
        finally:
            upstream.close()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_request

    def error_send(self, status: int, code: str, message: str) -> None:
        """The proxy's own refusals, in the API's error shape."""
        payload = json.dumps({"code": code, "message": message}).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:
        """Nothing: the application logs every request it answers."""


class TlsProxy(ThreadingHTTPServer):
    """HTTPS on loopback; each connection's TLS handshake runs in its own thread."""

    def __init__(self, port: int, upstream: tuple[str, int], context: ssl.SSLContext):
        self.upstream = upstream
        self.context = context
        super().__init__(("127.0.0.1", port), ForwardingHandler)

    def finish_request(self, request: socket.socket, client_address) -> None:
        request.settimeout(CLIENT_TIMEOUT)
        with self.context.wrap_socket(request, server_side=True) as tls:
            self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request, client_address) -> None:
        # A browser refusing the self-signed certificate, or hanging up, is routine.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def app_ready(port: int, children: list[subprocess.Popen]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/healthz", headers={"Host": "localhost"})
            if probe.getresponse().status == 200:
                return True
        except OSError:
            pass
        finally:
            probe.close()
        time.sleep(0.2)
    return False


def children_stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def environment_make(state_dir: Path) -> dict[str, str]:
    environment = dict(os.environ)
    for name, value in secrets_load(state_dir / "secrets.env").items():
        environment.setdefault(name, value)
    environment.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1")
    environment.setdefault("PORT", "8000")
    environment.pop("DEBUG", None)
    environment.update({"PROXY_COUNT": "1", "DJANGO_SETTINGS_MODULE": "payledger_project.settings"})
    if not environment.get("DATABASE_URL"):
        from payledger_project.postgresql import embedded

        # This process joins the embedded server's users: it stays up while this runs.
        environment["DATABASE_URL"] = embedded.database_url()
    return environment


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--https-port", type=int, default=8443)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".prod-local")
    options = parser.parse_args()

    environment = environment_make(options.state_dir)
    certificate, key = certificate_make(options.state_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    app_port = int(environment["PORT"])

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    # make's own messages (directories) stay out of stdout, which is log lines only.
    make = ["make", "--no-print-directory", "--silent"]
    children = [subprocess.Popen([*make, "serve"], cwd=ROOT, env=environment)]
    try:
        if not app_ready(app_port, children):
            say("the server did not start; its output is above.")
            return 1
        # After the server, whose start migrated the database the worker reads.
        children.append(subprocess.Popen([*make, "worker"], cwd=ROOT, env=environment))
        proxy = TlsProxy(options.https_port, ("127.0.0.1", app_port), context)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        url = f"https://localhost:{options.https_port}"
        say(
            f"the production settings are served on {url}/ (a self-signed certificate for"
            f" localhost: accept it once), through a TLS proxy to gunicorn on 127.0.0.1:"
            f"{app_port}, with a webhook worker. Health: {url}/healthz; admin: {url}/admin/"
            " (create a login with `.venv/bin/python manage.py createsuperuser`, or `make demo`)."
            " Ctrl-C stops."
        )
        while not stopping.wait(0.5):
            if any(child.poll() is not None for child in children):
                say("the server or the worker exited; stopping.")
                return 1
        proxy.shutdown()
        return 0
    finally:
        children_stop(children)


if __name__ == "__main__":
    sys.exit(main())
