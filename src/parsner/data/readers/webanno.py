"""WebAnno / INCEpTION TSV 3.x (one document per file), named-entity layer.

::

    #FORMAT=WebAnno TSV 3.3
    #T_SP=de.tudarmstadt.ukp.dkpro.core.api.ner.type.NamedEntity|identifier|value


    #Text=علی به تهران رفت
    1-1	0-3	علی	_	PER
    1-2	4-6	به	_	_
    1-3	7-12	تهران	_	LOC[1]

The ``#T_SP``/``#T_CH``/``#T_RL`` header lines declare the annotation columns after ``ID``, ``BEGIN-END`` and
``TOKEN``; the reader finds the ``value`` feature of the ``NamedEntity`` layer (``layer`` names another span
layer, e.g. ``webanno.custom.Entity``; its feature ``value`` or the first one). A label ``PER[3]`` marks
token(s) of multi-token entity 3 (one span from its first to its last token); ``_`` is no entity; stacked
labels ``PER[1]|LOC[2]`` are overlapping entities (an error: one word carries one tag); ``*`` (an entity
without a label) is skipped and counted.

Offsets: TSV offsets are UTF-16 code units (Java) into the whole document. The document text is rebuilt from
the ``#Text=`` lines (several in a row are one sentence with line breaks), each placed at its first token's
offset, gaps filled with spaces (a newline between sentences). Every token is checked against that text; a
file whose tokens match only under the UTF-16 reading is converted (counted in the notes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parsner.data.readers.conll import read_text
from parsner.data.readers.docs import DocBuilder
from parsner.data.records import ReadResult
from parsner.errors import InputError

_TOKEN = re.compile(r"(?P<id>\d+-\d+(?:\.\d+)?)\t(?P<begin>\d+)-(?P<end>\d+)\t(?P<rest>.*)")
_LABEL = re.compile(r"(?P<label>.*?)(?:\[(?P<n>\d+)\])?")
_UNESCAPE = re.compile(r"\\([,\[\]|_*;\\tn]|->)")
_ESC = {"t": "\t", "n": "\n"}


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: _ESC.get(m[1], m[1]), value)


def _split_labels(cell: str) -> list[str]:
    """``PER[1]|LOC[2]`` -> ``["PER[1]", "LOC[2]"]`` (an escaped ``\\|`` stays inside a label)."""
    return [p for p in re.split(r"(?<!\\)\|", cell)]


def _ne_column(headers: list[tuple[int, str]], path: Path, layer: str | None) -> int:
    """Index (among the annotation columns) of the entity label column."""
    col = 0
    layers = []
    for lineno, h in headers:
        kind, _, spec = h.partition("=")
        parts = spec.split("|")
        name, feats = parts[0], parts[1:]
        layers.append(name)
        wanted = name == layer if layer else name.endswith(".NamedEntity")
        if wanted and kind == "#T_SP":
            if "value" in feats:
                return col + feats.index("value")
            if feats:
                return col
            raise InputError(path, lineno, f"layer {name} has no feature columns")
        col += len(feats)
    raise InputError(
        path,
        1,
        f"no {'span layer ' + layer if layer else 'NamedEntity layer'} in the header "
        f"(layers: {', '.join(layers) or 'none'})",
    )


def read_webanno(
    path: str | Path,
    *,
    strict: bool = False,
    label_map: Mapping[str, str] | None = None,
    layer: str | None = None,
) -> ReadResult:
    """Read one WebAnno/INCEpTION TSV 3.x file (see the module docstring)."""
    path = Path(path)
    lines = read_text(path).split("\n")
    if not lines[0].startswith("#FORMAT=WebAnno TSV 3"):
        raise InputError(path, 1, f"not WebAnno TSV 3.x: expected '#FORMAT=WebAnno TSV 3.x', got {lines[0][:60]!r}")
    headers = [(i, ln.rstrip("\r")) for i, ln in enumerate(lines, 1) if ln.startswith(("#T_SP=", "#T_CH=", "#T_RL="))]
    col = _ne_column(headers, path, layer)
    sents: list[tuple[str, list[tuple[int, int, int, str, str]]]] = []  # text, tokens (line, b, e, tok, cell)
    text_lines: list[str] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        if line.startswith("#Text="):
            text_lines.append(_unescape(line[len("#Text=") :]))
            continue
        if not line.strip() or line.startswith("#"):
            continue
        m = _TOKEN.fullmatch(line)
        if m is None:
            raise InputError(path, lineno, f"not a token line 'S-T<TAB>BEGIN-END<TAB>TOKEN<TAB>...': {line[:80]!r}")
        cells = m["rest"].split("\t")
        if len(cells) < col + 2:
            raise InputError(
                path, lineno, f"{len(cells) - 1} annotation column(s); the header declares at least {col + 1}"
            )
        if text_lines:
            sents.append(("\n".join(text_lines), []))
            text_lines = []
        if not sents:
            raise InputError(path, lineno, "token line before any '#Text=' line")
        sents[-1][1].append((lineno, int(m["begin"]), int(m["end"]), cells[0], cells[1 + col]))
    if not sents:
        raise InputError(path, 1, "no sentences ('#Text=' and token lines)")
    builder = DocBuilder(path, "webanno", strict=strict, label_map=label_map)
    text, positions, utf16 = _rebuild(path, sents)
    spans = _entities(path, sents, positions, builder)
    builder.add(path.stem, text, spans, line=None, where="document")
    if utf16:
        builder.utf16 += 1
    return builder.finish()


def _rebuild(
    path: Path, sents: list[tuple[str, list[tuple[int, int, int, str, str]]]]
) -> tuple[str, dict[int, tuple[int, int]], bool]:
    """The document text and each token line's code-point offsets; whether offsets were UTF-16."""
    for utf16 in (False, True):
        parts: list[str] = []
        units = 0  # position in the file's units
        cp = 0  # position in code points
        positions: dict[int, tuple[int, int]] = {}
        bad: tuple[int, str] | None = None
        for stext, toks in sents:
            begin = toks[0][1]
            if begin < units:
                raise InputError(path, toks[0][0], f"offset {begin} goes back before the previous sentence's end")
            gap = begin - units
            fill = ("\n" + " " * (gap - 1)) if gap and parts else " " * gap
            parts.append(fill + stext)
            table = _units(stext, utf16)
            for lineno, b, e, tok, _ in toks:
                rb, re_ = b - begin, e - begin
                if not (0 <= rb <= re_ < len(table)) or table[rb] < 0 or table[re_] < 0:
                    bad = bad or (lineno, f"offsets {b}-{e} fall outside its sentence")
                    continue
                a, z = cp + gap + table[rb], cp + gap + table[re_]
                if stext[table[rb] : table[re_]] != _unescape(tok):
                    bad = bad or (lineno, f"token {tok!r} is not the sentence text at {b}-{e}")
                positions[lineno] = (a, z)
            cp += gap + len(stext)
            units = begin + len(table) - 1
        if bad is None:
            return "".join(parts), positions, utf16
    raise InputError(path, bad[0], f"{bad[1]} (neither code-point nor UTF-16 offsets fit)")


