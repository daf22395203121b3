"""Writers for the formats :mod:`parsner.data.readers` reads, so that data round-trips (read ∘ write = identity).

* :func:`write_conll`: ``TOKEN<sep>TAG`` per line, a blank line after each sentence. The separator decides
  which reader reads it back: ``" "`` -> ``conll``/``arman`` (tokens must not contain whitespace),
  ``"\\t"`` -> ``tsv`` (tokens must not contain a tab), ``"|"`` -> ``peyma`` (split on the last ``|``:
  tokens may contain spaces and ``|``). A token the chosen format cannot carry is refused with its
  file:line, never altered.
* :func:`write_jsonl`: one ``{"id", "text", "entities"}`` record per document (sentences grouped by
  ``doc_id``, in order of first appearance). The text is the original document text when known (span data read
  by :mod:`parsner.data.readers.spans` keeps it in :attr:`ReadResult.texts`), otherwise it is rebuilt from the
  tokens and their offsets (gaps become spaces), or, for CoNLL data without offsets, by joining tokens with
  spaces and sentences with newlines.

Both write atomically (temporary file + rename).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from parsner.atomic import atomic_write_text
from parsner.data.records import ReadResult, Sentence
from parsner.errors import ConfigError, InputError
from parsner.labels import TagError, canonical_tag, spans_from_tags

#: Separators :func:`write_conll` accepts, and the reader format that reads each back.
SEPARATORS = {" ": "conll", "\t": "tsv", "|": "peyma"}

_DOCSTART = "-DOCSTART-"


def conll_sentence(columns: Sequence[Sequence[str]], sep: str = "\t") -> str:
    """One sentence in CoNLL layout: per word its columns joined by ``sep``, then a blank line.

    ``columns`` are parallel lists (tokens, tags[, predicted tags]). Every CoNLL-style file ParsNER writes
    (datasets, ``predictions.conll``, ``predict --format conll``) is laid out here. A value that ``sep`` or a
    line break would split raises ValueError naming the word; callers add the file and line.
    """
    if len({len(c) for c in columns}) > 1:
        raise ValueError(f"columns of different lengths: {[len(c) for c in columns]}")
    names = {"\t": "a tab", " ": "a space", "|": "'|'"}
    lines = []
    for j, row in enumerate(zip(*columns, strict=True)):
        for k, value in enumerate(row):
            if "\n" in value or "\r" in value:
                raise ValueError(f"word {j}: {value!r} contains a line break")
            # PEYMA's reader splits on the LAST '|', so a token (first column) may hold one
            if sep in value and not (sep == "|" and k == 0):
                raise ValueError(f"word {j}: {value!r} contains {names.get(sep, repr(sep))}")
        lines.append(sep.join(row) + "\n")
    return "".join(lines) + "\n" if lines else ""


def _token_problem(token: str, sep: str) -> str | None:
    """Why ``token`` cannot be written with ``sep`` and read back unchanged, or None."""
    if not token.strip():
        return "is empty or only whitespace"
    if "\n" in token or "\r" in token:
        return "contains a line break"
    if "\x00" in token:
        return "contains a NUL character"
    if token.startswith(_DOCSTART):
        return f"starts with {_DOCSTART}, which marks a document boundary"
    if sep == " " and any(ch.isspace() for ch in token):
        return "contains whitespace; use sep='\\t' or sep='|'"
    if sep == "\t" and "\t" in token:
        return "contains a tab; use sep='|'"
    return None


def _check_tag(s: Sentence, tag: str) -> None:
    try:
        ok = canonical_tag(tag) == tag
    except TagError:
        ok = False
    if not ok:
        raise InputError(
            s.source, s.line, f"cannot write tag {tag!r}: not a canonical IOB2 tag (O, B-X, I-X)"
        )


def write_conll(
    sentences: Iterable[Sentence], path: str | Path, sep: str = " ", *, docstart: bool = False
) -> int:
    """Write ``sentences`` as ``TOKEN<sep>TAG`` lines; returns the number of sentences written.

    ``docstart=True`` writes a ``-DOCSTART-`` line before each new ``doc_id``, so document grouping
    survives the round trip. Refuses (``InputError`` naming the sentence's source and line) any token that the
    separator cannot carry; nothing is written then.
    """
    if sep not in SEPARATORS:
        raise ConfigError(f"separator {sep!r} is not one of ' ', '\\t', '|'")
    out: list[str] = []
    n = 0
    doc: str | None = None
    for s in sentences:
        if docstart and s.doc_id != doc:
            out.append(f"{_DOCSTART}\n\n")
            doc = s.doc_id
        for i, (token, tag) in enumerate(zip(s.tokens, s.tags, strict=True)):
            problem = _token_problem(token, sep)
            if problem is None and not out and token.startswith("\ufeff"):
                problem = "starts with a byte-order mark, which readers strip at the start of a file"
            if problem:
                raise InputError(
                    s.source,
                    s.line + i if s.offsets is None else s.line,
                    f"cannot write token {token!r} with separator {sep!r} to {path}: it {problem}",
                )
            _check_tag(s, tag)
        if s.tokens:
            out.append(conll_sentence([s.tokens, s.tags], sep))
            n += 1
    if not n:
        raise ConfigError(f"nothing to write to {path}: no sentences with tokens")
    atomic_write_text(path, "".join(out))
    return n


def _rebuild_text(doc: list[Sentence]) -> tuple[str, list[list[tuple[int, int]]]]:
    """A document text and per-sentence token offsets, for sentences without a known original text."""
    if all(s.offsets is not None for s in doc):
        offsets = [list(s.offsets or []) for s in doc]
        size = max((e for offs in offsets for _, e in offs), default=0)
        chars = [" "] * size
        for s, offs in zip(doc, offsets, strict=True):
            for token, (a, b) in zip(s.tokens, offs, strict=True):
                if b - a != len(token) or any(c != " " for c in chars[a:b]):
                    raise InputError(s.source, s.line, f"token {token!r} does not fit its offsets [{a}, {b})")
                chars[a:b] = token
        return "".join(chars), offsets
    if any(s.offsets is not None for s in doc):
        raise InputError(
            doc[0].source, doc[0].line, f"document {doc[0].doc_id!r} mixes sentences with and without offsets"
        )
    parts: list[str] = []
    offsets = []
    pos = 0
    for k, s in enumerate(doc):
        if k:
            parts.append("\n")
            pos += 1
        offs = []
        for i, token in enumerate(s.tokens):
            if i:
                parts.append(" ")
                pos += 1
            offs.append((pos, pos + len(token)))
            parts.append(token)
            pos += len(token)
        offsets.append(offs)
    return "".join(parts), offsets


def write_jsonl(
    data: ReadResult | Iterable[Sentence], path: str | Path, *, texts: Mapping[str, str] | None = None
) -> int:
    """Write span records ``{"id", "text", "entities": [{"start", "end", "label"}]}``; returns the count.

    ``data`` is a :class:`ReadResult` (its ``texts`` are used) or sentences (pass ``texts``, doc id ->
    original text, to keep the original text; otherwise it is rebuilt, see the module docstring). Entity
    offsets are those of the first and last word of each entity, so reading the file back gives the same
    words and tags.
    """
    if isinstance(data, ReadResult):
        texts = {**data.texts, **(texts or {})}
        sentences: Iterable[Sentence] = data.sentences
    else:
        sentences = data
    docs: dict[str, list[Sentence]] = {}
    for s in sentences:
        docs.setdefault(s.doc_id, []).append(s)
    lines: list[str] = []
    for doc_id, doc in docs.items():
        if texts is not None and doc_id in texts:
            text = texts[doc_id]
            offsets = []
            for s in doc:
                if s.offsets is None:
                    raise InputError(
                        s.source, s.line, f"document {doc_id!r} has a text but this sentence has no offsets"
                    )
                for token, (a, b) in zip(s.tokens, s.offsets, strict=True):
                    if text[a:b] != token:
                        raise InputError(
                            s.source,
                            s.line,
                            f"token {token!r} is not the text at its offsets [{a}, {b}) "
                            f"of document {doc_id!r} ({text[a:b]!r})",
                        )
                offsets.append(list(s.offsets))
        else:
            text, offsets = _rebuild_text(doc)
        entities = []
        for s, offs in zip(doc, offsets, strict=True):
            for tag in s.tags:
                _check_tag(s, tag)
            for i, j, etype in spans_from_tags(s.tags):
                entities.append({"start": offs[i][0], "end": offs[j - 1][1], "label": etype})
        record: dict[str, object] = {"id": doc_id, "text": text, "entities": entities}
        if not doc_id:
            del record["id"]  # the reader names it <file stem>#<record number>
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    if not lines:
        raise ConfigError(f"nothing to write to {path}: no sentences")
    atomic_write_text(path, "".join(lines))
    return len(lines)
