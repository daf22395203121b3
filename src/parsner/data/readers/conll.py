"""Token-per-line corpora: PEYMA (``TOKEN|TAG``), ARMAN (``TOKEN TAG``), ParsTwiNER/TSV (``TOKEN\\tTAG``)
and generic CoNLL (configurable separator and columns, ``-DOCSTART-`` documents).

Common rules for every format:

* the file must be UTF-8 (a BOM is accepted and stripped); CRLF line ends are accepted;
* blank and whitespace-only lines end a sentence (several in a row are fine);
* a line starting with ``-DOCSTART-`` starts a new document and is skipped;
* tokens are kept exactly as written (PEYMA tokens contain spaces and even ``|``); only the tag is stripped;
* tags go through :func:`parsner.labels.canonical_tag` (``B_ORG`` -> ``B-ORG``, ``B-pers`` -> ``B-PER``) and
  the label map. Under a label map every entity type must be known (see :func:`TagMapper.check_type`);
* invalid IOB2 transitions (an ``I-X`` not after ``B-X``/``I-X``, checked after the label map) raise
  ``InputError(file, line)`` with ``strict=True``; otherwise they are repaired to ``B-X`` and counted in
  :attr:`ReadResult.repaired`, with the first lines listed in :attr:`ReadResult.notes`.

Document ids: ``<file stem>#<n>``, ``n`` counting the ``-DOCSTART-`` lines seen before the sentence. A file
without any ``-DOCSTART-`` (PEYMA, ARMAN, ParsTwiNER) has no article boundaries; its sentences are grouped
into pseudo-documents of :data:`DOC_BLOCK` consecutive sentences, ``<file stem>#block<k>``, because
neighbouring sentences usually come from the same article and a split by document must not scatter them.
A note says so.

Bad input raises :class:`~parsner.errors.InputError` naming the file and line: non-UTF-8 bytes, NUL bytes,
a line over :data:`MAX_LINE_CHARS` characters, a line without a tag, an empty token or tag, an unknown tag,
an empty file or one with no token lines.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsner import surrogates
from parsner.data.records import ReadResult, Sentence
from parsner.errors import ConfigError, InputError
from parsner.labels import TagError, canonical_tag, canonical_type, first_invalid_transition, repair_iob2

#: Token-per-line formats this module reads.
FORMATS = ("peyma", "arman", "parstwiner", "tsv", "conll")

#: No token line is this long; a longer line means raw text or a wrong format (and must not hang the reader).
MAX_LINE_CHARS = 100_000

#: Sentences per pseudo-document in files without ``-DOCSTART-`` (``parsner.data.splits`` splits by the same blocks).
DOC_BLOCK = 10

#: Entity types of the corpora ParsNER knows (after :func:`parsner.labels.canonical_type`).
KNOWN_TYPES = frozenset({"PER", "LOC", "ORG", "DAT", "TIM", "MON", "PCT", "FAC", "PRO", "EVE", "POG", "NAT"})

#: How many repaired lines are listed one by one in the notes.
_MAX_REPAIR_NOTES = 10

_DOCSTART = "-DOCSTART-"


# ------------------------------------------------------------------------------------------ file level


def read_text(path: str | Path) -> str:
    """The file decoded as UTF-8 (BOM stripped), or an :class:`InputError` naming the line of the problem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a directory, not a file") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(
            path, 1, "the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        )
    if not data:
        raise InputError(path, 1, "empty file (0 bytes)")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        col = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        raise InputError(
            path,
            line,
            f"NUL byte at byte {col} of the line: a binary file or UTF-16 text? save it as UTF-8 text",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            path,
            line,
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at byte {col} of the line ({exc.reason}); "
            "save the file as UTF-8 (Windows-1256 is a common cause for Persian text)",
        ) from None


