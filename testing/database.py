"""The test database as another client sees it."""

from contextlib import closing

import psycopg2
from django.db import connection


def from_outside(sql: str, params: list | None = None) -> list[tuple]:
    """``sql`` on a connection of its own, as an operator, a migration or a restarting
    server acts; its rows, if it returns any."""
    with closing(psycopg2.connect(**connection.get_connection_params())) as other:
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
