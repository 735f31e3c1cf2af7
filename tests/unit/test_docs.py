"""The README is the front door and docs/ the rooms behind it: the README stays short,
shows the two commands and links every page, and no relative link or anchor of the README
or docs/ leads nowhere (a section that moves takes its links with it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_LINES = 250

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
# [text](target) and ![alt](target), with an optional "title"; text may hold code spans.
LINK = re.compile(r"!?\[(?:[^\[\]]|`[^`]*`)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text without markup, lower-cased, with everything
    but letters, digits, `_`, `-` and spaces dropped, and spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of `page`, a repeated one suffixed -1, -2, ... as GitHub does."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(page.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        anchor = github_anchor(match[1])
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def relative_links(page: Path) -> Iterator[tuple[str, Path, str]]:
    """(link as written, the file it names, its anchor or "") for each relative link."""
    for line in prose_lines(page.read_text()):
        for match in LINK.finditer(line):
            target = match[1]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            yield target, (page.parent / path).resolve() if path else page, anchor


def broken_links(page: Path) -> list[str]:
    """The relative links of `page` whose file does not exist or has no such anchor."""
    broken = []
    for target, file, anchor in relative_links(page):
        if not file.exists():
            broken.append(f"{target} (no file {file})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {file.name})")
    return broken


def test_the_readme_is_a_front_door_under_250_lines_showing_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) < README_MAX_LINES
    assert "make demo" in text and "make test" in text


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {file for _, file, _ in relative_links(README)}
    docs = set((ROOT / "docs").glob("*.md"))
    assert docs, "docs/ holds no page"
    assert sorted(page.name for page in docs - linked) == []


def test_every_relative_link_and_anchor_of_the_readme_and_docs_resolves() -> None:
    broken = {page.name: broken_links(page) for page in pages()}
    assert {name: links for name, links in broken.items() if links} == {}


def test_a_missing_file_or_heading_is_caught(tmp_path: Path) -> None:
    # Given a page whose links name a file that is gone, a repeated heading (GitHub's -1), a
    # heading that is only a comment in a code block, and a link that sits in a code block
    (tmp_path / "other.md").write_text(
        "# Other\n\n## Coming from `upstream`\n\n## Coming from `upstream`\n\n"
        "```ini\n# not a heading\n```\n"
    )
    page = tmp_path / "page.md"
    page.write_text(
        "See [gone](gone.md), [here](other.md#coming-from-upstream-1), "
        "[nowhere](other.md#coming-from-the-upstream-module) and "
        "[a comment](other.md#not-a-heading).\n\n```\n[in a fence](fenced.md)\n```\n"
    )
    # When its links are checked
    broken = broken_links(page)
    # Then exactly the three broken ones are named
    assert broken == [
        f"gone.md (no file {tmp_path / 'gone.md'})",
        "other.md#coming-from-the-upstream-module (no heading #coming-from-the-upstream-module"
        " in other.md)",
        "other.md#not-a-heading (no heading #not-a-heading in other.md)",
    ]


def test_headings_get_githubs_anchors() -> None:
    assert github_anchor("Alerts (`deploy/prometheus/marketscan-rules.yml`)") == (
        "alerts-deployprometheusmarketscan-rulesyml"
    )
    assert github_anchor("The dev stack: `marketscan dev`") == "the-dev-stack-marketscan-dev"
    assert github_anchor("What `make demo` shows") == "what-make-demo-shows"
