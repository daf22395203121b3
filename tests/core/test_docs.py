"""The documents say what the code does, and cite nothing a reader of the repository cannot see.

Issue and pull-request numbers belong to a tracker that the repository does not carry: a heading such as
"Dataset build (issue 2)" tells a reader nothing. Each document is checked line by line.
"""

from __future__ import annotations

import re

import pytest

from parsner.paths import REPO_ROOT

#: Documents a reader of the repository reads (the tracker is not part of it).
DOCS = ("README.md", "eval/RESULTS.md", "docs/ARCHITECTURE.md", "eval/README.md", "data/README.md",
        "models/README.md")

#: "issue 12", "issues 3, 4", "Issue #7", "PR 5", "pull request 9", and a bare "#12" used as a reference (after a
#: space or bracket; not a heading's "## 1.", a CSS colour "#000000", an anchor "#L12" or "doc#3").
ISSUE_REF = re.compile(
    r"\b(?:issues?|pull[ -]requests?|PRs?|tickets?)\s*#?\s*\d+(?:\s*(?:,|and|&)\s*#?\d+)*"
    r"|(?:^|(?<=[\s(\[]))#\d{1,5}\b",
    re.IGNORECASE,
)


def issue_refs(text: str) -> list[str]:
    """``line N: <the reference>`` for every issue or pull-request number cited in ``text``."""
    return [f"line {n}: {m.group(0)!r}" for n, line in enumerate(text.splitlines(), 1)
            for m in ISSUE_REF.finditer(line)]


@pytest.mark.parametrize(
    "line",
    ["## 1. Dataset build (issue 2)", "see issues 3, 4", "(issues 3 and 4)", "Issue #12 says", "fixed in #12",
     "as in PR 7", "pull request 9 changed it", "(#3)", "taken from ParsNER issue 4 and not"],
)
def test_the_pattern_finds_issue_references(line: str) -> None:
    assert issue_refs(line), line


@pytest.mark.parametrize(
    "line",
    ["## 8. ONNX Runtime backend", "# 1. pre-annotate", "train#block0 and doc#3", "color #000000",
     "see RESULTS §8", "the issue is the load", "[link](#section-2)", "`parsner predict` exits 2",
     "issues with 5 texts? no: 'issues with'", "x86-64"],
)
def test_the_pattern_leaves_other_text_alone(line: str) -> None:
    assert not issue_refs(line), line


@pytest.mark.parametrize("doc", DOCS)
def test_documents_cite_no_issue_numbers(doc: str) -> None:
    path = REPO_ROOT / doc
    if not path.is_file():
        pytest.skip(f"{doc} is not in this checkout")
    found = issue_refs(path.read_text(encoding="utf-8"))
    assert not found, f"{doc} cites issue numbers a reader cannot see: " + "; ".join(found)


def test_the_readme_says_how_weights_are_loaded() -> None:
    """hub.py reads pytorch_model.bin through torch's restricted unpickler; the README must say so."""
    code = (REPO_ROOT / "src" / "parsner" / "inference" / "hub.py").read_text(encoding="utf-8")
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())  # lines are wrapped
    assert "weights_only=True" in code
    assert "no pickle loading" not in readme and "safetensors only" not in readme
    assert "weights_only=True" in readme and "restricted unpickler" in readme