def parse_json(raw: str, path: str | Path, line: int, where: str = "", hint: str = "") -> Any:
    """``raw`` (JSON text starting at ``line`` of ``path``) parsed: the one place readers decode JSON.

    Invalid JSON, nesting too deep for the parser, and a lone surrogate escape (``"\\ud800"``: valid JSON,
    but not text; it would fail when the dataset is saved) raise an :class:`InputError` naming the line;
    ``where`` (``"record 3"``) prefixes the message and ``hint`` follows a syntax error.
    """
    prefix = f"{where}: " if where else ""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(
            path, line + exc.lineno - 1, f"{prefix}invalid JSON: {exc.msg} at column {exc.colno}{hint}"
        ) from None
    except RecursionError:
        raise InputError(path, line, f"{prefix}invalid JSON: nested too deeply") from None
    k = surrogates.find_in_json(raw)
    if k >= 0:
        col = k - (raw.rfind("\n", 0, k) + 1) + 1
        raise InputError(
            path,
            line + raw.count("\n", 0, k),
            f"{prefix}the escape {raw[k:k + 6]} at column {col} is a lone surrogate: {surrogates.WHAT}; "
            "remove it or write the whole character",
        )
    return data


def is_docstart(line: str) -> bool:
    """``-DOCSTART-`` alone or followed by a separator (``-DOCSTART- -X- O``, ``-DOCSTART-|O``)."""
    return line.startswith(_DOCSTART) and (len(line) == len(_DOCSTART) or line[len(_DOCSTART)] in " \t|")


# ------------------------------------------------------------------------------------------ tags


class TagMapper:
    """Normalises raw tags (cached: a corpus has few distinct tags) and checks them under a label map.

    With a label map, an entity type must be one of :data:`KNOWN_TYPES`, a key or a value of the map;
    anything else (a typo such as ``B-PRS``) is an unknown label. Without a label map any well-formed type is
    accepted, so that corpora with their own schemas can be read.
    """

    def __init__(self, label_map: Mapping[str, str] | None = None) -> None:
        self.label_map: dict[str, str] | None = None
        self._known: frozenset[str] | None = None
        if label_map is not None:
            # canonical on both sides, as load_label_map gives it ({"pers": "loc"} -> {"PER": "LOC"})
            self.label_map = {
                canonical_type(k): "O" if v.strip().upper() == "O" else canonical_type(v)
                for k, v in label_map.items()
            }
            self._known = KNOWN_TYPES | set(self.label_map) | (set(self.label_map.values()) - {"O"})
        self._cache: dict[str, str] = {}

    def check_type(self, etype: str) -> None:
        """Raise :class:`TagError` for a type the label map does not know about."""
        if self._known is not None and etype not in self._known:
            known = ", ".join(sorted(self._known))
            raise TagError(f"unknown entity type {etype!r} under the label map (known: {known})")

    def __call__(self, raw: str) -> str:
        tag = self._cache.get(raw)
        if tag is None:
            base = canonical_tag(raw)
            if base != "O":
                self.check_type(base[2:])
            tag = canonical_tag(raw, self.label_map) if self.label_map is not None else base
            self._cache[raw] = tag
        return tag

    def type_of(self, label: str) -> str:
        """A span label (``PER``, ``pers``, ``person``) -> mapped canonical type (``"O"``: mapped away)."""
        if not isinstance(label, str):
            raise TagError(f"label {label!r} is not a string")
        etype = canonical_type(label)
        if not re.fullmatch(r"[A-Z0-9]+", etype):
            raise TagError(f"label {label!r} is not an entity type (letters/digits only, e.g. PER)")
        tag = self(f"B-{etype}")
        return "O" if tag == "O" else tag[2:]


# ------------------------------------------------------------------------------------------ line splitting


class _LineError(ValueError):
    pass


def _split_last(sep: str, name: str) -> Callable[[str], tuple[str, str]]:
    """``TOKEN<sep>TAG`` split on the LAST separator: the token may contain the separator (PEYMA ``||O``)."""

    def split(line: str) -> tuple[str, str]:
        token, found, tag = line.rpartition(sep)
        if not found:
            raise _LineError(f"no tag: expected {name} but the line has no {sep!r} separator: {_show(line)}")
        return token, tag

    return split


