"""The planted bugs of `make verify-checks` still fit the code (testing/mutants.py).

`make verify-checks` runs each mutant's checks (minutes); this only applies each
mutant's edits to a scratch copy of the files it edits, so a change that moves
the code a mutant quotes fails here, in the everyday suite, naming the mutant.
"""

import shutil
import tempfile
from pathlib import Path

from django.test import SimpleTestCase

from testing.mutants import MUTANTS, ROOT, Edit, Mutant, Stale, edits_apply


def applies(mutant: Mutant) -> str | None:
    """None if every edit of ``mutant`` applies; else why not."""
    with tempfile.TemporaryDirectory() as scratch:
        for path in {edit.path for edit in mutant.edits}:
            target = Path(scratch, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / path, target)
        try:
            edits_apply(Path(scratch), mutant.edits)
        except Stale as stale:
            return str(stale)
    return None


class PlantedBugTests(SimpleTestCase):
    def test_every_mutant_applies_to_the_code_as_it_is(self):
        for mutant in MUTANTS:
            with self.subTest(mutant.name):
                self.assertIsNone(applies(mutant), f"{mutant.name} is stale")

    def test_a_search_text_found_twice_is_stale(self):
        with tempfile.TemporaryDirectory() as scratch:
            Path(scratch, "twice.py").write_text("x = 1\nx = 1\n")
            with self.assertRaisesMessage(Stale, "found 2 times"):
                edits_apply(Path(scratch), (Edit("twice.py", "x = 1", "x = 2"),))
