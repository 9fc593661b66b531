"""Charges per second over real HTTP, and proof that the books still balance.

Starts gunicorn on 127.0.0.1 against DATABASE_URL (a scratch PostgreSQL
database), registers sellers with credit, fires --charges phone charges from
--clients threads, then prints throughput, latency percentiles and the
verify_ledger verdict. Every request goes to this machine's loopback only.

    createdb -h 127.0.0.1 -U postgres payledger_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/payledger_bench \\
        .venv/bin/python scripts/bench_charges.py --charges 5000 --clients 16
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def server_environment(database_url: str, log_level: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": "benchmark-only-secret-key",
        "PAYLEDGER_WEBHOOK_SECRET_KEYS": "cGF5bGVkZ2VyLWJlbmNobWFyay1vbmx5LWtleS0zMmI=",
        # Plain HTTP on loopback, as behind the TLS-terminating proxy.
        "SECURE_SSL_REDIRECT": "false",
        "PAYLEDGER_CHARGE_RATE": "100000000/minute",
        "PAYLEDGER_ANON_AUTH_RATE": "100000000/minute",
        "PAYLEDGER_LOG_LEVEL": log_level,
    }


def manage(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


SETUP = """
from testing.factories import api_key_make, seller_make
for _ in range({sellers}):
    seller = seller_make(balance={balance})
    print(api_key_make(seller.user))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sellers", type=int, default=16)
    parser.add_argument("--phones", type=int, default=64, help="distinct phone numbers charged")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn process")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--log-level", default="WARNING", help="PAYLEDGER_LOG_LEVEL of the server")
    options = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        sys.exit("Set DATABASE_URL to a scratch PostgreSQL database (see this script's help).")
    scratch = tempfile.mkdtemp(prefix="payledger-bench-")
    env = server_environment(database_url, options.log_level)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    # Each seller can afford exactly its share of the charges, so the run also
    # proves nothing is overdrawn: every charge must succeed and balances end at 0.
    per_seller = -(-options.charges // options.sellers)
    output = manage(env, "shell", "-c", SETUP.format(sellers=options.sellers, balance=per_seller))
    tokens = [line for line in output.split() if len(line) == 40]

    # gunicorn.conf.py (read from the project root) as in production, with the
    # workers and threads asked for; its JSON lines go to a file, not the terminal.
    server_log = Path(scratch) / "server.log"
    # CPU of the server's processes, counted when gunicorn has reaped them:
    # steadier than throughput on a machine that is busy with other work.
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(server_log, "wb") as log:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                "--bind", f"127.0.0.1:{options.port}", "--workers", str(options.workers),
                "--threads", str(options.threads), "--log-level", "warning",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{options.port}/api/payments/phone-charge/"
    phones = [f"+1415555{number:04d}" for number in range(1000, 1000 + options.phones)]
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{options.port}/healthz", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.1)

        def charge(index: int) -> tuple[int, float]:
            began = time.perf_counter()
            response = requests.post(
                url,
                json={"phone_number": phones[index % len(phones)], "amount": 1},
                headers={"Authorization": f"Token {tokens[index % len(tokens)]}"},
                timeout=60,
            )
            return response.status_code, time.perf_counter() - began

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=options.clients) as pool:
            results = list(pool.map(charge, range(options.charges)))
        elapsed = time.perf_counter() - began
    finally:
        server.terminate()
        server.wait(timeout=30)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = sum(
        getattr(cpu_after, field) - getattr(cpu_before, field) for field in ("ru_utime", "ru_stime")
    )

    latencies = sorted(seconds * 1000 for _, seconds in results)
    statuses = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    ledger = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_ledger"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    print(f"database            {database_url.rsplit('@', 1)[-1]}")
    print(f"server              gunicorn {options.workers} workers x {options.threads} threads")
    print(
        f"load                {options.charges} charges from {options.clients} client threads,"
        f" {options.sellers} sellers, {options.phones} phone numbers"
    )
    print(f"statuses            {statuses}")
    print(f"throughput          {options.charges / elapsed:.0f} charges/s ({elapsed:.1f} s)")
    p95, p99 = (latencies[int(len(latencies) * share)] for share in (0.95, 0.99))
    print(
        f"latency ms          p50 {statistics.median(latencies):.1f}  p95 {p95:.1f}"
        f"  p99 {p99:.1f}  max {latencies[-1]:.1f}"
    )
    print(
        f"server CPU          {server_cpu:.1f} s, {server_cpu / options.charges * 1000:.2f} ms"
        " per charge (startup included)"
    )
    print(f"verify_ledger       {(ledger.stdout or ledger.stderr).strip()}")
    print(f"server log          {server_log}")
    sys.exit(0 if ledger.returncode == 0 and statuses == {201: options.charges} else 1)


if __name__ == "__main__":
    main()
