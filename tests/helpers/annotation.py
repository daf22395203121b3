"""The annotation-format fixtures (``tests/fixtures/annotation``: one Persian news text in every format a reader
takes) and what the reader tests compare: documents' words and tags, and entity character spans."""

from __future__ import annotations

from pathlib import Path

from parsner.labels import spans_from_tags

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "annotation"


def docs(result) -> dict[str, list[tuple[list[str], list[str]]]]:
    out: dict[str, list[tuple[list[str], list[str]]]] = {}
    for s in result.sentences:
        out.setdefault(s.doc_id, []).append((s.tokens, s.tags))
    return out


def entities(result) -> dict[str, set[tuple[int, int, str]]]:
    """Entity character spans per document, from the words' tags and offsets."""
    out: dict[str, set[tuple[int, int, str]]] = {d: set() for d in result.texts}
    for s in result.sentences:
        for i, j, etype in spans_from_tags(s.tags):
            out[s.doc_id].add((s.offsets[i][0], s.offsets[j - 1][1], etype))
    return out