def _split_tsv(line: str) -> tuple[str, str]:
    fields = line.split("\t")
    if len(fields) == 2:
        return fields[0], fields[1]
    if len(fields) == 1:
        raise _LineError(f"no tag: expected TOKEN<TAB>TAG but the line has no tab: {_show(line)}")
    raise _LineError(
        f"expected 2 tab-separated fields (TOKEN<TAB>TAG), found {len(fields)}: {_show(line)}; "
        "for more columns use --format conll"
    )


def _split_columns(sep: str | None, token_col: int, tag_col: int) -> Callable[[str], tuple[str, str]]:
    def split(line: str) -> tuple[str, str]:
        fields = line.split(sep)
        n = len(fields)
        if not (-n <= token_col < n and -n <= tag_col < n) or token_col % n == tag_col % n:
            if n == 1:
                raise _LineError(f"no tag: the line has a single column: {_show(line)}")
            raise _LineError(
                f"the line has {n} columns; token column {token_col} and tag column {tag_col} "
                f"are not both there: {_show(line)}"
            )
        return fields[token_col], fields[tag_col]

    return split


def _show(line: str, limit: int = 80) -> str:
    return repr(line if len(line) <= limit else line[:limit] + "…")


def _splitter(fmt: str, sep: str | None, token_col: int, tag_col: int) -> Callable[[str], tuple[str, str]]:
    if fmt == "peyma":
        return _split_last("|", "TOKEN|TAG")
    if fmt == "arman":
        return _split_last(" ", "TOKEN TAG")
    if fmt in ("parstwiner", "tsv"):
        return _split_tsv
    return _split_columns(sep, token_col, tag_col)


# ------------------------------------------------------------------------------------------ reader


@dataclass
class _Assembly:
    """Sentences as read, before document ids: the ``-DOCSTART-`` count before each, and the repairs made."""

    sentences: list[Sentence] = field(default_factory=list)
    docs: list[int] = field(default_factory=list)  # -DOCSTART- count before each sentence
    docstarts: int = 0
    repaired: int = 0
    repaired_lines: list[str] = field(default_factory=list)  # the first repairs, for the note


