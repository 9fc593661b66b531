"""The environment is read through one reader, and .env.example lists what it reads.

The code's variables are found by reading the source, not by running it: a
variable read only on some path (a replica, a pooler) counts as much as DEBUG.
"""

import ast
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase

from payledger_project.environment import Environment
from testing.servers import production_environment

ROOT = Path(settings.BASE_DIR)
# What runs in production or on a developer's machine; tests, the test harness,
# the benchmark and the scripts are tools around it.
TOOLS = ("testing/", "bench/", "scripts/", "conftest.py")
READER_METHODS = {"str", "bool", "int", "float", "list"}
# Set by another program for its own use, not by an operator: Django's
# autoreloader marks the child it restarts (the embedded PostgreSQL announces
# itself once, from the parent).
SET_BY_DJANGO = {"RUN_MAIN"}


def application_modules() -> dict[str, ast.Module]:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        name: ast.parse((ROOT / name).read_text(), name)
        for name in tracked
        if "/tests/" not in name and not name.startswith(TOOLS) and (ROOT / name).exists()
    }


def reader_calls(module: ast.Module) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(module)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "env"
        and node.func.attr in READER_METHODS
    ]


def variables_read_by_the_code() -> set[str]:
    names = set()
    for path, module in application_modules().items():
        for call in reader_calls(module):
            [first, *_] = call.args
            assert isinstance(first, ast.Constant), (
                f"{path}:{call.lineno}: name the variable as a literal, so it can be listed"
            )
            names.add(first.value)
    return names - SET_BY_DJANGO


def variables_in_env_example() -> list[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return [match[1] for line in lines if (match := re.match(r"#?([A-Z][A-Z0-9_]*)=", line))]


def environment_reads_outside_the_reader(module: ast.Module) -> list[int]:
    """Lines where ``module`` reads os.environ or os.getenv; setting a variable
    for a child process (``os.environ[name] = ...``, ``setdefault``) is no read."""
    parents = {child: node for node in ast.walk(module) for child in ast.iter_child_nodes(node)}
    lines = []
    for node in ast.walk(module):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        if node.value.id != "os" or node.attr not in {"environ", "getenv"}:
            continue
        parent = parents[node]
        written = (isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store)) or (
            isinstance(parent, ast.Attribute) and parent.attr == "setdefault"
        )
        if node.attr == "getenv" or not written:
            lines.append(node.lineno)
    return lines


class EnvironmentListTests(SimpleTestCase):
    def test_env_example_lists_exactly_the_variables_the_code_reads(self):
        listed = set(variables_in_env_example())

        self.assertEqual(
            sorted(variables_read_by_the_code() - listed), [], "read but not in .env.example"
        )
        self.assertEqual(
            sorted(listed - variables_read_by_the_code()), [], "in .env.example but never read"
        )

    def test_env_example_lists_each_variable_once(self):
        names = variables_in_env_example()

        self.assertEqual(sorted({name for name in names if names.count(name) > 1}), [])

    def test_no_application_module_reads_the_environment_but_through_the_reader(self):
        reads = {
            path: lines
            for path, module in application_modules().items()
            if (lines := environment_reads_outside_the_reader(module))
        }

        self.assertEqual(reads, {}, "read these through payledger_project.environment.env")


class ReaderTests(SimpleTestCase):
    def read(self, method: str, value: str, default):
        """``env.<method>("X", default)`` where the environment holds X=value."""
        reader = Environment()
        reader.ENVIRON = {"X": value}
        return getattr(reader, method)("X", default)

    def test_a_value_starting_with_a_dollar_sign_is_taken_as_written(self):
        self.assertEqual(self.read("str", "$ecret-key", ""), "$ecret-key")

    def test_only_1_true_yes_and_on_are_true(self):
        for value, expected in [
            ("1", True), (" TRUE ", True), ("yes", True), ("on", True),
            ("0", False), ("false", False), ("", False), ("2", False), ("y", False),
            ("ok", False),
        ]:  # fmt: skip
            with self.subTest(value=value):
                self.assertIs(self.read("bool", value, False), expected)

    def test_list_items_are_stripped_and_empty_ones_dropped(self):
        self.assertEqual(self.read("list", " a, b ,, ", []), ["a", "b"])

    def test_a_value_that_is_not_a_whole_number_names_the_variable(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "X must be a whole number."):
            self.read("int", "two", 0)


# Every setting production computes that JSON can carry, as JSON.
SETTINGS_DUMP = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps({name: getattr(settings, name) for name in dir(settings)"
    " if name.isupper()}, default=lambda value: type(value).__name__, sort_keys=True))"
)


class EnvExampleDefaultsTests(SimpleTestCase):
    def setUp(self):
        # The secrets and database of the tests, and nothing else set.
        self.environment = {
            name: value
            for name, value in production_environment().items()
            if name not in {"ALLOWED_HOSTS", "PORT"}
        }
        self.environment["DJANGO_SETTINGS_MODULE"] = "payledger_project.settings"

    def production_settings(self, *shell: str) -> dict:
        """Production's settings, started through ``sh -c`` after ``shell`` lines."""
        script = "; ".join([*shell, 'exec "$0" -c "$1"'])
        result = subprocess.run(
            ["sh", "-c", script, sys.executable, SETTINGS_DUMP],
            cwd=ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout)

    def test_loading_every_value_env_example_shows_changes_no_production_setting(self):
        # As the file says to: uncommented (those with a value), then `set -a; . ./.env`.
        uncommented = re.sub(
            r"^#([A-Z][A-Z0-9_]*=.)", r"\1", (ROOT / ".env.example").read_text(), flags=re.M
        )
        with tempfile.NamedTemporaryFile("w", suffix=".env") as dotenv:
            dotenv.write(uncommented)
            dotenv.flush()
            loaded = self.production_settings(f"set -a; . {dotenv.name}; set +a")

        unset = self.production_settings()
        self.assertEqual(
            {name: (loaded[name], unset[name]) for name in unset if loaded[name] != unset[name]},
            {},
        )
