"""Charge throughput side by side: pgbench, a bare DRF view, and PayLedger.

Each runs the same charge (conditional debit, phone credit, charge row,
journal row, event) against its own scratch PostgreSQL database on this machine:
pgbench runs the SQL alone; the bare view (bench/bare/) and PayLedger run
under gunicorn with gunicorn.conf.py (started and stopped by testing's Server,
as the tests' servers are) and are driven by wrk over loopback.
Each is measured "hot" (every charge from one seller, so they queue on its
row lock) and "spread" (over 20 sellers). Prints one table, writes
bench/results/latest.json, then runs verify_ledger on all three databases
and exits non-zero if any books are broken or any answer was not 2xx.

The databases are named PREFIX + sql, bare and app (PREFIX: --db-prefix, else
PAYLEDGER_BENCH_DB_PREFIX, else payledger_bench_) and are dropped and created
afresh on every run, but only if this benchmark created them (bench/scratch.py).

    make bench                                   # 10 s per run
    .venv/bin/python bench/run.py --seconds 3    # the smoke CI runs
    .venv/bin/python bench/run.py --threads 8    # gunicorn's threaded workers
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch import (  # noqa: E402
    ScratchDatabaseError,
    db_prefix,
    scratch_databases_recreate,
)
from testing.processes import Server, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SELLERS = 20
SEED = """
from testing.factories import api_key_make, seller_make
for _ in range({sellers}):
    seller = seller_make(balance=1_000_000_000)
    print("TOKEN", seller.user_id, api_key_make(seller.user))
"""
# The bare view authenticates as DRF does out of the box, by the key in clear in
# DRF's token table (which PayLedger's schema no longer has): the same keys, there.
DRF_TOKENS = """
from rest_framework.authtoken.models import Token
Token.objects.bulk_create(Token(user_id=user_id, key=key) for user_id, key in {tokens!r})
"""
# PayLedger as deployed behind one TLS-terminating proxy, rate limits lifted;
# everything else at its production default, logs included (one JSON line per
# request and one per charge, written to the server's log file, as in production).
PAYLEDGER_ENVIRONMENT = {
    "DEBUG": "false",
    "SECRET_KEY": "benchmark-only-secret-key-" + "x" * 30,
    "PAYLEDGER_WEBHOOK_SECRET_KEYS": "cGF5bGVkZ2VyLWJlbmNobWFyay1vbmx5LWtleS0zMmI=",
    "ALLOWED_HOSTS": "127.0.0.1",
    "PROXY_COUNT": "1",
    "CONN_MAX_AGE": "60",
    "PAYLEDGER_CHARGE_RATE": "1000000000/minute",
}
PROXY_HEADER = "X-Forwarded-Proto: https"


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def manage(database_url: str, *args: str, settings: str = "payledger_project.settings") -> str:
    env = {
        **os.environ,
        **PAYLEDGER_ENVIRONMENT,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": settings,
    }
    return run(sys.executable, str(ROOT / "manage.py"), *args, env=env, cwd=ROOT).stdout


def database_names(prefix: str) -> dict[str, str]:
    """The scratch database of each run: pgbench's, the bare view's, PayLedger's."""
    return {name: f"{prefix}{name}" for name in ("sql", "bare", "app")}


def seeded_database(url: str, drf_tokens: bool = False) -> list[str]:
    """Migrates the empty database at ``url`` and funds sellers; returns their API
    keys, also in DRF's token table if ``drf_tokens`` (for the bare view)."""
    manage(url, "migrate", "--noinput")
    seeded = manage(url, "shell", "--verbosity", "0", "-c", SEED.format(sellers=SELLERS))
    tokens = [
        (int(user_id), key) for user_id, key in re.findall(r"^TOKEN (\d+) (\w+)$", seeded, re.M)
    ]
    if drf_tokens:
        bare = "bench.bare.settings"
        manage(url, "migrate", "--noinput", "authtoken", settings=bare)
        manage(
            url, "shell", "--verbosity", "0", "-c", DRF_TOKENS.format(tokens=tokens), settings=bare
        )
    return [key for _, key in tokens]


