"""Many threads at once against a real database, and a storm run once per class.

TransactionTestCase, because a TestCase transaction would hide each thread's rows
from the others. Every thread closes its own connection in ``finally`` (the recipe
of Django's own select_for_update tests).
"""

import threading
from collections.abc import Callable

from django.core.management import call_command
from django.db import close_old_connections, connection
from django.test import TransactionTestCase

from payledger_project.exceptions import DomainError


def run_at_once(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released together; return each outcome
    (a domain error's code, or the unexpected exception, for a thread that raised)."""
    outcomes: list[object] = [None] * count
    start = threading.Barrier(count)

    def worker(index: int) -> None:
        try:
            start.wait()
            outcomes[index] = work(index)
        except DomainError as error:
            outcomes[index] = error.code
        except Exception as error:  # noqa: BLE001 - reported by the test, not swallowed
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_old_connections()
    return outcomes


class StormTestCase(TransactionTestCase):
    """Runs the class's ``storm()`` once, before its tests, and each test asserts one
    property of what the storm left.

    ``storm()`` keeps what it saw as plain data on the class (outcomes, balances,
    journal rows read right after the storm); the database is then emptied once, for
    the class rather than after each test, so the tests read only that data and
    write nothing (docs/decisions/0013-storms-once-per-class.md).
    """

    @classmethod
    def storm(cls) -> None:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.storm()
        finally:
            # What TransactionTestCase does after each test, once for the class.
            for database in cls._databases_names(include_mirrors=False):
                call_command("flush", verbosity=0, interactive=False, database=database)

    def _fixture_teardown(self):
        """Nothing to empty: the storm's rows went in setUpClass and the tests write none."""
