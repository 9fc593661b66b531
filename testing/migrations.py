"""Data migrations under test: migrate back to ``before``, write rows with that
schema, run forward to ``after``; the latest schema is restored after each test."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase


class MigrationTestCase(TransactionTestCase):
    """Migrate back to ``before``, write rows with that schema (``self.old``, its
    models), then run forward with ``migrate_forward()``."""

    before: list[tuple[str, str]]
    after: list[tuple[str, str]]

    def setUp(self):
        self.executor = MigrationExecutor(connection)
        self.addCleanup(self.migrate_to_latest)
        self.executor.migrate(self.before)
        self.old = self.executor.loader.project_state(self.before).apps

    def migrate_to_latest(self):
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    def migrate_forward(self):
        """Runs the migrations up to ``after``; returns that schema's models."""
        executor = MigrationExecutor(connection)
        executor.migrate(self.after)
        return executor.loader.project_state(self.after).apps

    def seller(self, name: str):
        """A user named ``name`` and its seller, in the schema of ``before``."""
        user = self.old.get_model("auth", "User").objects.create(username=name)
        return self.old.get_model("sellers", "Seller").objects.create(user=user, name=name)