def gunicorn(wsgi: str, env: dict[str, str], port: int, threads: int) -> Server:
    """gunicorn with the project's gunicorn.conf.py on loopback (``port``, or a free
    one), ready; ``threads`` per worker (more than 1: gunicorn's gthread workers)."""
    port = port or free_port()
    server = Server(
        [
            sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}", "--threads", str(threads), wsgi,
        ],
        {**os.environ, **env, "PORT": str(port)},
    )  # fmt: skip
    return server.ready()


class CpuUse:
    """Where a run's CPU time went, read from /proc: the Python server (gunicorn's
    master and workers), the load generator (wrk or pgbench, this process's
    children) and the rest of the machine, which under the load is PostgreSQL."""

    def __init__(self, server_pid: int | None = None):
        self.server_pid = server_pid

    @staticmethod
    def _machine() -> float:
        # user, nice, system, idle, iowait, irq, softirq: busy is all but idle and iowait
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")

    def _server(self) -> float:
        if self.server_pid is None:
            return 0.0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended while we looked
                continue
            if stat.parent.name == str(self.server_pid) or fields[1] == str(self.server_pid):
                total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _client() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def _read(self) -> tuple[float, float, float]:
        return self._machine(), self._server(), self._client()

    def __enter__(self) -> "CpuUse":
        self.start = self._read()
        return self

    def __exit__(self, *exc_info) -> None:
        self.end = self._read()

    def per_request_ms(self, requests: int) -> dict[str, float]:
        machine, server, client = (
            end - start for start, end in zip(self.start, self.end, strict=True)
        )
        return {
            "server": 1000 * server / requests,
            "load_generator": 1000 * client / requests,
            "postgres_and_rest": 1000 * max(machine - server - client, 0) / requests,
        }


def wrk(url: str, tokens: list[str], seconds: int, connections: int, server_pid: int) -> dict:
    with (
        tempfile.NamedTemporaryFile("w", suffix=".tokens") as token_file,
        CpuUse(server_pid) as cpu,
    ):
        token_file.write("\n".join(tokens))
        token_file.flush()
        output = run(
            "wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
            "-s", str(BENCH / "charge.lua"), url,
            env={**os.environ, "BENCH_TOKENS": token_file.name, "BENCH_HEADER": PROXY_HEADER},
        ).stdout  # fmt: skip
    figures = json.loads(re.search(r"^BENCH (.*)$", output, re.M).group(1))
    figures["per_second"] = figures["requests"] / figures["seconds"]
    figures["cpu_ms_per_request"] = cpu.per_request_ms(figures["requests"])
    return figures


def pgbench(url: str, sellers: int, seconds: int, connections: int) -> dict:
    # Prepared statements, as PayLedger's charge and token look-up are.
    logs = Path(tempfile.mkdtemp(prefix="payledger-pgbench-"))
    try:
        with CpuUse() as cpu:
            output = run(
                "pgbench", "-n", "-M", "prepared",
                "-c", str(connections), "-j", "2", "-T", str(seconds),
                "-f", str(BENCH / "charge.pgbench"), "-D", f"sellers={sellers}",
                "-l", f"--log-prefix={logs / 'pgbench'}", url,
            ).stdout  # fmt: skip
        latencies = sorted(
            int(line.split()[2]) / 1000
            for log in logs.iterdir()
            for line in log.read_text().splitlines()
        )
    finally:
        shutil.rmtree(logs)
    failed = int(re.search(r"number of failed transactions: (\d+)", output).group(1))
    return {
        "cpu_ms_per_request": cpu.per_request_ms(len(latencies)),
        "requests": len(latencies),
        "per_second": float(re.search(r"tps = ([\d.]+)", output).group(1)),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "non_2xx": failed,
        "socket_errors": 0,
    }


