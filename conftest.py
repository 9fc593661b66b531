import pytest

from payledger_project.test_runner import caches_clear


@pytest.fixture(autouse=True)
def empty_caches():
    """Every test starts with empty caches (see payledger_project/test_runner.py)."""
    caches_clear()
