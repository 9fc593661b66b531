"""The links of the project's Markdown, checked as GitHub would follow them.

A relative link must name a file or folder in the checkout; its ``#anchor`` must
name a heading of that file (GitHub's slugs) or, in any other file, a line
(``#L12``, ``#L12-L20``). An external link cannot be followed here (no
network), so it must at least be a well-formed http(s) URL, or a mailto.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

# CommonMark plus GitHub's tables, whose cells hold links too.
PARSER = MarkdownIt("commonmark").enable("table")
# GitHub keeps letters, digits, underscores, hyphens and spaces of a heading's text.
NOT_IN_SLUG = re.compile(r"[^\w\- ]")
LINE_ANCHOR = re.compile(r"L\d+(-L\d+)?")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*?\b(?:name|id)=["']([^"']+)["']""")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str


def heading_slug(text: str) -> str:
    """The anchor GitHub gives a heading of this text, before de-duplication."""
    return NOT_IN_SLUG.sub("", text.strip().lower()).replace(" ", "-")


def _inline_text(inline: Token) -> str:
    """A heading's text as rendered: code and link texts kept, markup dropped."""
    return "".join(
        child.content for child in inline.children or () if child.type in {"text", "code_inline"}
    )


def anchors(markdown: str) -> set[str]:
    """Every ``#anchor`` a Markdown text offers: its headings' slugs, numbered from
    the second of a name on (``-1``, ``-2``) as GitHub numbers them, and explicit
    ``<a name>`` / ``id`` anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    tokens = PARSER.parse(markdown)
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type != "heading_open":
            continue
        slug = heading_slug(_inline_text(inline))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    found.update(HTML_ANCHOR.findall(markdown))
    return found


def links(source: Path) -> Iterator[Link]:
    """The link and image targets of a Markdown file, with the line each is on;
    code blocks and code spans hold none."""
    for block in PARSER.parse(source.read_text()):
        for child in block.children or ():
            target = child.attrs.get("href") or child.attrs.get("src")
            if child.type in {"link_open", "image"} and target is not None:
                yield Link(source, block.map[0] + 1 if block.map else 0, str(target))


def external_problem(target: str) -> str | None:
    """Why ``target`` is not a well-formed external link, or None."""
    parts = urlsplit(target)
    if parts.scheme == "mailto":
        return None if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", parts.path) else "malformed mailto"
    if parts.scheme not in {"http", "https"}:
        return f"scheme {parts.scheme!r} is neither http nor https"
    host = parts.hostname or ""
    if re.search(r"\s", target) or not host:
        return "malformed URL"
    if "." not in host and host != "localhost" and ":" not in host:
        return f"host {host!r} is not a domain name or an address"
    return None


def problem(link: Link, root: Path) -> str | None:
    """Why ``link`` would not resolve on GitHub, or None when it does."""
    if urlsplit(link.target).scheme:
        return external_problem(link.target)
    path, _, anchor = link.target.partition("#")
    path = unquote(path)
    if path.startswith("/"):
        target = root / path.lstrip("/")
    elif path:
        target = link.source.parent / path
    else:
        target = link.source
    target = target.resolve()
    if not target.is_relative_to(root.resolve()):
        return "leaves the repository"
    if not target.exists():
        return "no such file"
    if not anchor:
        return None
    if target.suffix == ".md":
        if unquote(anchor) not in anchors(target.read_text()):
            return f"no heading #{anchor} in {target.relative_to(root.resolve())}"
        return None
    if target.is_file() and LINE_ANCHOR.fullmatch(anchor):
        return None
    return f"#{anchor} is not a line of {target.relative_to(root.resolve())}"


def broken_links(files: list[Path], root: Path) -> list[str]:
    """One line per link that would not resolve: ``file:line: target: why``."""
    return [
        f"{link.source.relative_to(root)}:{link.line}: {link.target}: {reason}"
        for source in files
        for link in links(source)
        if (reason := problem(link, root)) is not None
    ]
