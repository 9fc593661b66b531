"""Cost as the books grow: the same requests on one book at several sizes.

Generates a large book straight into a scratch database (testing/book.py: set-based
SQL, a consistent journal, 100,000 sellers with skewed activity by default), grows it
in steps (``--sizes``, journal rows), and at each size serves it with gunicorn as
deployed (testing/servers.py: production settings, gunicorn.conf.py) and times over
HTTP what a client sees: p50/p99 of a charge (the hot seller, and spread over
sellers), the journal's first and a deep page, a statement over a month and a year,
the balance at an instant, a month's CSV export (time to first byte, rows per
second, the serving worker's peak memory), the event feed from an old cursor, the
admin's pending list and a seller's page; then ``verify_ledger`` whole and for one
seller. Last, charge throughput with wrk on the grown book and on an empty one, side
by side. Prints the table and writes bench/results/<date>-scale.md with the EXPLAIN
plans of the queries it times.

The database is named PREFIX + "scale" (and PREFIX + "scale_empty"; PREFIX from
--db-prefix, else PAYLEDGER_BENCH_DB_PREFIX, else payledger_bench_) and is dropped
and created afresh only if the benchmark created it (bench/scratch.py).

    make bench-scale                                        # 100k, 1M and 10M rows
    .venv/bin/python bench/scale.py --sizes 20000,200000 --sellers 5000   # a quick look
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import PAYLEDGER_ENVIRONMENT, seeded_database, wrk  # noqa: E402
from bench.scratch import ScratchDatabaseError, db_prefix, scratch_databases_recreate  # noqa: E402

SPAN = timedelta(days=730)
BENCH_SELLERS = 20  # funded sellers the charges come from


def django_for(url: str) -> None:
    """This process's Django, on the scratch database with the production settings."""
    os.environ.update(PAYLEDGER_ENVIRONMENT)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "payledger_project.settings"
    import django

    django.setup()


