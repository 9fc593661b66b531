"""Statements PostgreSQL parses and plans once per connection, not per request.

A charge's WITH statement (five tables, a JSON payload) and the token look-up
are the same text on every request; parsing and planning them cost PostgreSQL
more than running them (about 0.75 of the 1.3 ms of backend CPU the two took per
charge as text). On a backend that prepares statements, the first use on a
connection outside a transaction sends ``PREPARE`` (on the raw connection, like
the connection's other set-up, so outside the query log) and every use after
that sends ``EXECUTE`` with the parameters. Elsewhere the statement is sent as
written: behind a transaction pooler, where each transaction may run
in another session; when connections close after each request
(``CONN_MAX_AGE=0``), where preparing would cost a round trip and save nothing.

A statement's name carries a hash of its text, so a session that already has the
name (a session-pooling PgBouncer hands sessions on) has this very statement.

A prepared statement can stop holding in its session: the session lost it
(``DISCARD ALL``, a pooler we were not told of), or a schema change altered
the columns it returns (a migration changing a ``max_length``), which PostgreSQL
refuses with "cached plan must not change result type" on every ``EXECUTE``
until the statement is deallocated. Outside a transaction, the statement is
deallocated, sent as written and prepared afresh next time, so the request
answers. Inside one, the failed ``EXECUTE`` has already aborted the caller's
transaction: ``StatementInvalidated`` says so, and the API answers 503
``try_again``; the retry sends the statement as written.
"""

import hashlib
import re

from django.db import DatabaseError, OperationalError
from psycopg2.errorcodes import (
    DUPLICATE_PREPARED_STATEMENT,
    FEATURE_NOT_SUPPORTED,
    INVALID_SQL_STATEMENT_NAME,
)

PARAMETER = re.compile(r"%\((\w+)\)s")
# An EXECUTE failing with these means the session's statement, not the query,
# is at fault: it is gone (26000), or its result changed under it (0A000,
# "cached plan must not change result type"). A query that fails for itself
# fails again as written and raises then.
STATEMENT_INVALID = {INVALID_SQL_STATEMENT_NAME, FEATURE_NOT_SUPPORTED}


def _pgcode(error: DatabaseError) -> str | None:
    return getattr(error.__cause__, "pgcode", None)


class StatementInvalidated(OperationalError):
    """A statement prepared in this session no longer held, and its failure aborted
    the transaction it ran in. Nothing in that transaction happened; run it again:
    the statement is sent as written there and prepared afresh outside one."""


class PreparedStatement:
    """``sql`` with ``%(name)s`` parameters, as ``cursor.execute`` takes it."""

    def __init__(self, name: str, sql: str):
        self.sql = sql
        self.name = f"{name}_{hashlib.sha256(sql.encode()).hexdigest()[:12]}"
        parameters = list(dict.fromkeys(PARAMETER.findall(sql)))
        numbered = PARAMETER.sub(lambda match: f"${parameters.index(match[1]) + 1}", sql)
        self.prepare_sql = f"PREPARE {self.name} AS {numbered.replace('%%', '%')}"
        self.execute_sql = f"EXECUTE {self.name} ({', '.join(f'%({p})s' for p in parameters)})"

    def execute(self, cursor, params: dict) -> None:
        """Run it on ``cursor`` (Django's), preparing it first where that pays."""
        db = cursor.db
        if not db.prepares_statements:
            cursor.execute(self.sql, params)
            return
        if self.name not in db.prepared_statements:
            if db.in_atomic_block:
                # A failed PREPARE would abort the transaction: prepare outside one.
                cursor.execute(self.sql, params)
                return
            self._prepare(db)
        try:
            cursor.execute(self.execute_sql, params)
        except DatabaseError as error:
            pgcode = _pgcode(error)
            if pgcode not in STATEMENT_INVALID:
                raise
            db.prepared_statements.discard(self.name)
            if db.in_atomic_block:
                # A stale statement stays in the session until a use outside a
                # transaction meets it again and deallocates it.
                raise StatementInvalidated(str(error)) from error
            if pgcode == FEATURE_NOT_SUPPORTED:
                self._deallocate(db)
            cursor.execute(self.sql, params)

    def _prepare(self, db) -> None:
        try:
            # Django's exceptions, as for any query: a lost connection is an OperationalError.
            with db.wrap_database_errors, db.connection.cursor() as setup:
                setup.execute(self.prepare_sql)
        except DatabaseError as error:
            if _pgcode(error) != DUPLICATE_PREPARED_STATEMENT:
                raise
        db.prepared_statements.add(self.name)

    def _deallocate(self, db) -> None:
        try:
            with db.wrap_database_errors, db.connection.cursor() as setup:
                setup.execute(f"DEALLOCATE {self.name}")
        except DatabaseError as error:
            if _pgcode(error) != INVALID_SQL_STATEMENT_NAME:  # gone already: as good
                raise
