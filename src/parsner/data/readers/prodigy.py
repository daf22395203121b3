"""Prodigy JSONL (``prodigy db-out``): ``{"text", "spans": [{"start", "end", "label"}], "answer", "meta"}``.

* ``answer`` ``reject`` or ``ignore``: the example is skipped and counted (missing ``answer``: accepted);
* a missing ``spans`` is an example without entities;
* the document id is ``meta.id``, else ``_input_hash``, else ``<file stem>#<record>``; the same id twice is an
  error (the same text annotated twice: merge the answers with Prodigy's ``review`` recipe first);
* a span's ``text``, where present, is checked against the text (see :mod:`parsner.data.readers.docs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parsner.data.readers.conll import parse_json, read_text
from parsner.data.readers.docs import DocBuilder, RecordError
from parsner.data.records import ReadResult
from parsner.errors import InputError

ANSWERS = ("accept", "reject", "ignore")


def _spans(rec: dict[str, Any]) -> list[tuple[Any, ...]]:
    items = rec.get("spans", [])
    if not isinstance(items, list):
        raise RecordError(f"'spans' must be a list, got {type(items).__name__}")
    out: list[tuple[Any, ...]] = []
    for k, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise RecordError(f"span {k} must be an object {{start, end, label}}, got {item!r}")
        missing = [key for key in ("start", "end", "label") if key not in item]
        if missing:
            raise RecordError(f"span {k}: missing {', '.join(map(repr, missing))}")
        stored = item.get("text")
        out.append((item["start"], item["end"], item["label"], stored if isinstance(stored, str) else None))
    return out


def _doc_id(rec: dict[str, Any], stem: str, recno: int) -> str:
    meta = rec.get("meta")
    for value in (meta.get("id") if isinstance(meta, dict) else None, rec.get("_input_hash")):
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return f"{stem}#{recno}"


def read_prodigy(path: str | Path, *, strict: bool = False, label_map: Mapping[str, str] | None = None) -> ReadResult:
    """Read Prodigy's JSONL (see the module docstring)."""
    builder = DocBuilder(path, "prodigy", strict=strict, label_map=label_map)
    stem = Path(path).stem
    recno = 0
    for lineno, raw in enumerate(read_text(path).split("\n"), 1):
        if not raw.strip():
            continue
        recno += 1
        where = f"record {recno}"
        rec = parse_json(raw, path, lineno, where)
        try:
            if not isinstance(rec, dict):
                raise RecordError(f"a record must be a JSON object, got {type(rec).__name__}")
            answer = rec.get("answer", "accept")
            if answer not in ANSWERS:
                raise RecordError(f"'answer' must be one of {', '.join(ANSWERS)}, got {answer!r}")
            if "text" not in rec:
                raise RecordError(f"missing 'text' (keys: {', '.join(map(str, rec)) or 'none'})")
            spans = _spans(rec)
        except RecordError as exc:
            raise builder.error(lineno, where, str(exc)) from None
        if answer != "accept":
            builder.skipped[f"example(s) answered {answer!r} skipped"] += 1
            continue
        builder.add(_doc_id(rec, stem, recno), rec["text"], spans, line=lineno, where=where)
    if not recno:
        raise InputError(path, 1, "no records: the file has only blank lines")
    if not builder.result.sentences:
        raise InputError(path, None, "no accepted examples: every record was rejected or ignored")
    return builder.finish()
