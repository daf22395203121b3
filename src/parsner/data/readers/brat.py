"""brat standoff: ``NAME.txt`` (the text) beside ``NAME.ann`` (the annotations).

The input is a ``.ann`` file, its ``.txt``, or a directory (searched recursively; each ``.ann`` with its
``.txt`` is one document, id = the path of the pair relative to the directory, without suffix). A ``.txt``
without an ``.ann`` is an unannotated document: skipped and counted. An ``.ann`` without its ``.txt`` is an
error.

``.ann`` lines: ``T1<TAB>PER 0 4<TAB>علی`` (a text-bound annotation) becomes an entity; relations (``R``),
events (``E``), attributes (``A``/``M``), normalisations and notes (``N``, ``#``) and equivalences (``*``) are
ignored and counted. The stored mention is checked against the text (UTF-16 offsets are converted, see
:mod:`parsner.data.readers.docs`).

Discontinuous spans (``T1<TAB>PER 0 4;10 15<TAB>...``) become their covering span ``[first start, last end)``,
reported per file; ``strict=True`` refuses them. Two entities that overlap (nested annotation) are an error:
one word carries one IOB2 tag.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parsner.data.readers.conll import read_text
from parsner.data.readers.docs import DocBuilder
from parsner.data.records import ReadResult
from parsner.errors import InputError

_T_LINE = re.compile(r"T[^\t]*\t(?P<type>[^\t ]+) (?P<frags>\d+ \d+(?:;\d+ \d+)*)\t(?P<mention>.*)")

_IGNORED = {
    "R": "relation(s)",
    "E": "event(s)",
    "A": "attribute(s)",
    "M": "attribute(s)",
    "N": "normalisation(s)",
    "#": "note(s)",
    "*": "equivalence(s)",
}


def brat_pairs(path: str | Path) -> list[tuple[Path, Path]]:
    """``(ann, txt)`` pairs of ``path`` (a directory, an ``.ann`` or a ``.txt``), sorted."""
    p = Path(path)
    if p.is_dir():
        anns = sorted(p.rglob("*.ann"))
        if not anns:
            raise InputError(p, None, "directory has no brat .ann files")
        return [(a, a.with_suffix(".txt")) for a in anns]
    if p.suffix == ".txt":
        return [(p.with_suffix(".ann"), p)]
    return [(p, p.with_suffix(".txt"))]


def read_brat(path: str | Path, *, strict: bool = False, label_map: Mapping[str, str] | None = None) -> ReadResult:
    """Read a brat ``.ann``/``.txt`` pair or a directory of them (see the module docstring)."""
    root = Path(path)
    pairs = brat_pairs(root)
    builder = DocBuilder(path, "brat", strict=strict, label_map=label_map)
    if root.is_dir():
        annotated = {txt for _, txt in pairs}
        bare = [t for t in root.rglob("*.txt") if t not in annotated]
        if bare:
            builder.skipped[f".txt file(s) without an .ann skipped (e.g. {bare[0].name})"] += len(bare)
    ignored: Counter[str] = Counter()
    discontinuous: list[str] = []
    for ann, txt in pairs:
        if not ann.is_file():
            raise InputError(ann, None, f"no such file: brat needs the .ann beside {txt.name}")
        if not txt.is_file():
            raise InputError(ann, None, f"no text file {txt.name} beside it (brat pairs NAME.ann with NAME.txt)")
        text = read_text(txt) if txt.stat().st_size else ""
        spans, line_of = _parse_ann(ann, ignored, discontinuous, strict)
        rel = ann.relative_to(root) if root.is_dir() else Path(ann.name)
        doc_id = str(rel.with_suffix(""))
        line = line_of[0] if len(line_of) == 1 else None
        builder.add(doc_id, text, spans, line=line, where=f"{ann.name}", source=ann)
    for kind, n in sorted(ignored.items()):
        builder.skipped[f"{kind} ignored (only T lines are entities)"] += n
    if discontinuous:
        builder.result.notes.append(
            f"{len(discontinuous)} discontinuous span(s) read as their covering span: " + "; ".join(discontinuous[:10])
        )
    if not builder.result.sentences:
        raise InputError(path, None, "no documents")
    return builder.finish()


def _parse_ann(
    ann: Path, ignored: Counter[str], discontinuous: list[str], strict: bool
) -> tuple[list[tuple[Any, ...]], list[int]]:
    """The T lines of ``ann`` as ``(start, end, label, mention)`` spans, and their line numbers."""
    spans: list[tuple[Any, ...]] = []
    lines: list[int] = []
    content = read_text(ann) if ann.stat().st_size else ""  # an empty .ann: a document without entities
    for lineno, raw in enumerate(content.split("\n"), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        kind = line[0]
        if kind != "T":
            if kind not in _IGNORED:
                raise InputError(ann, lineno, f"not a brat annotation line (T, R, E, A, M, N, #, *): {line[:60]!r}")
            ignored[_IGNORED[kind]] += 1
            continue
        m = _T_LINE.fullmatch(line)
        if m is None:
            raise InputError(
                ann, lineno, f"malformed T line (expected 'T1<TAB>TYPE START END<TAB>TEXT'): {line[:80]!r}"
            )
        frags = [tuple(map(int, f.split())) for f in m["frags"].split(";")]
        mention = m["mention"]
        if len(frags) > 1:
            desc = f"line {lineno} {m['type']} {m['frags']}"
            if strict:
                raise InputError(
                    ann,
                    lineno,
                    f"discontinuous span {m['frags']} (strict mode; without --strict it is read as its covering span)",
                )
            discontinuous.append(f"{ann.name} {desc}")
            spans.append((frags[0][0], frags[-1][1], m["type"], mention, frags))
        else:
            spans.append((frags[0][0], frags[0][1], m["type"], mention))
        lines.append(lineno)
    return spans, lines
