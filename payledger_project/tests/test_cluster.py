"""The scale-out topology of `make cluster`, proven with its real parts: two gunicorn
app servers through PgBouncer (transaction pooling) to the PostgreSQL primary, a
streaming replica for the reads that may lag, Redis for the shared throttles.

2,000 charges from 32 client threads go to both servers; several sellers run dry;
some keys are retried on the other server; one server (master and workers) is
SIGKILLed mid-load and its clients retry on the other. Then the books are checked on the
primary, the replica is shown serving the journal and catching up exactly, and
(where the suite may restart the machine's PostgreSQL) the primary is restarted
under load.

It starts its own cluster (other ports, another database) beside any `make cluster`,
and runs where PostgreSQL clusters can be created: as root, with Debian's
postgresql-common, on PostgreSQL. A second, smaller cluster (one app server) shows
that `make cluster-down` leaves the machine as `make cluster` found it, and that
nothing connects to the replication line or PgBouncer without the password.
"""

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import skipUnless

import psycopg2
import requests
from django.conf import settings
from django.db import connections
from django.test import SimpleTestCase, tag
from psycopg2.extras import PhysicalReplicationConnection

ROOT = Path(settings.BASE_DIR)
DATABASE = "payledger_cluster_proof"
PORTS = (8111, 8112)
PGBOUNCER_PORT = 6442
POOL_SIZE = 8
REPLICA_PORT = 5443
CLUSTER_DIR = "/tmp/payledger-cluster-proof"
ENVIRONMENT = {
    "CLUSTER_DB": DATABASE,
    "APP_PORTS": " ".join(map(str, PORTS)),
    "PGBOUNCER_PORT": str(PGBOUNCER_PORT),
    "PGBOUNCER_POOL_SIZE": str(POOL_SIZE),
    "REPLICA_PORT": str(REPLICA_PORT),
    "REPLICA_CLUSTER": "payledger_proof_replica",
    "CLUSTER_DIR": CLUSTER_DIR,
    "CLUSTER_REDIS_URL": "redis://127.0.0.1:6379/3",
    "PAYLEDGER_CHARGE_RATE": "1000000/minute",
    "PYTHON": sys.executable,
}
PRIMARY = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": DATABASE}
REPLICA = {**PRIMARY, "port": REPLICA_PORT}

SELLERS = 8
CREDIT = 20_000
AMOUNT = 100
CHARGES = 2_000
THREADS = 32
RETRY_EVERY = 40  # every 40th charge is sent again, with its key, to the other server
KILL_AFTER = CHARGES // 2
PHONE = "+14155550123"
CAN_MAKE_CLUSTERS = os.geteuid() == 0 and shutil.which("pg_createcluster")
# Restarting the machine's PostgreSQL breaks every other connection to it: .ci/run,
# which runs this suite alone, allows it.
MAY_RESTART_PRIMARY = os.environ.get("PAYLEDGER_CLUSTER_RESTART_PRIMARY") == "1"