def _check_options(fmt: str, sep: str | None, token_col: int, tag_col: int) -> str:
    """The format name in lower case, once it and the column options are known to fit together."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown token-per-line format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt != "conll" and (sep is not None or token_col != 0 or tag_col != -1):
        raise ConfigError(f"sep/token_col/tag_col apply to --format conll only, not {fmt}")
    if sep == "":
        raise ConfigError("the separator must not be empty")
    return fmt


def _parse_line(
    path: str | Path,
    lineno: int,
    line: str,
    split: Callable[[str], tuple[str, str]],
    normalize: TagMapper,
) -> tuple[str, str]:
    """One token line -> ``(token, normalised tag)``, or an :class:`InputError` naming the line."""
    try:
        token, raw_tag = split(line)
    except _LineError as exc:
        raise InputError(path, lineno, str(exc)) from None
    if not token.strip():
        raise InputError(path, lineno, f"empty token: {_show(line)}")
    try:
        tag = normalize(raw_tag)
    except TagError as exc:
        if not raw_tag.strip():
            raise InputError(path, lineno, f"empty tag: {_show(line)}") from None
        raise InputError(path, lineno, str(exc)) from None
    return token, tag


def _checked_tags(path: str | Path, first_line: int, tags: list[str], strict: bool, acc: _Assembly) -> list[str]:
    """``tags`` when they are valid IOB2; else an error (strict) or the repaired tags, counted in ``acc``."""
    bad = first_invalid_transition(tags)
    if bad is None:
        return tags
    before = tags[bad - 1] if bad else "the sentence start"
    if strict:
        raise InputError(
            path,
            first_line + bad,
            f"invalid IOB2 transition: {tags[bad]} after {before} (strict mode; "
            f"without --strict it is repaired to B-{tags[bad][2:]})",
        )
    fixed, n = repair_iob2(tags)
    acc.repaired += n
    if len(acc.repaired_lines) < _MAX_REPAIR_NOTES:
        prev = "O"
        for i, (old, new) in enumerate(zip(tags, fixed, strict=True)):
            if old != new and len(acc.repaired_lines) < _MAX_REPAIR_NOTES:
                acc.repaired_lines.append(f"line {first_line + i}: {old} after {prev}")
            prev = new
    return fixed


def _assemble(
    path: str | Path,
    lines: list[str],
    fmt: str,
    split: Callable[[str], tuple[str, str]],
    normalize: TagMapper,
    strict: bool,
) -> _Assembly:
    """Token lines -> sentences (blank lines end one, ``-DOCSTART-`` starts a document).

    Each sentence's tags are checked as it ends, so errors come in file order.
    """
    acc = _Assembly()
    source = str(path)
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0

    def flush() -> None:
        nonlocal tokens, tags
        acc.sentences.append(Sentence(tokens, _checked_tags(path, first_line, tags, strict, acc), source, first_line))
        acc.docs.append(acc.docstarts)
        tokens, tags = [], []

    for lineno, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_CHARS:
            raise InputError(
                path,
                lineno,
                f"line of {len(line):,} characters (limit {MAX_LINE_CHARS:,}); {fmt} files have one token "
                "per line: is this raw text, JSONL or another format?",
            )
        line = line.rstrip(" \t\r")
        if not line or line.isspace():
            if tokens:
                flush()
            continue
        if line[0] == "-" and is_docstart(line):
            if tokens:
                flush()
            acc.docstarts += 1
            continue
        token, tag = _parse_line(path, lineno, line, split, normalize)
        if not tokens:
            first_line = lineno
        tokens.append(token)
        tags.append(tag)
    if tokens:
        flush()
    return acc


def _doc_ids(path: str | Path, sentences: list[Sentence], acc: _Assembly) -> list[str]:
    """Set every sentence's ``doc_id`` (see the module docstring); returns the note for block documents."""
    stem = Path(path).stem
    if acc.docstarts:
        for s, d in zip(sentences, acc.docs, strict=True):
            s.doc_id = f"{stem}#{d}"
        return []
    for i, s in enumerate(sentences):
        s.doc_id = f"{stem}#block{i // DOC_BLOCK}"
    return [
        f"no -DOCSTART- lines: sentences grouped into pseudo-documents of {DOC_BLOCK} consecutive "
        f"sentences ({stem}#block0 ...)"
    ]


def _repair_notes(acc: _Assembly) -> list[str]:
    if not acc.repaired:
        return []
    more = "" if acc.repaired <= len(acc.repaired_lines) else f" (first {len(acc.repaired_lines)} listed)"
    return [f"repaired {acc.repaired} orphan I- tag(s) to B-{more}: " + "; ".join(acc.repaired_lines)]


def read_conll(
    path: str | Path,
    fmt: str,
    *,
    strict: bool = False,
    label_map: Mapping[str, str] | None = None,
    sep: str | None = None,
    token_col: int = 0,
    tag_col: int = -1,
) -> ReadResult:
    """Read one token-per-line file (see the module docstring). ``sep``/``token_col``/``tag_col`` are for
    ``fmt="conll"`` only (``sep=None``: any run of whitespace)."""
    fmt = _check_options(fmt, sep, token_col, tag_col)
    text = read_text(path)
    split = _splitter(fmt, sep, token_col, tag_col)
    normalize = TagMapper(label_map)
    lines = text.split("\n")
    acc = _assemble(path, lines, fmt, split, normalize, strict)
    if not acc.sentences:
        if acc.docstarts:
            raise InputError(path, 1, f"no token lines: only {acc.docstarts} -DOCSTART- line(s) and blank lines")
        raise InputError(path, 1, f"no token lines: the file has {len(lines):,} line(s), all blank")
    result = ReadResult(path=str(path), format=fmt, sentences=acc.sentences, repaired=acc.repaired)
    result.notes += _doc_ids(path, result.sentences, acc)
    result.notes += _repair_notes(acc)
    counts: Counter[str] = Counter()
    for s in result.sentences:
        counts.update(s.tags)
    result.tag_counts = counts
    return result