def percentiles(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def timed(call, count: int) -> dict[str, float]:
    """p50/p99 of ``count`` calls after two to warm up; each must answer 2xx."""
    durations = []
    for attempt in range(count + 2):
        started = time.perf_counter()
        response = call()
        elapsed = time.perf_counter() - started
        if not response.ok:
            raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
        if attempt >= 2:
            durations.append(elapsed)
    return percentiles(durations)


class PeakMemory:
    """The largest resident set of any of the server's workers while it runs (from
    /proc, every 20 ms), less what the largest had before: what one request cost."""

    def __init__(self, master_pid: int):
        self.master_pid = master_pid

    def _workers(self) -> dict[int, int]:
        sizes = {}
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(
                    line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
                )
            except OSError:
                continue
            if fields.get("PPid", "").strip() == str(self.master_pid):
                sizes[int(status.parent.name)] = int(fields["VmRSS"].split()[0])
        return sizes

    def __enter__(self) -> "PeakMemory":
        self.before = self._workers()
        self.peak = dict(self.before)
        self.running = True
        self.thread = threading.Thread(target=self._watch)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while self.running:
            for pid, size in self._workers().items():
                self.peak[pid] = max(self.peak.get(pid, 0), size)
            time.sleep(0.02)

    def __exit__(self, *exc_info) -> None:
        self.running = False
        self.thread.join()

    @property
    def growth_mb(self) -> float:
        return max(self.peak[pid] - self.before.get(pid, 0) for pid in self.peak) / 1024


def export_figures(session, url: str, master_pid: int) -> dict[str, float]:
    with PeakMemory(master_pid) as memory:
        started = time.perf_counter()
        response = session.get(url, stream=True)
        response.raise_for_status()
        lines = response.iter_lines()
        next(lines)
        first_byte = time.perf_counter() - started
        rows = sum(1 for _ in lines)
        total = time.perf_counter() - started
    return {
        "first_byte_ms": 1000 * first_byte,
        "rows": rows,
        "rows_per_second": rows / total,
        "worker_peak_growth_mb": memory.growth_mb,
    }


def verify_seconds(url: str, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    check = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_ledger", *args],
        env={**os.environ, "DATABASE_URL": url},
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    verdict = (check.stdout or check.stderr).strip().splitlines()[-1]
    if check.returncode:
        raise RuntimeError(f"verify_ledger {' '.join(args)}: {verdict}")
    return time.monotonic() - started, verdict


class ScaleRun:
    """One book grown through ``sizes``, measured at each."""

    def __init__(self, url: str, empty_url: str, options: argparse.Namespace):
        self.url, self.empty_url, self.options = url, empty_url, options
        self.results: list[dict] = []
        self.plans: dict[int, dict[str, str]] = {}

    def setup(self) -> None:
        from django.core.management import call_command
        from django.utils import timezone

        from testing.book import book_setup
        from testing.servers import superuser_make
        from webhooks.fields import secret_encrypt

        self.charge_tokens = seeded_database(self.url)
        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)  # as make serve does
        self.end = timezone.now()
        started = time.monotonic()
        book_setup(
            sellers=self.options.sellers,
            start=self.end - SPAN - timedelta(days=1),
            webhook_secret=secret_encrypt("whsec_scale"),
        )
        superuser_make()
        print(f"set up {self.options.sellers} sellers in {time.monotonic() - started:.0f} s")

    def grow(self, size: int, final_size: int) -> float:
        from django.db import connection

        from testing.book import book_grow

        started = time.monotonic()
        book_grow(to_rows=size, final_rows=final_size, end=self.end, span=SPAN)
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")  # production's is seconds
            cursor.execute("VACUUM ANALYZE")  # the visibility map index-only scans need
        return time.monotonic() - started

    def readers(self) -> dict:
        """The hot seller and a typical one (the median rank), their keys and their
        journal's span; the book's newest instant."""
        from django.contrib.auth import get_user_model
        from django.db.models import Count, Max, Min

        from payments.models import Event, Transaction
        from testing.book import USERNAME_PREFIX
        from testing.factories import api_key_make

        users = get_user_model().objects.select_related("seller")
        hot = users.get(username=f"{USERNAME_PREFIX}1")
        typical = users.get(username=f"{USERNAME_PREFIX}{self.options.sellers // 2}")
        journal = Transaction.objects.filter(seller_id=hot.seller.pk).aggregate(
            first=Min("created_at"), last=Max("created_at"), rows=Count("id")
        )
        return {
            "hot": hot,
            "typical": typical,
            "hot_token": api_key_make(hot),
            "typical_token": api_key_make(typical),
            "hot_rows": journal["rows"],
            "typical_rows": Transaction.objects.filter(seller_id=typical.seller.pk).count(),
            "first": journal["first"],
            "now": journal["last"],
            "first_event": Event.objects.filter(seller_id=hot.seller.pk)
            .order_by("id")
            .values_list("id", flat=True)
            .first(),
        }

    def server_for(self, url: str):
        """gunicorn as deployed behind one proxy, on the book at ``url``, ready; the
        charge rate limit lifted."""
        from testing.servers import Server, production_environment

        environment = production_environment(
            DATABASE_URL=url,
            WEB_CONCURRENCY=str(self.options.workers),
            PROXY_COUNT="1",
            CONN_MAX_AGE="60",
            PAYLEDGER_CHARGE_RATE=PAYLEDGER_ENVIRONMENT["PAYLEDGER_CHARGE_RATE"],
        )
        server = Server(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"], environment
        )
        return server.ready()

    def measure(self, size: int) -> dict:
        from payments.models import Transaction
        from testing.factories import PASSWORD
        from testing.servers import (
            HOST,
            ProxiedSession,
            csrf_token,
        )

        readers = self.readers()
        checked_up_to = Transaction.objects.order_by("-id").values_list("id", flat=True).first()
        now, first = readers["now"], readers["first"]
        middle = first + (now - first) / 2
        month = {"from": iso(now - timedelta(days=30)), "to": iso(now)}
        year = {"from": iso(now - timedelta(days=365)), "to": iso(now)}
        server = self.server_for(self.url)
        try:
            api = {}
            for name in ("hot", "typical"):
                session = ProxiedSession()
                session.headers["Authorization"] = f"Token {readers[name + '_token']}"
                api[name] = session
            chargers = []
            for token in self.charge_tokens:
                session = ProxiedSession()
                session.headers["Authorization"] = f"Token {token}"
                chargers.append(session)
            spread = iter(range(10**9))
            charge = {"phone_number": "+14155550123", "amount": 1}
            hot, typical, count = api["hot"], api["typical"], self.options.requests
            path = server.url
            figures = {
                "charge, hot seller": timed(
                    lambda: chargers[0].post(path("/api/payments/phone-charge/"), json=charge),
                    count,
                ),
                "charge, spread": timed(
                    lambda: chargers[next(spread) % len(chargers)].post(
                        path("/api/payments/phone-charge/"), json=charge
                    ),
                    count,
                ),
                "charges list, first page (hot)": timed(
                    lambda: hot.get(path("/api/payments/phone-charges/")), count
                ),
                "charges list, first page (typical)": timed(
                    lambda: typical.get(path("/api/payments/phone-charges/")), count
                ),
                "journal, first page (hot)": timed(
                    lambda: hot.get(path("/api/payments/transactions/")), count
                ),
                "journal, first page (typical)": timed(
                    lambda: typical.get(path("/api/payments/transactions/")), count
                ),
                "journal, a deep page (hot)": timed(
                    lambda: hot.get(
                        path("/api/payments/transactions/"), params={"created_before": iso(middle)}
                    ),
                    count,
                ),
                "statement, a month (hot)": timed(
                    lambda: hot.get(path("/api/payments/statement/"), params=month), count
                ),
                "statement, a year (hot)": timed(
                    lambda: hot.get(path("/api/payments/statement/"), params=year), count
                ),
                "balance at an instant (hot)": timed(
                    lambda: hot.get(path("/api/sellers/me/"), params={"at": iso(middle)}), count
                ),
                "event feed from its first event (hot)": timed(
                    lambda: hot.get(
                        path("/api/payments/events/"), params={"after": readers["first_event"]}
                    ),
                    count,
                ),
            }
            staff = ProxiedSession()
            staff.headers.update({"Origin": f"https://{HOST}", "Referer": f"https://{HOST}/admin/"})
            login = staff.get(path("/admin/login/?next=/admin/"))
            staff.post(
                path("/admin/login/?next=/admin/"),
                data={
                    "username": "root",
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": csrf_token(login),
                    "next": "/admin/",
                },
            ).raise_for_status()
            seller_page = f"/admin/sellers/seller/{readers['hot'].seller.pk}/change/"
            figures["admin: pending credit requests"] = timed(
                lambda: staff.get(path("/admin/payments/creditrequest/")), count // 4 or 1
            )
            figures["admin: the hot seller's page"] = timed(
                lambda: staff.get(path(seller_page)), count // 4 or 1
            )
            export = export_figures(
                hot,
                path("/api/payments/transactions/export.csv")
                + f"?created_after={month['from']}&created_before={month['to']}".replace(
                    "+", "%2B"
                ),
                server.process.pid,
            )
        finally:
            server.cleanup()
        verify_whole, verdict = verify_seconds(self.url)
        verify_seller, _ = verify_seconds(self.url, "--seller", str(readers["hot"].seller.pk))
        # From a checkpoint taken before this step's requests: their charges alone.
        verify_after, _ = verify_seconds(self.url, "--after", str(checked_up_to))
        self.plans[size] = self.explain(readers, middle, month, year)
        return {
            "size": size,
            "hot_rows": readers["hot_rows"],
            "typical_rows": readers["typical_rows"],
            "requests": figures,
            "export": export,
            "verify_ledger_s": verify_whole,
            "verify_ledger_seller_s": verify_seller,
            "verify_ledger_after_s": verify_after,
            "verify_verdict": verdict,
        }

    def explain(self, readers: dict, middle, month: dict, year: dict) -> dict[str, str]:
        """EXPLAIN ANALYZE of each timed read's main query, for the hot seller."""
        from django.db.models import Sum

        from payments.models import CreditRequest, Transaction
        from payments.selectors import (
            credit_requests_with_seller_activity,
            event_list,
            phone_charge_list,
            sellers_with_totals,
            transaction_list,
        )
        from sellers.models import Seller

        user, seller_id = readers["hot"], readers["hot"].seller.pk
        year_rows = Transaction.objects.filter(
            seller_id=seller_id,
            created_at__gte=datetime.fromisoformat(year["from"]),
            created_at__lt=datetime.fromisoformat(year["to"]),
        )
        queries = {
            "charges list, first page": phone_charge_list(user=user)[:50],
            "journal, first page": transaction_list(user=user)[:50],
            "journal, a deep page": transaction_list(user=user).filter(created_at__lt=middle)[:50],
            "statement, a year: the totals": year_rows.order_by()
            .values("kind")
            .annotate(total=Sum("amount")),
            "balance at an instant": Transaction.objects.filter(
                seller_id=seller_id, created_at__lt=middle
            )
            .order_by("-created_at", "-id")
            .values("balance_after")[:1],
            "event feed from its first event": event_list(user=user).filter(
                id__gt=readers["first_event"]
            )[:50],
            "admin: pending credit requests": credit_requests_with_seller_activity(
                CreditRequest.objects.filter(status=CreditRequest.Status.PENDING)
            ).order_by("created_at", "id")[:100],
            "admin: a seller's totals": sellers_with_totals(Seller.objects.filter(pk=seller_id)),
        }
        return {name: query.explain(analyze=True, buffers=True) for name, query in queries.items()}

    def charge_throughput(self) -> dict:
        """wrk's charges per second on the grown book and on an empty one, one after
        the other, hot and spread."""
        empty_tokens = seeded_database(self.empty_url)
        runs = {}
        for name, url, tokens in (
            ("empty book", self.empty_url, empty_tokens),
            ("grown book", self.url, self.charge_tokens),
        ):
            server = self.server_for(url)
            try:
                load = (self.options.seconds, 32, server.process.pid)
                runs[name] = {
                    "spread": wrk(server.base_url, tokens, *load),
                    "hot": wrk(server.base_url, tokens[:1], *load),
                }
            finally:
                server.cleanup()
        return runs

    def run(self, sizes: list[int]) -> str:
        self.setup()
        for size in sizes:
            seconds = self.grow(size, sizes[-1])
            print(f"grew the book to {size} journal rows in {seconds:.0f} s")
            result = self.measure(size)
            result["grow_s"] = seconds
            self.results.append(result)
            print(table(self.results))
        throughput = self.charge_throughput()
        return report(self.results, self.plans, throughput, self.options)


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def table(results: list[dict]) -> str:
    sizes = [result["size"] for result in results]
    header = "| operation | " + " | ".join(f"{size:,} rows p50 / p99 ms" for size in sizes)
    ratio = len(results) > 1
    rows = [
        header + (f" | p50 ratio {sizes[-1]:,} / {sizes[0]:,} |" if ratio else " |"),
        "| --- " * (len(sizes) + 1 + ratio) + "|",
    ]
    for operation in results[0]["requests"]:
        cells = [result["requests"][operation] for result in results]
        line = f"| {operation} | " + " | ".join(
            f"{cell['p50_ms']:.1f} / {cell['p99_ms']:.1f}" for cell in cells
        )
        if ratio:
            line += f" | {cells[-1]['p50_ms'] / cells[0]['p50_ms']:.2f}"
        rows.append(line + " |")

    def row(label: str, values: list[str]) -> str:
        return f"| {label} | " + " | ".join(values) + (" | |" if ratio else " |")

    exports = [result["export"] for result in results]
    rows += [
        row("CSV, a month (hot): first byte ms", [f"{e['first_byte_ms']:.1f}" for e in exports]),
        row("CSV, a month (hot): rows", [f"{e['rows']:,}" for e in exports]),
        row("CSV, a month (hot): rows/s", [f"{e['rows_per_second']:,.0f}" for e in exports]),
        row(
            "CSV, a month (hot): worker's peak growth MB",
            [f"{e['worker_peak_growth_mb']:.1f}" for e in exports],
        ),
        row("verify_ledger, whole: s", [f"{r['verify_ledger_s']:.1f}" for r in results]),
        row(
            "verify_ledger --seller (hot): s",
            [f"{r['verify_ledger_seller_s']:.1f}" for r in results],
        ),
        row(
            "verify_ledger --after (the requests' rows): s",
            [f"{r['verify_ledger_after_s']:.1f}" for r in results],
        ),
        row("hot seller's journal rows", [f"{r['hot_rows']:,}" for r in results]),
        row("typical seller's journal rows", [f"{r['typical_rows']:,}" for r in results]),
        row("generating this step: s", [f"{r.get('grow_s', 0):.0f}" for r in results]),
    ]
    return "\n".join(rows)


def report(results: list[dict], plans: dict, throughput: dict, options) -> str:
    lines = [
        f"# Cost as the books grow ({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"`bench/scale.py --sizes {options.sizes} --sellers {options.sellers}"
        f" --requests {options.requests} --workers {options.workers}`, one run on this"
        " machine (2 cores shared with other work). Requests over HTTP to gunicorn with the"
        " production settings; p50 / p99 of sequential requests from one client.",
        "",
        table(results),
        "",
        "## Charge throughput, empty book and grown book side by side",
        "",
        "| book | spread req/s | spread p50 / p99 ms | hot req/s | hot p50 / p99 ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, run in throughput.items():
        spread, hot = run["spread"], run["hot"]
        lines.append(
            f"| {name} | {spread['per_second']:.0f} | {spread['p50_ms']:.1f} /"
            f" {spread['p99_ms']:.1f} | {hot['per_second']:.0f} | {hot['p50_ms']:.1f} /"
            f" {hot['p99_ms']:.1f} |"
        )
    grown, empty = throughput["grown book"], throughput["empty book"]
    lines += [
        "",
        "Grown / empty: spread"
        f" {grown['spread']['per_second'] / empty['spread']['per_second']:.2f},"
        f" hot {grown['hot']['per_second'] / empty['hot']['per_second']:.2f}.",
        "",
        "## Plans (the hot seller, largest size)",
        "",
    ]
    for name, plan in plans[max(plans)].items():
        lines += [f"### {name}", "", "```", plan, "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="journal rows")
    parser.add_argument("--sellers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per operation")
    parser.add_argument("--seconds", type=int, default=10, help="each charge throughput run")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (sync)")
    parser.add_argument("--db-prefix", help="the scratch databases' prefix (bench/scratch.py)")
    parser.add_argument("--output", help="default bench/results/<date>-scale.md")
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    try:
        prefix = db_prefix(options.db_prefix)
        url, empty_url = scratch_databases_recreate([f"{prefix}scale", f"{prefix}scale_empty"])
    except ScratchDatabaseError as refusal:
        sys.exit(str(refusal))
    django_for(url)

    text = ScaleRun(url, empty_url, options).run(sizes)
    output = Path(
        options.output or ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-scale.md"
    )
    output.write_text(text)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
