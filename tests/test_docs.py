"""docs/upstream.md and the code that cites it stay one catalogue: every entry is cited by an
adjustment in ``servers/``, every citation names an entry, and every test an entry names
exists."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
CATALOGUE = PROJECT_DIR / "docs" / "upstream.md"

ENTRY = re.compile(r"^### ([a-z0-9-]+)$", re.MULTILINE)
# A citation from code (docs/upstream.md#id) or from a page beside it in docs/ (upstream.md#id).
CITATION = re.compile(r"(?:docs/)?upstream\.md#([a-z0-9-]+)")
TEST_NAME = re.compile(r"`(test_[a-z0-9_]+)`")


def entries() -> list[str]:
    return ENTRY.findall(CATALOGUE.read_text())


def citations(paths: list[Path]) -> dict[str, list[str]]:
    """Each entry id cited in ``paths``, with the files that cite it."""
    cited: dict[str, list[str]] = {}
    for path in paths:
        for entry in CITATION.findall(path.read_text()):
            cited.setdefault(entry, []).append(str(path.relative_to(PROJECT_DIR)))
    return cited


def server_code() -> list[Path]:
    return sorted((PROJECT_DIR / "servers").rglob("*.py"))


def citing_files() -> list[Path]:
    roots = ["servers", "project", "echo", "tests", "tools", "bench", "docs"]
    paths = [path for root in roots for path in (PROJECT_DIR / root).rglob("*.py")]
    paths += sorted((PROJECT_DIR / "docs").glob("*.md"))
    paths = [path for path in paths if path != Path(__file__).resolve()]
    return [*paths, PROJECT_DIR / "README.md", PROJECT_DIR / "pyproject.toml"]


def test_catalogue_entries_are_unique() -> None:
    """No two entries of docs/upstream.md share an id."""
    ids = entries()
    assert ids
    assert sorted(ids) == sorted(set(ids))


def test_every_citation_names_an_entry() -> None:
    """Every docs/upstream.md#id in the code and the docs names an entry of docs/upstream.md."""
    known = set(entries())
    unknown = {
        entry: files for entry, files in citations(citing_files()).items() if entry not in known
    }
    assert unknown == {}


def test_every_entry_is_cited_by_an_adjustment() -> None:
    """Every entry of docs/upstream.md is cited by the code in servers/ that makes its
    adjustment, so an entry whose adjustment was deleted cannot stay behind."""
    cited = citations(server_code())
    uncited = [entry for entry in entries() if entry not in cited]
    assert uncited == []


def test_every_test_an_entry_names_exists() -> None:
    """Every test docs/upstream.md names as showing a defect is defined in tests/."""
    defined = set()
    for path in (PROJECT_DIR / "tests").glob("test_*.py"):
        defined.update(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.MULTILINE))
    missing = sorted(set(TEST_NAME.findall(CATALOGUE.read_text())) - defined)
    assert missing == []