def table(results: dict) -> str:
    rows = [
        "| what | hot req/s | hot p50 / p99 ms | spread req/s | spread p50 / p99 ms | non-2xx |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, runs in results["runs"].items():
        hot, spread = runs["hot"], runs["spread"]
        rows.append(
            f"| {name} | {hot['per_second']:.0f} | {hot['p50_ms']:.1f} / {hot['p99_ms']:.1f}"
            f" | {spread['per_second']:.0f} | {spread['p50_ms']:.1f} / {spread['p99_ms']:.1f}"
            f" | {hot['non_2xx'] + spread['non_2xx']} |"
        )
    rows += [
        "",
        "CPU ms per charge, spread: Python server / load generator / PostgreSQL and the rest",
    ]
    for name, runs in results["runs"].items():
        cpu = runs["spread"]["cpu_ms_per_request"]
        rows.append(
            f"  {name}: {cpu['server']:.2f} / {cpu['load_generator']:.2f}"
            f" / {cpu['postgres_and_rest']:.2f}"
        )
    ratios = results["ratios"]
    rows.append("")
    rows.append(
        f"PayLedger / bare DRF view: hot {ratios['hot_vs_bare']:.2f},"
        f" spread {ratios['spread_vs_bare']:.2f};"
        f" PayLedger / pgbench: hot {ratios['hot_vs_pgbench']:.2f},"
        f" spread {ratios['spread_vs_pgbench']:.2f}"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per gunicorn worker (1: sync workers)"
    )
    parser.add_argument("--output", default=str(BENCH / "results" / "latest.json"))
    parser.add_argument(
        "--db-prefix",
        help="prefix of the scratch databases' names (default: $PAYLEDGER_BENCH_DB_PREFIX,"
        " else payledger_bench_)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="the bare view's port, PayLedger's the next (0: any)"
    )
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    load = (options.seconds, options.connections)
    server_env = {"WEB_CONCURRENCY": str(options.workers)}

    started = time.monotonic()
    try:
        names = database_names(db_prefix(options.db_prefix))
        urls = scratch_databases_recreate(names.values())
    except ScratchDatabaseError as refusal:
        sys.exit(str(refusal))
    databases = {
        name: (url, seeded_database(url, drf_tokens=name == "bare"))
        for name, url in zip(names, urls, strict=True)
    }
    runs = {}

    sql_url, _ = databases["sql"]
    runs["pgbench (the SQL alone)"] = {
        "hot": pgbench(sql_url, 1, *load),
        "spread": pgbench(sql_url, SELLERS, *load),
    }

    bare_url, bare_tokens = databases["bare"]
    bare = gunicorn(
        "bench.bare.wsgi", {**server_env, "DATABASE_URL": bare_url}, options.port, options.threads
    )
    try:
        runs["bare DRF view"] = {
            "hot": wrk(bare.base_url, bare_tokens[:1], *load, bare.process.pid),
            "spread": wrk(bare.base_url, bare_tokens, *load, bare.process.pid),
        }
    finally:
        bare.cleanup()

    app_url, app_tokens = databases["app"]
    app = gunicorn(
        "payledger_project.wsgi",
        {**server_env, **PAYLEDGER_ENVIRONMENT, "DATABASE_URL": app_url},
        options.port and options.port + 1,
        options.threads,
    )
    try:
        runs["PayLedger"] = {
            "hot": wrk(app.base_url, app_tokens[:1], *load, app.process.pid),
            "spread": wrk(app.base_url, app_tokens, *load, app.process.pid),
        }
    finally:
        app.cleanup()

    payledger, bare_view, sql = (
        runs["PayLedger"],
        runs["bare DRF view"],
        runs["pgbench (the SQL alone)"],
    )
    results = {
        "seconds_per_run": options.seconds,
        "connections": options.connections,
        "gunicorn_workers": options.workers,
        "gunicorn_threads": options.threads,
        "runs": runs,
        "ratios": {
            "hot_vs_bare": payledger["hot"]["per_second"] / bare_view["hot"]["per_second"],
            "spread_vs_bare": payledger["spread"]["per_second"] / bare_view["spread"]["per_second"],
            "hot_vs_pgbench": payledger["hot"]["per_second"] / sql["hot"]["per_second"],
            "spread_vs_pgbench": payledger["spread"]["per_second"] / sql["spread"]["per_second"],
        },
    }
    print(table(results))

    broken = []
    for name, (url, _) in databases.items():
        check = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "verify_ledger"],
            env={**os.environ, **PAYLEDGER_ENVIRONMENT, "DATABASE_URL": url},
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        verdict = (check.stdout or check.stderr).strip().splitlines()[-1]
        print(f"verify_ledger on {name}: {verdict}")
        if check.returncode:
            broken.append(name)
    results["verify_ledger_broken"] = broken
    Path(options.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {options.output} in {time.monotonic() - started:.0f} s")
    refused = sum(
        r[kind]["non_2xx"] + r[kind]["socket_errors"] for r in runs.values() for kind in r
    )
    sys.exit(1 if broken or refused else 0)


if __name__ == "__main__":
    main()
