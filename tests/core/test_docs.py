"""The documents say what the code does, and cite nothing a reader of the repository cannot see.

Issue and pull-request numbers belong to a tracker that the repository does not carry: a heading such as
"Dataset build (issue 2)" tells a reader nothing. Each document is checked line by line. The README stays short
(the guides are the pages of docs/), every relative link of the README and the pages leads to a file of the
repository, and the documentation site builds with warnings as errors (`make docs`). The commands the pages mark
are run by test_docs_commands.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parsner.paths import REPO_ROOT

#: The pages of the documentation site (docs/*.md), as paths from the repository root.
PAGES = tuple(sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").glob("*.md")))

#: Documents a reader of the repository reads (the tracker is not part of it).
DOCS = ("README.md", "eval/RESULTS.md", "eval/README.md", "data/README.md", "models/README.md",
        *(page for page in PAGES if page != "docs/ARCHITECTURE.md"), "docs/ARCHITECTURE.md")

#: The README is the front page: what ParsNER does, install, tag, train, the two commands, links to the guides.
README_MAX_LINES = 250

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


@pytest.mark.parametrize("doc", ["README.md", "docs/troubleshooting.md"])
def test_the_docs_say_how_weights_are_loaded(doc: str) -> None:
    """hub.py reads pytorch_model.bin through torch's restricted unpickler; the README's safety note and the
    troubleshooting page's Safety section must say so."""
    code = (REPO_ROOT / "src" / "parsner" / "inference" / "hub.py").read_text(encoding="utf-8")
    text = " ".join((REPO_ROOT / doc).read_text(encoding="utf-8").split())  # lines are wrapped
    assert "weights_only=True" in code
    assert "no pickle loading" not in text and "safetensors only" not in text
    assert "weights_only=True" in text and "restricted unpickler" in text


def test_the_readme_is_short_and_points_at_the_docs() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.count("\n")
    assert lines <= README_MAX_LINES, (f"README.md has {lines} lines (at most {README_MAX_LINES}): move the detail "
                                       "into a page of docs/ and link it")
    for page in ("docs/install.md", "docs/tagging.md", "docs/training.md", "docs/api.md"):
        assert f"]({page})" in readme, f"the README does not link {page}"
    assert "make demo" in readme and "make test" in readme and "make test-all" in readme
    assert "not affiliated" in readme.lower() and "github.com/hooshvare/parsner" in readme


#: A Markdown link or image target: ``[text](target)``, ``![alt](target "title")``.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(text: str) -> list[str]:
    """The relative link targets of a Markdown text, outside code (fenced blocks and `spans`)."""
    text = re.sub(r"(?ms)^```.*?^```", "", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


def test_relative_links_finds_links_and_images_outside_code() -> None:
    text = ("See [a](docs/a.md#x) and ![b](eval/b.png \"t\"), [web](https://x.org), [here](#top), `[c](c.md)`.\n"
            "```\n[d](d.md)\n```\n")
    assert relative_links(text) == ["docs/a.md#x", "eval/b.png"]


@pytest.mark.parametrize("doc", ["README.md", *PAGES])
def test_relative_links_lead_to_files_of_the_repository(doc: str) -> None:
    """As GitHub resolves them, from the document's folder (the site build checks the anchors too)."""
    path = REPO_ROOT / doc
    broken = [target for target in relative_links(path.read_text(encoding="utf-8"))
              if not (path.parent / target.partition("#")[0]).exists()]
    assert not broken, f"{doc} links to files that do not exist: {broken}"


def test_the_docs_site_builds_offline_with_warnings_as_errors(tmp_path: Path) -> None:
    """`make docs`: mkdocs build --strict fails on any warning, a broken link or anchor and a docstring that the
    API reference cannot parse among them. The config reference and the API reference must be in the result."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (the docs extra: pip install -e '.[docs]')")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-5000:]
    config = (site / "config" / "index.html").read_text(encoding="utf-8")
    assert "config-reference:" not in config and "<code>learning_rate</code>" in config
    assert "<code>temperature</code>" in config and "<code>mlm_probability</code>" in config
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("data.api.build_dataset", "training.api.train", "evaluation.api.evaluate", "inference.tagger.Tagger",
                 "inference.tagger.Entity", "serving.ray_dataset.tag_dataset", "errors.ParsnerError",
                 "errors.InputError", "errors.ConfigError", "errors.ModelLoadError"):
        assert f'id="parsner.{name}"' in api, f"the API reference lacks parsner.{name}"
    assert ":class:" not in api, "a Sphinx role was left in the API reference"
    for rel in ("eval/RESULTS/index.html", "data/index.html", "eval/serve-page.png"):
        assert (site / rel).is_file(), rel
    print(f"mkdocs build --strict: {took:.1f} s")


def _hooks():
    """docs/hooks.py, the site's MkDocs hooks (outside the package), or skip where MkDocs is not installed."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pytest.importorskip("griffe", reason="the docs extra is not installed")
    spec = importlib.util.spec_from_file_location("parsner_docs_hooks", REPO_ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_points_links_to_repository_documents_at_its_own_copies() -> None:
    hooks = _hooks()
    page = "See [R](../eval/RESULTS.md#8-onnx), ![p](../eval/serve-page.png), [T](../training/peyma.yaml), [c](crf.md)."
    assert hooks.repo_links(page, "serving.md") == (
        "See [R](eval/RESULTS.md#8-onnx), ![p](eval/serve-page.png), [T](../training/peyma.yaml), [c](crf.md).")
    assert hooks.repo_links("[b](baselines.yaml)", "eval/README.md") == "[b](baselines.yaml)"


def test_the_site_shows_sphinx_roles_as_code() -> None:
    hooks = _hooks()
    text = "The :class:`~parsner.data.dataset.BuildReport`: see :func:`parsner.evaluate` and :mod:`parsner.surrogates`."
    assert hooks.plain_roles(text) == "The `BuildReport`: see `parsner.evaluate` and `parsner.surrogates`."


def test_the_config_reference_marker_names_real_config_classes() -> None:
    hooks = _hooks()
    page = (REPO_ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    markers = hooks.CONFIG_MARKER.findall(page)
    assert markers == ["parsner.training.config.RunConfig", "parsner.training.pretrain.PretrainConfig",
                       "parsner.training.distill.DistillConfig"]
    for dotted in markers:
        assert hooks.config_table(dotted).startswith("| key | type | default | range | help |")