def _units(text: str, utf16: bool) -> list[int]:
    """``table[u]``: the code-point index of offset ``u`` in ``text`` (``-1`` inside a surrogate pair)."""
    table: list[int] = []
    for i, c in enumerate(text):
        table.append(i)
        if utf16 and ord(c) >= 0x10000:
            table.append(-1)
    table.append(len(text))
    return table


def _entities(
    path: Path,
    sents: list[tuple[str, list[tuple[int, int, int, str, str]]]],
    positions: dict[int, tuple[int, int]],
    builder: DocBuilder,
) -> list[tuple[Any, ...]]:
    spans: list[tuple[Any, ...]] = []
    multi: dict[str, list[Any]] = {}  # entity number -> [start, end, label, first line]
    for _, toks in sents:
        for lineno, *_rest, cell in toks:
            if cell in ("_", ""):
                continue
            a, z = positions[lineno]
            for part in _split_labels(cell):
                m = _LABEL.fullmatch(part)
                label = _unescape(m["label"]) if m else part
                if label in ("*", "_", ""):
                    builder.skipped["entity token(s) without a label ('*') skipped"] += 1
                    continue
                if m and m["n"]:
                    ent = multi.get(m["n"])
                    if ent is None:
                        ent = multi[m["n"]] = [a, z, label, lineno]
                        spans.append(ent)  # type: ignore[arg-type]
                    elif ent[2] != label:
                        raise InputError(
                            path, lineno, f"entity [{m['n']}] is {ent[2]} on line {ent[3]} but {label} here"
                        )
                    ent[1] = z
                else:
                    spans.append((a, z, label, None))
    return [(s[0], s[1], s[2], None) for s in spans]
