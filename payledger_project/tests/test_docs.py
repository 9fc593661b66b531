"""The documentation's links resolve: every relative link and #anchor in the README,
the changelog, docs/ and bench/results/, as GitHub would follow them; external
links are at least well-formed (there is no network to follow them here)."""

import tempfile
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

from testing.markdown_links import anchors, broken_links, external_problem

ROOT = Path(settings.BASE_DIR)


def documentation() -> list[Path]:
    return [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        *sorted((ROOT / "docs").rglob("*.md")),
        *sorted((ROOT / "bench" / "results").rglob("*.md")),
    ]


class DocumentationLinksTests(SimpleTestCase):
    def test_the_readme_links_every_page_of_docs(self):
        readme = (ROOT / "README.md").read_text()
        pages = [path.name for path in (ROOT / "docs").glob("*.md")]
        self.assertEqual([page for page in pages if f"(docs/{page})" not in readme], [])

    def test_every_link_in_the_documentation_resolves(self):
        self.assertEqual(broken_links(documentation(), ROOT), [])


class LinkCheckerTests(SimpleTestCase):
    """The checker finds what GitHub would not follow (and only that)."""

    def setUp(self):
        scratch = tempfile.TemporaryDirectory()
        self.addCleanup(scratch.cleanup)
        self.root = Path(scratch.name)
        (self.root / "docs").mkdir()
        (self.root / "docs" / "api.md").write_text("# API\n\n## Retrying: `Idempotency-Key`\n")
        (self.root / "app.py").write_text("x = 1\n")

    def broken(self, markdown: str) -> list[str]:
        page = self.root / "README.md"
        page.write_text(markdown)
        return broken_links([page], self.root)

    def test_a_link_to_a_missing_file_is_reported_with_its_line(self):
        self.assertEqual(
            self.broken("# Title\n\nSee [API](docs/apy.md).\n"),
            ["README.md:3: docs/apy.md: no such file"],
        )

    def test_a_link_to_a_missing_heading_is_reported(self):
        self.assertEqual(
            self.broken("[retry](docs/api.md#retrying)\n"),
            ["README.md:1: docs/api.md#retrying: no heading #retrying in docs/api.md"],
        )

    def test_a_link_to_an_existing_file_folder_heading_or_line_passes(self):
        markdown = (
            "# Top\n\n[api](docs/api.md#retrying-idempotency-key) [docs](docs/) [top](#top)"
            " [line](app.py#L1) [site](https://example.com/a?b=c#d) [mail](mailto:a@example.com)\n"
        )
        self.assertEqual(self.broken(markdown), [])

    def test_a_link_in_a_table_cell_is_checked(self):
        self.assertEqual(
            self.broken("| a | b |\n| --- | --- |\n| x | [gone](gone.md) |\n"),
            ["README.md:3: gone.md: no such file"],
        )

    def test_links_inside_code_are_not_links(self):
        self.assertEqual(self.broken("`[a](gone.md)`\n\n```\n[b](gone.md)\n```\n"), [])

    def test_a_link_out_of_the_repository_is_reported(self):
        self.assertEqual(
            self.broken("[up](../outside.md)\n"),
            ["README.md:1: ../outside.md: leaves the repository"],
        )

    def test_an_anchor_on_a_file_that_is_not_markdown_must_be_a_line(self):
        self.assertEqual(
            self.broken("[x](app.py#setup)\n"),
            ["README.md:1: app.py#setup: #setup is not a line of app.py"],
        )


class GitHubAnchorTests(SimpleTestCase):
    def test_punctuation_is_dropped_and_spaces_become_hyphens(self):
        self.assertEqual(
            anchors("## Staff: approving credit in the admin\n## Where a charge's time goes\n"),
            {"staff-approving-credit-in-the-admin", "where-a-charges-time-goes"},
        )

    def test_code_and_link_texts_are_kept_without_their_markup(self):
        self.assertEqual(
            anchors("## Performance: `make bench`\n## See [the API](api.md)\n"),
            {"performance-make-bench", "see-the-api"},
        )

    def test_a_repeated_heading_is_numbered_from_its_second_occurrence(self):
        self.assertEqual(anchors("## Tests\n## Tests\n## Tests\n"), {"tests", "tests-1", "tests-2"})

    def test_an_explicit_html_anchor_counts(self):
        self.assertEqual(anchors('<a name="limits"></a>\n'), {"limits"})


class ExternalLinkTests(SimpleTestCase):
    def test_a_well_formed_https_url_passes(self):
        self.assertIsNone(external_problem("https://docs.djangoproject.com/en/5.2/"))

    def test_another_scheme_is_refused(self):
        self.assertEqual(
            external_problem("ftp://example.com/x"), "scheme 'ftp' is neither http nor https"
        )

    def test_a_url_without_a_host_is_refused(self):
        self.assertEqual(external_problem("https:///path"), "malformed URL")

    def test_a_host_without_a_domain_is_refused(self):
        self.assertEqual(
            external_problem("https://example/x"),
            "host 'example' is not a domain name or an address",
        )
