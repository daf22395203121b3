"""Shared machinery of the annotation-tool readers (Label Studio, brat, WebAnno/INCEpTION, Prodigy).

Each of those readers turns its format into documents: an id, the original text and ``(start, end, label)``
spans, with the span text where the format stores it. :class:`DocBuilder` checks the offsets
(:func:`resolve_offsets`), then hands the spans to the same span -> word machinery as JSONL and doccano
(:mod:`parsner.data.readers.spans`), so every format tags words the same way.

Offsets are character offsets (Python string indices, i.e. code points), end exclusive, into the text as
given. Tools written in Java or JavaScript (older Label Studio, doccano, WebAnno/INCEpTION) count UTF-16 code
units instead, so every offset after an emoji or another character outside the Basic Multilingual Plane is
off by one per such character. Where the span text is stored, a span whose code-point reading does not give
that text but whose UTF-16 reading does is converted, and the conversions are counted in the notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from parsner.data.readers.conll import TagMapper
from parsner.data.readers.spans import _RecordError, _show, _tag_words, _validate_spans, finish
from parsner.data.records import ReadResult, Sentence
from parsner.errors import InputError
from parsner.labels import TagError

__all__ = ["DocBuilder", "RecordError", "resolve_offsets", "utf16_to_codepoints"]

#: Raised by the format readers for a problem in one record; the builder adds file and line.
RecordError = _RecordError


def utf16_to_codepoints(text: str) -> list[int] | None:
    """``table[u]``: the code-point index of UTF-16 offset ``u`` (``-1`` inside a surrogate pair).

    None when the text has no astral characters (both readings agree then).
    """
    if all(ord(c) < 0x10000 for c in text):
        return None
    table: list[int] = []
    for i, c in enumerate(text):
        table.append(i)
        if ord(c) >= 0x10000:
            table.append(-1)
    table.append(len(text))
    return table


def _from_utf16(table: list[int], start: Any, end: Any) -> tuple[int, int] | None:
    if type(start) is not int or type(end) is not int or not (0 <= start < end < len(table)):
        return None
    a, b = table[start], table[end]
    return None if a < 0 or b < 0 else (a, b)


def _reading(text: str, span: tuple[Any, ...], convert: list[int] | None) -> tuple[int, int, str] | None:
    """``(start, end, covered text)`` of ``span`` under one reading (``convert``: UTF-16 table), or None.

    A span may carry fragments as a fifth element (brat's discontinuous spans): its text is then the
    fragments' texts joined by a space, as brat stores it.
    """
    frags = span[4] if len(span) > 4 else [(span[0], span[1])]
    got = []
    for a, b in frags:
        if convert is not None:
            ab = _from_utf16(convert, a, b)
            if ab is None:
                return None
            a, b = ab
        elif type(a) is not int or type(b) is not int or not (0 <= a < b <= len(text)):
            return None
        got.append((a, b))
    return got[0][0], got[-1][1], " ".join(text[a:b] for a, b in got)


def resolve_offsets(text: str, spans: Sequence[tuple[Any, ...]]) -> tuple[list[tuple[Any, Any, Any]], bool]:
    """Spans ``(start, end, label, stored_text[, fragments])`` -> ``(start, end, label)`` in code points, plus
    whether the record's offsets were read as UTF-16 code units.

    One convention per record: code points when every stored text matches that reading, else UTF-16 when
    every stored text matches that one; otherwise a :class:`RecordError` naming the first span that matches
    neither. Spans without a stored text (``None``) cannot be checked and follow the record's convention.
    """
    checked = [s for s in spans if s[3] is not None]

    def ok(s: tuple[Any, ...], table: list[int] | None) -> bool:
        r = _reading(text, s, table)
        return r is not None and r[2] == s[3]

    if all(ok(s, None) for s in checked):
        return [(a, b, lab) for a, b, lab, *_ in spans], False
    table = utf16_to_codepoints(text)
    if table is not None and all(ok(s, table) for s in checked):
        out = []
        for s in spans:
            r = _reading(text, s, table)
            out.append((r[0], r[1], s[2]) if r is not None else (s[0], s[1], s[2]))
        return out, True
    k, bad = next((k, s) for k, s in enumerate(spans, 1) if s[3] is not None and not ok(s, None))
    r = _reading(text, bad, None)
    found = r[2] if r is not None else ""
    raise RecordError(
        f"entity {k}: the text at [{bad[0]}, {bad[1]}) is {_show(found)} but the export says "
        f"{_show(bad[3])} (neither code-point nor UTF-16 offsets give the stored text: was the text edited "
        "after annotation?)"
    )


class DocBuilder:
    """Collects the documents of one input into a :class:`ReadResult`."""

    def __init__(self, path: str | Path, fmt: str, *, strict: bool, label_map: Mapping[str, str] | None) -> None:
        self.path = path
        self.result = ReadResult(path=str(path), format=fmt)
        self.strict = strict
        self.normalize = TagMapper(label_map)
        self.removed: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()  # what the reader skipped or ignored, by reason
        self.utf16 = 0
        self._ids: dict[str, str] = {}

    def error(self, line: int | None, where: str, msg: str, source: str | Path | None = None) -> InputError:
        src = source if source is not None else self.path
        # a brat document is its own file: its name is already the error's location
        prefix = "" if where == Path(src).name else f"{where}: "
        return InputError(src, line, f"{prefix}{msg}")

    def add(
        self,
        doc_id: str,
        text: str,
        spans: Sequence[tuple[Any, Any, Any, str | None]],
        *,
        line: int | None,
        where: str,
        source: str | Path | None = None,
    ) -> None:
        """Add one document; ``where`` names it in errors and notes (``task 3``, ``record 7``, ``x.ann``)."""
        src = str(source if source is not None else self.path)
        if isinstance(text, str) and not text.strip() and not spans:
            self.skipped["document(s) with an empty text skipped"] += 1
            return
        try:
            if not isinstance(text, str):
                raise RecordError(f"the text must be a string, got {type(text).__name__}")
            if not text.strip():
                raise RecordError("the text is empty")
            if doc_id in self._ids:
                raise RecordError(f"duplicate document id {doc_id!r} (first: {self._ids[doc_id]})")
            resolved, utf16 = resolve_offsets(text, spans)
            valid = _validate_spans(resolved, text)
            groups, notes = _tag_words(text, valid, self.normalize, self.removed, self.strict)
        except (RecordError, TagError) as exc:
            raise self.error(line, where, str(exc), source) from None
        self._ids[doc_id] = where
        if utf16:
            self.utf16 += 1
            notes.append("offsets read as UTF-16 code units (the stored span texts match only that way)")
        self.result.notes.extend(f"{where}: {n}" for n in notes)
        self.result.texts[doc_id] = text
        for tokens, tags, offsets in groups:
            self.result.sentences.append(Sentence(tokens, tags, src, line or 1, doc_id, offsets))

    def finish(self) -> ReadResult:
        res = self.result
        if self.utf16:
            res.notes.append(
                f"{self.utf16} document(s) had UTF-16 offsets (a Java/JavaScript tool's count; shifted after "
                "emoji and other astral characters) and were converted to code points"
            )
        for reason, n in sorted(self.skipped.items()):
            res.notes.append(f"{n} {reason}")
        return finish(res, self.removed)
