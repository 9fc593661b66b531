"""Django's PostgreSQL backend with a health check that costs no round trip, and
the bookkeeping for statements prepared once per connection (prepared.py).

With CONN_HEALTH_CHECKS, Django checks a persistent connection before the first
query of each request, so that one the server dropped (a restart, a failover,
pg_terminate_backend, PgBouncer going away) is replaced instead of failing the
request. Django's check is a `SELECT 1`: one more round trip on every request
(about a tenth of a charge's CPU time in `make bench`). A server that drops a
connection writes its goodbye (or the end of the stream) to the socket, where an
idle healthy connection has nothing to read; so asking the kernel whether the
socket is readable tells the same, without a query. Over TLS the socket may
carry protocol records of its own, so those connections keep Django's check.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared_statements: set[str] = set()  # names prepared in this session

    @property
    def prepares_statements(self) -> bool:
        """Whether a PreparedStatement is prepared here (postgresql/prepared.py): on
        connections kept between requests, and not behind a transaction pooler,
        which DATABASE_POOLER=pgbouncer says by disabling server-side cursors
        (session state, like prepared statements)."""
        return (
            self.settings_dict["CONN_MAX_AGE"] != 0
            and not self.settings_dict["DISABLE_SERVER_SIDE_CURSORS"]
        )

    def get_new_connection(self, conn_params):
        self.prepared_statements = set()  # a new session has none
        return super().get_new_connection(conn_params)

    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        if self.connection.info.ssl_in_use:
            return super().is_usable()
        try:
            readable, _, _ = select.select([self.connection.fileno()], [], [], 0)
        except (OSError, ValueError):  # the socket is gone
            return False
        return not readable