def cluster(target: str, environment: dict[str, str] = ENVIRONMENT) -> str:
    """`make cluster` or `make cluster-down`, as docs/scaling.md says, on this suite's ports."""
    result = subprocess.run(
        ["make", "--no-print-directory", target, f"VENV={sys.prefix}"],
        env={**os.environ, **environment},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def query(database: dict, sql: str, params=()) -> list[tuple]:
    """One statement on its own connection, outside a transaction (PgBouncer's admin
    console knows no BEGIN)."""
    db = psycopg2.connect(**database)
    try:
        db.autocommit = True
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        db.close()


def passwords(cluster_dir: str = CLUSTER_DIR) -> dict[str, str]:
    """The cluster's roles and their passwords, from its own pgpass file."""
    pgpass = Path(cluster_dir, "pgpass")
    lines = pgpass.read_text().splitlines() if pgpass.exists() else []
    return {line.split(":")[3]: line.split(":")[4] for line in lines if line}


def manage(*args: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "payledger_project.settings",
        "DEBUG": "false",
        "SECRET_KEY": "cluster-proof",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=environment, cwd=ROOT, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


def base(port: int) -> str:
    return f"http://127.0.0.1:{port}"


class Client:
    """One client of the load: charges with a key, retrying on the other server
    whenever an answer is lost (no answer, or 503)."""

    def __init__(self, token: str):
        self.headers = {"Authorization": f"Token {token}"}

    def post(self, port: int, path: str, body: dict, key: str) -> requests.Response:
        return requests.post(
            base(port) + path,
            json=body,
            timeout=30,
            headers={**self.headers, "Idempotency-Key": key},
        )

    def charge(self, first_port: int, key: str, log: Counter) -> requests.Response:
        port = first_port
        for _ in range(40):
            try:
                response = self.post(port, "/api/payments/phone-charge/", self.body, key)
            except requests.ConnectionError:
                log["no answer, retried on the other server"] += 1
            else:
                if response.status_code != 503:
                    return response
                log["503 try_again, retried"] += 1
            port = PORTS[1] if port == PORTS[0] else PORTS[0]
            time.sleep(0.2)
        raise AssertionError(f"{key}: no answer after 40 tries")

    body = {"phone_number": PHONE, "amount": AMOUNT}


@tag("cluster", "long")
@skipUnless(CAN_MAKE_CLUSTERS, "needs root and Debian's pg_createcluster")
class ClusterProofTests(SimpleTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.addClassCleanup(cls.tear_down_cluster)
        cluster("cluster-down")
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DATABASE])
        cls.started = cluster("cluster")
        cls.staff_token = cls.staff_make()
        cls.sellers = [cls.seller_make(number) for number in range(SELLERS)]
        cls.run_the_load()

    @classmethod
    def tear_down_cluster(cls):
        cluster("cluster-down")
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DATABASE])
        connections.close_all()

    @classmethod
    def staff_make(cls) -> str:
        result = manage(
            "shell", "-c",
            "from django.contrib.auth.models import User, Group;"
            "from sellers.services import api_key_create;"
            "staff = User.objects.create_user('approver', is_staff=True);"
            "staff.groups.add(Group.objects.get(name='Credit approvers'));"
            "print(api_key_create(user=staff)[1])",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.split()[-1]

    @classmethod
    def seller_make(cls, number: int, ports: tuple[int, int] = PORTS) -> dict:
        """A seller registered on one server, logged in and credited on the other."""
        credentials = {"username": f"shop{number}", "password": "a-long-passphrase-42"}
        registered = requests.post(
            base(ports[0]) + "/api/sellers/", json={**credentials, "name": f"Shop {number}"}
        )
        assert registered.status_code == 201, registered.text
        token = requests.post(base(ports[1]) + "/api-token-auth/", json=credentials).json()["token"]
        asked = requests.post(
            base(ports[0]) + "/api/payments/credit-requests/",
            json={"amount": CREDIT},
            headers={"Authorization": f"Token {token}"},
        ).json()
        approved = requests.post(
            base(ports[1]) + f"/api/payments/credit-requests/{asked['id']}/approve/",
            headers={"Authorization": f"Token {cls.staff_token}"},
        )
        assert approved.status_code == 200, approved.text
        return {"id": registered.json()["id"], "token": token}

    @classmethod
    def run_the_load(cls):
        cls.log = Counter()
        cls.outcomes: dict[str, tuple[int, dict]] = {}
        cls.replays: list[tuple[requests.Response, dict]] = []
        cls.pool_peak = 0
        cls.lag_peak = 0.0
        done = threading.Event()
        finished = Counter()
        # PgBouncer's console, as the app role that may read it, with its password.
        app_role = f"{DATABASE}_app"
        console = PRIMARY | {"port": PGBOUNCER_PORT, "dbname": "pgbouncer", "user": app_role}
        console["password"] = passwords()[app_role]
        lock = threading.Lock()

        def watch():
            while not done.is_set():
                pools = query(console, "SHOW POOLS")
                servers = sum(row[4] + row[5] + row[6] + row[7] + row[8] for row in pools
                              if row[0] == DATABASE)  # fmt: skip
                lag = query(
                    PRIMARY,
                    "SELECT COALESCE(max(extract(epoch FROM replay_lag)), 0)"
                    " FROM pg_stat_replication",
                )[0][0]
                cls.pool_peak = max(cls.pool_peak, servers)
                cls.lag_peak = max(cls.lag_peak, float(lag))
                time.sleep(0.05)

        def one_charge(number: int):
            seller = cls.sellers[number % SELLERS]
            client = Client(seller["token"])
            key = f"charge-{number}"
            response = client.charge(PORTS[number % 2], key, cls.log)
            if number % RETRY_EVERY == 0 and response.status_code == 201:
                other = PORTS[1] if number % 2 == 0 else PORTS[0]
                cls.replays.append((client.charge(other, key, cls.log), response.json()))
            with lock:
                cls.outcomes[key] = (response.status_code, response.json())
                finished["charges"] += 1
                if finished["charges"] == KILL_AFTER:
                    # The whole server at once, master and workers, as when its host
                    # dies: requests it holds get no answer.
                    master = int(Path(CLUSTER_DIR, f"app-{PORTS[0]}.pid").read_text())
                    os.killpg(os.getpgid(master), signal.SIGKILL)
                    cls.log["app servers killed"] += 1

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(THREADS) as clients:
                list(clients.map(one_charge, range(CHARGES)))
        finally:
            done.set()
            watcher.join()
        charged = sum(1 for status, _ in cls.outcomes.values() if status == 201)
        print(
            f"\ncluster proof: {CHARGES} charges sent from {THREADS} threads to 2 servers,"
            f" {charged} landed, {CHARGES - charged} refused, {len(cls.replays)} keys retried"
            f" on the other server, duplicates {cls.charges_on_the_primary() - charged},"
            f" PgBouncer server connections at most {cls.pool_peak} of {POOL_SIZE},"
            f" replica lag at most {cls.lag_peak * 1000:.1f} ms; {dict(cls.log)}"
        )

    @classmethod
    def charges_on_the_primary(cls) -> int:
        """The load's charges (other tests here add sellers of their own)."""
        return query(
            PRIMARY,
            "SELECT count(*) FROM payments_phonecharge WHERE seller_id = ANY(%s)",
            [[seller["id"] for seller in cls.sellers]],
        )[0][0]

    def test_each_seller_lands_exactly_what_its_credit_covers_and_no_more(self):
        landed = Counter()
        for status, body in self.outcomes.values():
            if status == 201:
                landed[body["seller"]] += 1
        self.assertEqual(
            landed, Counter({seller["id"]: CREDIT // AMOUNT for seller in self.sellers})
        )

    def test_every_other_charge_is_refused_as_insufficient_balance(self):
        refusals = Counter(body["code"] for status, body in self.outcomes.values() if status != 201)
        self.assertEqual(
            refusals, Counter(insufficient_balance=CHARGES - SELLERS * CREDIT // AMOUNT)
        )

    def test_no_charge_landed_twice(self):
        charged = sum(1 for status, _ in self.outcomes.values() if status == 201)
        self.assertEqual(self.charges_on_the_primary(), charged)

    def test_a_key_retried_on_the_other_server_replays_the_first_answer(self):
        self.assertGreater(len(self.replays), 0)
        for replay, first in self.replays:
            with self.subTest(charge=first["id"]):
                self.assertEqual((replay.status_code, replay.json()), (201, first))
                self.assertEqual(replay.headers["Idempotent-Replayed"], "true")

    def test_every_balance_ends_at_zero_and_the_books_verify(self):
        balances = query(
            PRIMARY,
            "SELECT balance FROM sellers_seller WHERE id = ANY(%s)",
            [[seller["id"] for seller in self.sellers]],
        )
        self.assertEqual({balance for (balance,) in balances}, {0})
        result = manage("verify_ledger")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(": ok", result.stdout)

    def test_pgbouncer_never_opened_more_server_connections_than_its_pool(self):
        self.assertGreater(self.pool_peak, 0)
        self.assertLessEqual(self.pool_peak, POOL_SIZE)

    def test_the_killed_server_goes_away_and_the_other_keeps_answering(self):
        self.assertEqual(self.log["app servers killed"], 1)
        with self.assertRaises(requests.ConnectionError):
            requests.get(base(PORTS[0]) + "/healthz", timeout=5)
        self.assertEqual(requests.get(base(PORTS[1]) + "/healthz", timeout=5).status_code, 200)

    def test_the_replica_is_a_standby_that_caught_up_with_the_journal_exactly(self):
        self.assertEqual(query(REPLICA, "SELECT pg_is_in_recovery()"), [(True,)])
        journal = (
            "SELECT id, seller_id, kind, amount, balance_after"
            " FROM payments_transaction ORDER BY id"
        )
        expected = query(PRIMARY, journal)
        for _ in range(100):
            if query(REPLICA, journal) == expected:
                break
            time.sleep(0.1)
        self.assertEqual(query(REPLICA, journal), expected)

    def test_the_journal_page_is_read_from_the_replica_and_me_from_the_primary(self):
        seller = self.seller_make(SELLERS + 2, ports=(PORTS[1], PORTS[1]))
        client = Client(seller["token"])
        for _ in range(100):  # its credit has reached the replica
            credited = "SELECT count(*) FROM payments_transaction WHERE seller_id = %s"
            if query(REPLICA, credited, [seller["id"]]) == [(1,)]:
                break
            time.sleep(0.1)
        query(REPLICA, "SELECT pg_wal_replay_pause()")
        try:
            charged = client.post(
                PORTS[1], "/api/payments/phone-charge/", client.body, "proof-while-paused"
            ).json()
            newest = requests.get(
                base(PORTS[1]) + "/api/payments/transactions/?limit=1", headers=client.headers
            ).json()["results"][0]
            me = requests.get(base(PORTS[1]) + "/api/sellers/me/", headers=client.headers).json()
        finally:
            query(REPLICA, "SELECT pg_wal_replay_resume()")
        self.assertNotEqual(newest["id"], charged["transaction_id"])  # the replica's, behind
        self.assertEqual(me["balance"], charged["balance"])  # the primary's, current

    @skipUnless(MAY_RESTART_PRIMARY, "restarts the machine's PostgreSQL: .ci/run sets "
                "PAYLEDGER_CLUSTER_RESTART_PRIMARY=1")  # fmt: skip
    def test_a_primary_restart_under_load_answers_503_and_keyed_retries_land_once(self):
        seller = self.seller_make(SELLERS + 1, ports=(PORTS[1], PORTS[1]))
        client = Client(seller["token"])
        statuses = Counter()
        restarted = threading.Event()

        def restart_the_primary():
            # The seller's row is held, so the load's charges are inside the primary,
            # waiting for it (within the 5 s lock timeout), when the restart cuts them off.
            holder = psycopg2.connect(**PRIMARY)
            try:
                holder.cursor().execute(
                    "SELECT id FROM sellers_seller WHERE id = %s FOR UPDATE", [seller["id"]]
                )
                time.sleep(1.0)
                subprocess.run(
                    ["pg_ctlcluster", "--skip-systemctl-redirect", settings_version(), "main",
                     "restart"],
                    check=True,
                )  # fmt: skip
            finally:
                holder.close()
            time.sleep(1.0)  # and the load goes on against the restarted primary
            restarted.set()

        def charge_until_restarted(thread: int) -> list[int]:
            finals = []
            for number in itertools.count():
                if restarted.is_set():
                    return finals
                key = f"restart-{thread}-{number}"
                first = None
                try:
                    first = client.post(PORTS[1], "/api/payments/phone-charge/", client.body, key)
                    statuses[first.status_code] += 1
                except requests.ConnectionError:
                    statuses["no answer"] += 1
                if first is None or first.status_code == 503:
                    first = client.charge(PORTS[1], key, statuses)
                finals.append(first.status_code)

        restarter = threading.Thread(target=restart_the_primary)
        restarter.start()
        with ThreadPoolExecutor(8) as clients:
            finals = [status for statuses_of_one in clients.map(charge_until_restarted, range(8))
                      for status in statuses_of_one]  # fmt: skip
        restarter.join()
        connections.close_all()  # this test process's own connections died too
        print(f"\nprimary restart under load: first answers {dict(statuses)}")
        self.assertNotIn(500, statuses)
        self.assertGreater(statuses[503] + statuses["no answer"], 0, statuses)
        self.assertEqual(set(finals) - {201, 409}, set())
        charges = query(
            PRIMARY,
            "SELECT count(*) FROM payments_phonecharge WHERE seller_id = %s",
            [seller["id"]],
        )[0][0]
        self.assertEqual(charges, finals.count(201))
        self.assertEqual(manage("verify_ledger").returncode, 0)


def settings_version() -> str:
    return sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])[-1]


UP_DOWN = {
    **ENVIRONMENT,
    "CLUSTER_DB": "payledger_cluster_up_down",
    "APP_PORTS": "8113",
    "PGBOUNCER_PORT": "6443",
    "REPLICA_PORT": "5444",
    "REPLICA_CLUSTER": "payledger_up_down_replica",
    "CLUSTER_DIR": "/tmp/payledger-cluster-up-down",
}
APP_ROLE = f"{UP_DOWN['CLUSTER_DB']}_app"
REPLICATION_ROLE = f"{UP_DOWN['CLUSTER_DB']}_replication"
ON_THE_PRIMARY = {**PRIMARY, "dbname": "postgres"}
NO_PASSWORD = {"passfile": os.devnull}  # not even one from a ~/.pgpass


def machine_state() -> dict:
    """What `make cluster` may add to the machine, for `make cluster-down` to take away."""
    version, replica = settings_version(), UP_DOWN["REPLICA_CLUSTER"]
    replica_files = [
        f"/etc/postgresql/{version}/{replica}",
        f"/var/lib/postgresql/{version}/{replica}",
        f"/var/log/postgresql/postgresql-{version}-{replica}.log",
    ]
    ports = [int(UP_DOWN[name]) for name in ("APP_PORTS", "PGBOUNCER_PORT", "REPLICA_PORT")]
    return {
        "pg_hba.conf": Path(query(ON_THE_PRIMARY, "SHOW hba_file")[0][0]).read_text(),
        "roles": query(ON_THE_PRIMARY, "SELECT rolname FROM pg_roles ORDER BY 1"),
        "replication slots": query(ON_THE_PRIMARY, "SELECT slot_name FROM pg_replication_slots"),
        "its database": query(
            ON_THE_PRIMARY,
            "SELECT datname FROM pg_database WHERE datname = %s",
            [UP_DOWN["CLUSTER_DB"]],
        ),
        "clusters": sorted(line.split()[1] for line in clusters_listed().splitlines()),
        "files": [
            path for path in [*replica_files, UP_DOWN["CLUSTER_DIR"]] if os.path.exists(path)
        ],
        "ports answering": [port for port in ports if answers(port)],
    }


def clusters_listed() -> str:
    return subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout


def answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def connects(**parameters) -> bool | str:
    """True, or why the connection was refused."""
    try:
        psycopg2.connect(**parameters).close()
    except psycopg2.OperationalError as refusal:
        return str(refusal).strip()
    return True


@tag("cluster", "long")
@skipUnless(CAN_MAKE_CLUSTERS, "needs root and Debian's pg_createcluster")
class ClusterUpDownTests(SimpleTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cluster("cluster-down", UP_DOWN)
        cls.before = machine_state()
        try:
            cluster("cluster", UP_DOWN)
            cls.while_up = machine_state()
            cls.attempts = cls.connection_attempts()
            cls.app_ready = requests.get(base(int(UP_DOWN["APP_PORTS"])) + "/readyz", timeout=10)
        finally:
            cluster("cluster-down", UP_DOWN)
        cls.after = machine_state()

    @classmethod
    def connection_attempts(cls) -> dict[str, bool | str]:
        password = defaultdict(str, passwords(UP_DOWN["CLUSTER_DIR"]))
        pgbouncer = PRIMARY | {"port": UP_DOWN["PGBOUNCER_PORT"], "dbname": UP_DOWN["CLUSTER_DB"]}
        app = pgbouncer | {"user": APP_ROLE}
        replication = ON_THE_PRIMARY | {"connection_factory": PhysicalReplicationConnection}
        replicator = replication | {"user": REPLICATION_ROLE}
        return {
            "replication without the password": connects(**replicator, **NO_PASSWORD),
            "replication with it": connects(**replicator, password=password[REPLICATION_ROLE]),
            "replication as postgres": connects(**replication, **NO_PASSWORD),
            "pgbouncer without the password": connects(**app, **NO_PASSWORD),
            "pgbouncer with it": connects(**app, password=password[APP_ROLE]),
            "pgbouncer as postgres": connects(**pgbouncer, **NO_PASSWORD),
            "pgbouncer's console as postgres": connects(
                **pgbouncer | {"dbname": "pgbouncer"}, **NO_PASSWORD
            ),
        }

    def test_down_leaves_pg_hba_conf_as_up_found_it(self):
        self.assertNotEqual(self.while_up["pg_hba.conf"], self.before["pg_hba.conf"])
        self.assertEqual(self.after["pg_hba.conf"], self.before["pg_hba.conf"])

    def test_down_leaves_the_machine_as_up_found_it(self):
        self.assertEqual(self.after, self.before)

    def test_while_up_the_app_server_reaches_the_database_with_the_password(self):
        self.assertEqual(self.app_ready.status_code, 200, self.app_ready.text)

    def test_while_up_the_replication_line_needs_its_roles_password(self):
        self.assertIs(self.attempts["replication with it"], True)
        self.assertIn("password", self.attempts["replication without the password"])

    def test_while_up_no_other_role_may_replicate(self):
        self.assertIn("no pg_hba.conf entry", self.attempts["replication as postgres"])

    def test_while_up_pgbouncer_needs_the_app_roles_password(self):
        self.assertIs(self.attempts["pgbouncer with it"], True)
        self.assertIn("password", self.attempts["pgbouncer without the password"])

    def test_while_up_pgbouncer_lets_no_one_in_as_postgres(self):
        self.assertIsNot(self.attempts["pgbouncer as postgres"], True)
        self.assertIsNot(self.attempts["pgbouncer's console as postgres"], True)
