"""The layers contract in pyproject.toml (`lint-imports`, run by `make test`) is
a rule that can fail: run on a copy of the packages, it passes as the code is and
fails once a lower app imports a higher one, even from inside a function."""

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

# The packages the contract names, as pyproject.toml lists them.
PACKAGES = tomllib.loads((Path(settings.BASE_DIR) / "pyproject.toml").read_text())["tool"][
    "importlinter"
]["root_packages"]
CONTRACT = "Apps depend one way"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120
    )


class LayersContractTests(SimpleTestCase):
    def setUp(self):
        self.root = Path(tempfile.mkdtemp(prefix="payledger-layers-"))
        self.addCleanup(shutil.rmtree, self.root)
        base = Path(settings.BASE_DIR)
        shutil.copy(base / "pyproject.toml", self.root)
        for package in PACKAGES:
            shutil.copytree(
                base / package, self.root / package, ignore=shutil.ignore_patterns("__pycache__")
            )

    def test_the_packages_as_they_are_keep_the_layers(self):
        result = lint_imports(self.root)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"{CONTRACT}", result.stdout)

    def test_sellers_importing_payments_inside_a_function_breaks_the_layers(self):
        with open(self.root / "sellers" / "services.py", "a") as services:
            services.write("\n\ndef planted():\n    import payments.services  # noqa\n")
        result = lint_imports(self.root)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"{CONTRACT}", result.stdout)
        self.assertIn("BROKEN", result.stdout)
        self.assertIn("sellers is not allowed to import payments", result.stdout)
        self.assertIn("sellers.services -> payments.services", result.stdout)
