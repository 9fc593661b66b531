"""`make test` runs pytest over pytest.ini's testpaths: a test module outside
them would be skipped by the README's command without a word."""

import configparser
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase


class TestPathsTests(SimpleTestCase):
    def test_every_test_module_of_the_project_is_under_a_pytest_testpath(self):
        root = Path(settings.BASE_DIR)
        config = configparser.ConfigParser()
        config.read(root / "pytest.ini")
        testpaths = config["pytest"]["testpaths"].split()
        packages = [path for path in root.iterdir() if (path / "__init__.py").is_file()]
        modules = [module for package in packages for module in package.rglob("test_*.py")]
        self.assertGreater(len(modules), 40)
        left_out = [
            str(module.relative_to(root))
            for module in modules
            if module.relative_to(root).parts[0] not in testpaths
        ]
        self.assertEqual(left_out, [])
