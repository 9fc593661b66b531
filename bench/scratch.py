"""The benchmarks' scratch databases on this machine's PostgreSQL, and the rule that
keeps them from destroying anyone else's.

Every database the benchmarks create is named with a prefix (the
``PAYLEDGER_BENCH_DB_PREFIX`` environment variable or ``--db-prefix``, default
``payledger_bench_``) and carries a comment saying the benchmark created it. A
database of that name is dropped only when it carries the comment; one without it
belongs to someone else, and the benchmark stops before dropping anything.
"""

import os
import re
from collections.abc import Iterable
from contextlib import closing
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

SERVER = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PREFIX_VARIABLE = "PAYLEDGER_BENCH_DB_PREFIX"
DEFAULT_PREFIX = "payledger_bench_"
MARKER = "created by PayLedger bench/run.py"
# PostgreSQL cuts names at 63 bytes without a word, so a longer prefix could make two
# names one; this leaves room for the longest suffix the benchmarks add ("profile").
PREFIX_MAX_LENGTH = 50
PREFIX_PATTERN = re.compile(rf"[A-Za-z0-9_]{{1,{PREFIX_MAX_LENGTH}}}")


class ScratchDatabaseError(Exception):
    """A prefix that is not a safe name, or a database the benchmark did not create."""


def db_prefix(override: str | None = None) -> str:
    """The scratch databases' prefix: ``override`` (``--db-prefix``) if given, else
    ``PAYLEDGER_BENCH_DB_PREFIX``, else ``payledger_bench_``."""
    prefix = override if override is not None else os.environ.get(PREFIX_VARIABLE, DEFAULT_PREFIX)
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise ScratchDatabaseError(
            f"{PREFIX_VARIABLE} (or --db-prefix) must be 1 to {PREFIX_MAX_LENGTH} letters,"
            f" digits or underscores, not {prefix!r}"
        )
    return prefix


def server_url(name: str, server: dict = SERVER) -> str:
    # The host may be a socket directory (the embedded server's): quoted, no port.
    port = f":{server['port']}" if server.get("port") else ""
    return f"postgres://{server['user']}@{quote(str(server['host']), safe='')}{port}/{name}"


def _marker(cursor, name: str) -> tuple[bool, str | None]:
    """Whether the database ``name`` exists, and its comment."""
    cursor.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        [name],
    )
    row = cursor.fetchone()
    return row is not None, row[0] if row else None


def scratch_databases_recreate(names: Iterable[str], server: dict = SERVER) -> list[str]:
    """Empty databases ``names`` on ``server``, each marked as the benchmark's; returns
    their URLs. One that exists is dropped first only if it carries the mark; if any
    exists without it, raises ScratchDatabaseError before dropping or creating any."""
    names = list(names)
    with closing(psycopg2.connect(**server, dbname="postgres")) as connection:
        connection.autocommit = True  # DROP and CREATE DATABASE refuse a transaction
        with connection.cursor() as cursor:
            existing = []
            for name in names:
                exists, comment = _marker(cursor, name)
                if exists and comment != MARKER:
                    raise ScratchDatabaseError(
                        f"database {name} exists and was not created by the benchmark;"
                        f" nothing dropped: drop it yourself if it is yours, or choose another"
                        f" {PREFIX_VARIABLE} (or --db-prefix)"
                    )
                if exists:
                    existing.append(name)
            for name in names:
                database = sql.Identifier(name)
                if name in existing:
                    cursor.execute(sql.SQL("DROP DATABASE {}").format(database))
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(database))
                cursor.execute(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(database, sql.Literal(MARKER))
                )
    return [server_url(name, server) for name in names]
