"""The primary and, when ``DATABASE_REPLICA_URL`` is set, a streaming read replica.

Everything goes to the primary ("default") unless a view asks for
``replica_or_primary()`` for a read that may lag: the journal list, its CSV
export and the credit-request list. Money, decisions, ``/api/sellers/me/`` and
``verify_ledger`` never do.
"""

from django.db import DEFAULT_DB_ALIAS, connection, connections

REPLICA = "replica"


def replica_or_primary() -> str:
    """The database alias for a read that may lag behind the primary: the replica,
    if there is one and the request is not inside a transaction on the primary
    (whose own writes the replica cannot have seen yet)."""
    if REPLICA in connections.settings and not connection.in_atomic_block:
        return REPLICA
    return DEFAULT_DB_ALIAS


class PrimaryReplicaRouter:
    """Writes and reads go to the primary unless a queryset names the replica; only
    the primary is migrated (the replica copies it, WAL record by WAL record)."""

    def db_for_read(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
