"""Where a charge's Python time goes: charges through PayLedger's WSGI application
in this process, against a scratch PostgreSQL database seeded as `make bench`
seeds it, with the benchmark's environment (production defaults, INFO logs to
/dev/null). Prints the CPU per charge without a profiler, then cProfile's top
functions by cumulative time. The database is PREFIX + profile, under `make
bench`'s prefix setting and rule: dropped only if the benchmark created it.

    .venv/bin/python bench/profile_charge.py                 # 2,000 charges
    .venv/bin/python bench/profile_charge.py --charges 500 --top 40
"""

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import PAYLEDGER_ENVIRONMENT, seeded_database  # noqa: E402
from bench.scratch import ScratchDatabaseError, db_prefix, scratch_databases_recreate  # noqa: E402


@contextlib.contextmanager
def stdout_discarded():
    """The JSON log lines go to file descriptor 1, as under gunicorn; here, to /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def charge_environ(token: str) -> dict:
    body = json.dumps(
        {"phone_number": f"+1415555{random.randint(1000, 1999)}", "amount": 1}
    ).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/payments/phone-charge/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_X_FORWARDED_PROTO": "https",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30, help="functions to print")
    parser.add_argument("--sort", default="cumulative", help="a pstats sort key, e.g. tottime")
    parser.add_argument(
        "--db-prefix",
        help="prefix of the scratch database's name (default: $PAYLEDGER_BENCH_DB_PREFIX,"
        " else payledger_bench_)",
    )
    options = parser.parse_args()

    try:
        [url] = scratch_databases_recreate([f"{db_prefix(options.db_prefix)}profile"])
    except ScratchDatabaseError as refusal:
        sys.exit(str(refusal))
    tokens = seeded_database(url)
    os.environ.update({**PAYLEDGER_ENVIRONMENT, "DATABASE_URL": url})
    from payledger_project.wsgi import application

    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def charges(count: int) -> None:
        for _ in range(count):
            b"".join(application(charge_environ(random.choice(tokens)), start_response))

    with stdout_discarded():
        charges(200)  # connections, caches and first-use imports, as a warm worker has them
        started = time.process_time()
        charges(options.charges)
        cpu_ms = 1000 * (time.process_time() - started) / options.charges
        profile = cProfile.Profile()
        profile.runcall(charges, options.charges)

    refused = [status for status in statuses if not status.startswith("201")]
    if refused:
        sys.exit(f"{len(refused)} charges were not 201, the first: {refused[0]}")
    print(f"{cpu_ms:.2f} ms of this process's CPU per charge, without the profiler")
    stats = pstats.Stats(profile, stream=sys.stdout).strip_dirs().sort_stats(options.sort)
    stats.print_stats(options.top)


if __name__ == "__main__":
    main()
