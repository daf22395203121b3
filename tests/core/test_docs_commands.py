"""The commands in the guides run: the docs cannot drift from the code.

The convention (docs/development.md, "This site"): a ```bash or ```python block right after the line
``<!-- runs in tests -->`` is run, every marked block of a page in order, in a new empty folder per page, with this
environment's ``parsner`` first on ``PATH`` and the Hub off. Each must exit 0 and print no traceback. Only what runs
offline on the embedded sample in seconds to a minute is marked: no corpora, no Hub, no server left running.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from parsner.paths import REPO_ROOT

MARKER = "<!-- runs in tests -->"
LANGUAGES = ("bash", "python")

#: The README and the pages of the documentation site.
DOCUMENTS = ("README.md", *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").glob("*.md")))

#: What a marked block must not need: the Hub, the research corpora, a server or a cluster.
NEEDS_MORE = re.compile(r"HooshvareLab/|--data-dir|--corpus (?:peyma|arman|parstwiner)|--from-hub|\bparsner serve\b"
                        r"|--engine ray|^\s*(?:curl|pip install|make)\b", re.MULTILINE)


#: What a marked block may need beyond the core install: (text in the block, the module, the extra that brings it).
EXTRAS = (("--onnx", "onnxruntime", "onnx"), ("training/peyma-cpu.yaml", "pycrfsuite", "crf"))


class Block(NamedTuple):
    doc: str
    line: int  # of the opening fence, 1-based
    language: str
    code: str


def marked_blocks(doc: str, text: str) -> list[Block]:
    """The blocks of ``text`` marked to run, in order. A marker not followed by a bash or python block is an error."""
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        fence = lines[i + 1].strip() if i + 1 < len(lines) else ""
        language = fence[3:].strip()
        if not fence.startswith("```") or language not in LANGUAGES:
            raise ValueError(f"{doc}:{i + 1}: {MARKER} must be followed at once by a ```bash or ```python block, "
                             f"not {fence!r}")
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{doc}:{i + 2}: the marked block is never closed")
        blocks.append(Block(doc, i + 2, language, "\n".join(lines[i + 2:end]) + "\n"))
    return blocks


def document_blocks() -> dict[str, list[Block]]:
    found = {}
    for doc in DOCUMENTS:
        blocks = marked_blocks(doc, (REPO_ROOT / doc).read_text(encoding="utf-8"))
        if blocks:
            found[doc] = blocks
    return found


def test_marked_blocks_are_found_in_order_and_a_stray_marker_is_an_error() -> None:
    text = f"x\n{MARKER}\n```bash\nparsner env\n```\n\n```bash\nnot marked\n```\n{MARKER}\n```python\nprint(1)\n```\n"
    assert marked_blocks("d.md", text) == [Block("d.md", 3, "bash", "parsner env\n"),
                                           Block("d.md", 11, "python", "print(1)\n")]
    with pytest.raises(ValueError, match=r"d\.md:1: .* not '```text'"):
        marked_blocks("d.md", f"{MARKER}\n```text\nx\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        marked_blocks("d.md", f"{MARKER}\n```bash\nparsner env\n")


def test_the_guides_mark_commands_that_need_neither_the_hub_nor_corpora() -> None:
    found = document_blocks()
    for doc in ("README.md", "docs/install.md", "docs/training.md", "docs/tagging.md", "docs/api.md"):
        assert doc in found, f"{doc} marks no block to run ({MARKER})"
    for blocks in found.values():
        for block in blocks:
            bad = NEEDS_MORE.search(block.code)
            assert not bad, f"{block.doc}:{block.line}: a marked block needs more than the sample: {bad.group(0)!r}"


def _environment(folder: Path) -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PARSNER_SHARED": str(folder / "no-shared-corpora"), "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
@pytest.mark.parametrize("doc", sorted(document_blocks()))
def test_the_marked_commands_of_a_document_run(doc: str, tmp_path: Path) -> None:
    if not (Path(sys.executable).parent / "parsner").exists():
        pytest.skip(f"no parsner command beside {sys.executable} (pip install -e . installs it)")
    blocks = document_blocks()[doc]
    for text, module, extra in EXTRAS:
        if any(text in block.code for block in blocks) and importlib.util.find_spec(module) is None:
            pytest.skip(f"{doc} runs commands of the {extra} extra ({module} is not installed)")
    env = _environment(tmp_path)
    for block in blocks:
        argv = (["bash", "-euo", "pipefail", "-c", block.code] if block.language == "bash"
                else [sys.executable, "-c", block.code])
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
                              stdin=subprocess.DEVNULL)
        said = proc.stdout + proc.stderr
        where = f"{block.doc}:{block.line} ({block.language} block)\n{block.code}\n--- output ---\n{said[-4000:]}"
        assert proc.returncode == 0, f"exit code {proc.returncode}: {where}"
        assert "Traceback (most recent call last)" not in said, f"a traceback: {where}"
