"""Span-annotated raw text, the way annotation tools export news.

* JSONL: one record a line, ``{"id": ..., "text": ..., "entities": [{"start": s, "end": e, "label": "PER"}]}``
  (doccano's newer ``start_offset``/``end_offset`` keys are accepted too);
* doccano: ``{"text": ..., "label": [[s, e, "PER"], ...]}`` (or ``"labels"``).

``id`` is optional in both; a record without one gets ``<file stem>#<record number>``. Ids must be unique in a
file. Offsets are Python string indices (Unicode code points) into ``text``, ``end`` exclusive.

The text is split into sentences and words with :mod:`parsner.data.wordtok`; every word keeps its character offsets
into the ORIGINAL text (:attr:`Sentence.offsets`), and the text itself is kept in :attr:`ReadResult.texts`
(by doc id) so that :func:`parsner.data.writers.write_jsonl` can write it back unchanged.
Spans become IOB2 word tags:

* a span whose edges fall inside a word is extended to the whole word(s) and reported in the notes
  (``strict=True``: an error instead);
* whitespace at a span's edges is trimmed (reported);
* a span crossing a sentence boundary merges those sentences into one, so the entity stays whole (reported;
  ``strict=True``: an error);
* two spans that overlap, or that end up in the same word after extension, are an error; exact duplicates are
  kept once and reported;
* under a label map a label must be a known type (see :class:`~parsner.data.readers.conll.TagMapper`); a type
  mapped to ``O`` removes its spans, counted in the notes.

Errors name the file, the line and the record number: invalid JSON, a record that is not an object, missing or
non-string or empty ``text``, non-integer offsets, offsets outside the text, ``start >= end``, a span covering
no word, overlapping spans, an unknown label, a duplicate id, an empty file.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parsner.data.readers.conll import TagMapper, parse_json, read_text
from parsner.data.records import ReadResult, Sentence
from parsner.errors import InputError
from parsner.labels import TagError, canonical_type

#: Span formats this module reads.
SPAN_FORMATS = ("jsonl", "doccano")

_SHOW = 40


def read_jsonl(
    path: str | Path, *, strict: bool = False, label_map: Mapping[str, str] | None = None
) -> ReadResult:
    """Read ``{"id", "text", "entities": [{"start", "end", "label"}]}`` records (see the module docstring)."""
    return _read_records(path, "jsonl", strict, label_map)


def read_doccano(
    path: str | Path, *, strict: bool = False, label_map: Mapping[str, str] | None = None
) -> ReadResult:
    """Read doccano ``{"text", "label": [[start, end, "PER"], ...]}`` records (see the module docstring)."""
    return _read_records(path, "doccano", strict, label_map)


def _show(text: str) -> str:
    return repr(text if len(text) <= _SHOW else text[:_SHOW] + "…")


class _RecordError(ValueError):
    pass


def _raw_spans(rec: dict[str, Any], kind: str) -> list[tuple[Any, Any, Any]]:
    """``(start, end, label)`` as found in the record, not yet validated."""
    if kind == "jsonl":
        if "entities" not in rec:
            hint = (
                " (this looks like doccano: use --format doccano)"
                if "label" in rec or "labels" in rec
                else ""
            )
            raise _RecordError(f"missing 'entities' (an empty list for no entities){hint}")
        items = rec["entities"]
        if not isinstance(items, list):
            raise _RecordError(f"'entities' must be a list, got {type(items).__name__}")
        out = []
        for k, item in enumerate(items, 1):
            if not isinstance(item, dict):
                raise _RecordError(f"entity {k} must be an object {{start, end, label}}, got {item!r}")
            vals = []
            for key, alt in (("start", "start_offset"), ("end", "end_offset"), ("label", None)):
                if key in item:
                    vals.append(item[key])
                elif alt is not None and alt in item:
                    vals.append(item[alt])
                else:
                    raise _RecordError(f"entity {k}: missing {key!r} (keys: {', '.join(map(str, item))})")
            out.append((vals[0], vals[1], vals[2]))
        return out
    key = "label" if "label" in rec else "labels" if "labels" in rec else None
    if "label" in rec and "labels" in rec and rec["label"] != rec["labels"]:
        if rec["label"] in ([], None):
            key = "labels"
        elif rec["labels"] not in ([], None):
            # Keeping one list would silently drop the other's spans.
            raise _RecordError("has both 'label' and 'labels' with different spans; keep one of them")
    if key is None:
        hint = " (this looks like JSONL spans: use --format jsonl)" if "entities" in rec else ""
        raise _RecordError(f"missing 'label' (a list of [start, end, label]; empty for no entities){hint}")
    items = rec[key]
    if not isinstance(items, list):
        raise _RecordError(f"{key!r} must be a list of [start, end, label], got {type(items).__name__}")
    out = []
    for k, item in enumerate(items, 1):
        if not isinstance(item, list) or len(item) != 3:
            raise _RecordError(f"{key} entry {k} must be [start, end, label], got {item!r}")
        out.append((item[0], item[1], item[2]))
    return out


def _read_records(
    path: str | Path, kind: str, strict: bool, label_map: Mapping[str, str] | None
) -> ReadResult:
    text = read_text(path)
    normalize = TagMapper(label_map)
    source = str(path)
    stem = Path(path).stem
    result = ReadResult(path=source, format=kind)
    ids: dict[str, int] = {}
    removed: Counter[str] = Counter()
    recno = 0
    for lineno, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        recno += 1
        rec = parse_json(raw, path, lineno, f"record {recno}", " (JSONL needs one complete JSON object per line)")
        try:
            if not isinstance(rec, dict):
                raise _RecordError(f"a record must be a JSON object, got {type(rec).__name__}")
            if "text" not in rec:
                raise _RecordError(f"missing 'text' (keys: {', '.join(map(str, rec)) or 'none'})")
            doc_text = rec["text"]
            if not isinstance(doc_text, str):
                raise _RecordError(f"'text' must be a string, got {type(doc_text).__name__}")
            if not doc_text.strip():
                raise _RecordError("'text' is empty")
            rid = rec.get("id")
            if rid is None:
                doc_id = f"{stem}#{recno}"
            elif isinstance(rid, bool) or not isinstance(rid, str | int):
                raise _RecordError(f"'id' must be a string or an integer, got {rid!r}")
            else:
                doc_id = str(rid)
            if doc_id in ids:
                raise _RecordError(f"duplicate id {doc_id!r} (first used at line {ids[doc_id]})")
            ids[doc_id] = lineno
            spans = _validate_spans(_raw_spans(rec, kind), doc_text)
            groups, notes = _tag_words(doc_text, spans, normalize, removed, strict)
        except (_RecordError, TagError) as exc:
            raise InputError(path, lineno, f"record {recno}: {exc}") from None
        result.notes.extend(f"record {recno} (line {lineno}): {n}" for n in notes)
        result.texts[doc_id] = doc_text
        for tokens, tags, offsets in groups:
            result.sentences.append(Sentence(tokens, tags, source, lineno, doc_id, offsets))
    if not recno:
        raise InputError(path, 1, "no records: the file has only blank lines")
    return finish(result, removed)


def finish(result: ReadResult, removed: Counter[str]) -> ReadResult:
    """Note what the label map removed and count the tags: the last step of every span reader."""
    if removed:
        what = ", ".join(f"{t} {n}" for t, n in sorted(removed.items()))
        result.notes.append(f"the label map removed {sum(removed.values())} span(s): {what}")
    counts: Counter[str] = Counter()
    for s in result.sentences:
        counts.update(s.tags)
    result.tag_counts = counts
    return result


def _validate_spans(raw: list[tuple[Any, Any, Any]], text: str) -> list[tuple[int, int, Any]]:
    """Offsets are integers with ``0 <= start < end <= len(text)``; returns spans sorted by position."""
    n = len(text)
    spans = []
    for k, (start, end, label) in enumerate(raw, 1):
        for name, v in (("start", start), ("end", end)):
            if type(v) is not int:
                raise _RecordError(f"entity {k}: {name} offset {v!r} is not an integer")
        if not (0 <= start <= n and 0 <= end <= n):
            raise _RecordError(f"entity {k}: offsets [{start}, {end}) are outside the text (length {n})")
        if start >= end:
            raise _RecordError(f"entity {k}: start {start} is not before end {end}")
        if not isinstance(label, str) or not label.strip():
            raise _RecordError(f"entity {k}: label {label!r} is not a non-empty string")
        spans.append((start, end, label))
    spans.sort(key=lambda s: (s[0], s[1]))
    return spans


def _tag_words(
    text: str,
    spans: list[tuple[int, int, Any]],
    normalize: TagMapper,
    removed: Counter[str],
    strict: bool,
) -> tuple[list[tuple[list[str], list[str], list[tuple[int, int]]]], list[str]]:
    """Words of ``text`` grouped into sentences, with IOB2 tags from ``spans``; plus notes."""
    from parsner.data.wordtok import sentence_words

    notes: list[str] = []
    sentences = sentence_words(text)  # words and sentence boundaries in one pass
    words = [w for sent in sentences for w in sent]
    if not words:
        raise _RecordError("'text' has no words")
    wstart = [w.start for w in words]
    wend = [w.end for w in words]
    wsent = [k for k, sent in enumerate(sentences) for _ in sent]
    join = [False] * len(sentences)  # join[k]: sentence k is merged with sentence k + 1

    tags = ["O"] * len(words)
    prev: tuple[int, int, Any, int, int] | None = None  # start, end, label, first word, last word
    for start, end, label in spans:
        piece = text[start:end]
        if prev is not None and start < prev[1]:
            if (start, end, label) == prev[:3]:
                notes.append(f"duplicate span [{start}, {end}) {_show(piece)} {label} kept once")
                continue
            raise _RecordError(
                f"overlapping spans [{prev[0]}, {prev[1]}) {_show(text[prev[0] : prev[1]])} {prev[2]} and "
                f"[{start}, {end}) {_show(piece)} {label}"
            )
        i = bisect_right(wend, start)  # first word ending after start
        j = bisect_left(wstart, end) - 1  # last word starting before end
        if i >= len(words) or i > j:
            raise _RecordError(f"span [{start}, {end}) {_show(piece)} {label} covers no word")
        a, b = wstart[i], wend[j]
        if prev is not None and i <= prev[4]:
            raise _RecordError(
                f"spans [{prev[0]}, {prev[1]}) {prev[2]} and [{start}, {end}) {label} fall into the same "
                f"word {_show(words[i].text)}; one word can carry one tag"
            )
        prev = (start, end, label, i, j)
        if a < start or b > end:
            msg = f"span [{start}, {end}) {_show(piece)} {label} does not fall on word boundaries"
            if strict:
                raise _RecordError(f"{msg} (strict mode; without --strict it is extended to whole words)")
            notes.append(f"{msg}; extended to the words [{a}, {b}) {_show(text[a:b])}")
        elif a > start or b < end:
            notes.append(
                f"span [{start}, {end}) {_show(piece)} {label} trimmed to [{a}, {b}) (edge whitespace)"
            )
        if wsent[i] != wsent[j]:
            msg = f"entity [{a}, {b}) {_show(text[a:b])} {label} crosses a sentence boundary"
            if strict:
                raise _RecordError(f"{msg} (strict mode; without --strict the sentences are merged)")
            notes.append(f"{msg}; its {wsent[j] - wsent[i] + 1} sentences merged into one")
            for k in range(wsent[i], wsent[j]):
                join[k] = True
        etype = normalize.type_of(label)
        if etype == "O":
            removed[canonical_type(label)] += 1
            continue
        tags[i] = f"B-{etype}"
        for k in range(i + 1, j + 1):
            tags[k] = f"I-{etype}"

    return _group(words, wsent, tags, join), notes


def _group(
    words: list[Any], wsent: list[int], tags: list[str], join: list[bool]
) -> list[tuple[list[str], list[str], list[tuple[int, int]]]]:
    """``(tokens, tags, offsets)`` per sentence, sentences that an entity crosses merged into one."""
    group_of = [0] * len(join)
    for k in range(1, len(join)):
        group_of[k] = group_of[k - 1] + (0 if join[k - 1] else 1)
    groups: list[tuple[list[str], list[str], list[tuple[int, int]]]] = []
    current = -1
    for w, k, tag in zip(words, wsent, tags, strict=True):
        g = group_of[k]
        if g != current:
            groups.append(([], [], []))
            current = g
        groups[-1][0].append(w.text)
        groups[-1][1].append(tag)
        groups[-1][2].append((w.start, w.end))
    return groups
