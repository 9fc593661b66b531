"""Gunicorn settings for PayLedger, read by `make serve` (gunicorn -c gunicorn.conf.py).

Environment:
- PORT (8000) and HOST (127.0.0.1): the address to listen on. Loopback by
  default, so only a proxy on the same machine reaches the app server: with
  PROXY_COUNT=1 the application believes the last X-Forwarded-For entry, and a
  client that reached the app port directly could write its own and escape the
  login limit. Set HOST=0.0.0.0 (or the private interface's address) when the
  proxy or platform router reaches the app from another host or container, and
  let nothing but the proxy reach that port.
- WEB_CONCURRENCY (2 x cores + 1): worker processes.
- PROMETHEUS_MULTIPROC_DIR: where workers share their metrics; a fresh
  temporary directory when unset, emptied at start either way.
"""

import glob
import multiprocessing
import os
import shutil
import tempfile

from payledger_project.environment import env

wsgi_app = "payledger_project.wsgi:application"
bind = f"{env.str('HOST', '127.0.0.1')}:{env.int('PORT', 8000)}"
workers = env.int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)

# The master loads the application once and every worker is forked from it,
# ready to serve: a new or recycled worker does not spend its first requests
# importing Django and the project (half a second of CPU each, which the first
# requests of a run, or after every recycling, waited for). No database or
# cache connection is opened while loading, so none is shared across the fork.
# New code therefore needs a restart of the master, not a HUP.
preload_app = True

# A request stuck for 30 s gets its worker replaced; on SIGTERM workers get
# 30 s to finish what they are serving. Workers are recycled after about
# 10,000 requests, at staggered moments, to bound slow leaks (at 1,000 each
# worker restarted every few seconds under the benchmark's load, and requests
# queued behind the restart timed out).
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 10_000
max_requests_jitter = 1_000

# JSON lines on stdout: gunicorn's error log, like the application's own lines.
# No access log: the application writes one line per response already
# (request_finished, with its X-Request-ID, the socket peer and the worker's
# pid), and a second line per request cost every request its formatting.
accesslog = None
errorlog = "-"
loglevel = "info"
logger_class = "payledger_project.ops.gunicorn.JsonLogger"
# The sync worker, answering what gunicorn itself refuses (a request line over
# limit_request_line, 4094 bytes; a header over limit_request_field_size, 8190;
# malformed HTTP) as 414, 431 or 400 in the API's JSON error shape, statuses
# the OpenAPI schema lists for every operation.
worker_class = "payledger_project.ops.gunicorn.JsonErrorWorker"

# Django alone decides what a forwarding header means (PROXY_COUNT): gunicorn
# must not turn X-Forwarded-Proto from a loopback peer into https on its own.
forwarded_allow_ips = ""
secure_scheme_headers = {}
# No runtime control socket: nothing uses it, and one per user would be shared.
control_socket_disable = True

# prometheus_client multiprocess mode: every worker writes its samples to
# files in one directory and /metrics adds them up. The variable must be set
# before a worker imports prometheus_client, so it is set here, in the master.
metrics_dir = env.str("PROMETHEUS_MULTIPROC_DIR", "")
_metrics_dir_made = not metrics_dir
if _metrics_dir_made:
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="payledger-metrics-"
    )


def on_starting(server) -> None:
    # Samples of an earlier run would be added to this run's.
    for path in glob.glob(os.path.join(metrics_dir, "*.db")):
        os.remove(path)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _metrics_dir_made:
        shutil.rmtree(metrics_dir, ignore_errors=True)
