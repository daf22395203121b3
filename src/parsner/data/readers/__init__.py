"""Readers for annotated corpora: format detection and dispatch.

Formats: ``peyma`` (``TOKEN|TAG``), ``arman`` (``TOKEN TAG``), ``parstwiner``/``tsv`` (``TOKEN<TAB>TAG``),
``conll`` (whitespace columns, ``-DOCSTART-``), ``jsonl`` and ``doccano`` (span-annotated raw text), and the
annotation tools' exports: ``labelstudio`` (JSON / JSON_MIN), ``brat`` (``.ann`` + ``.txt``, or a directory),
``webanno`` (WebAnno / INCEpTION TSV 3.x) and ``prodigy`` (JSONL).
Every reader returns a :class:`parsner.data.records.ReadResult`; bad input raises
:class:`parsner.errors.InputError` naming the file and line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from parsner.data.readers.conll import FORMATS as CONLL_FORMATS
from parsner.data.readers.conll import MAX_LINE_CHARS, is_docstart, read_conll, read_text
from parsner.data.readers.spans import SPAN_FORMATS, read_doccano, read_jsonl
from parsner.data.records import ReadResult
from parsner.errors import ConfigError, InputError
from parsner.labels import load_label_map

__all__ = ["FORMATS", "detect_format", "read_conll", "read_doccano", "read_file", "read_jsonl"]

#: Formats of annotation tools' exports (modules of their own).
TOOL_FORMATS = ("labelstudio", "brat", "webanno", "prodigy")

#: Every format name ``read_file`` accepts.
FORMATS = (*CONLL_FORMATS, *SPAN_FORMATS, *TOOL_FORMATS)

#: Other names users know these formats by.
ALIASES = {
    "json": "jsonl",
    "label-studio": "labelstudio",
    "label_studio": "labelstudio",
    "ls": "labelstudio",
    "json-min": "labelstudio",
    "json_min": "labelstudio",
    "inception": "webanno",
    "webanno-tsv": "webanno",
    "tsv3": "webanno",
    "standoff": "brat",
}

#: Non-blank lines looked at when sniffing a token-per-line format.
_SNIFF_LINES = 50

_PIPE_TAG = re.compile(r"\|(?:O|[BIbi][-_][^\s|]+)$")


def _classify(line: str) -> str | None:
    if _PIPE_TAG.search(line):
        return "peyma"
    if "\t" in line:
        return "tsv"
    if len(line.split(None, 1)) == 2:
        return "conll"
    return None


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path``.

    ``.jsonl``/``.json`` files (or any file whose first non-blank line starts with ``{``) are ``jsonl``
    when the first record has ``entities`` and ``doccano`` when it has ``label``/``labels``. Otherwise the
    first non-blank lines are sniffed: a tag after a final ``|`` -> ``peyma``; a tab -> ``tsv``
    (ParsTwiNER's format); whitespace-separated columns -> ``conll`` (ARMAN's ``TOKEN TAG`` reads the same
    way). The most common verdict wins, so one bad line is left for the reader to report with its line number.
    """
    p = Path(path)
    if p.is_dir():
        if next(p.rglob("*.ann"), None) is None:
            raise InputError(path, None, "is a directory without brat .ann files; pass the annotated files")
        return "brat"
    if p.suffix.lower() == ".ann" or (p.suffix.lower() == ".txt" and p.with_suffix(".ann").is_file()):
        return "brat"
    text = read_text(path)
    lines = text.split("\n")
    if lines[0].startswith("#FORMAT=WebAnno TSV 3"):
        return "webanno"
    first = next(((i, ln) for i, ln in enumerate(lines, 1) if ln.strip()), None)
    if first is None:
        raise InputError(path, 1, f"no token lines: the file has {len(lines):,} line(s), all blank")
    lineno, line = first
    suffix = Path(path).suffix.lower()
    head = line.lstrip()
    if suffix in (".jsonl", ".json") or head.startswith("{"):
        if head.startswith("["):
            from parsner.data.readers.labelstudio import is_labelstudio, load_json_array

            if is_labelstudio(load_json_array(path)):
                return "labelstudio"
            raise InputError(
                path,
                lineno,
                "a JSON array: ParsNER reads JSONL, one JSON object per line (convert with `jq -c '.[]'`)",
            )
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            return "jsonl"  # the reader reports the JSON error with its line
        if isinstance(rec, dict) and "entities" not in rec and ("label" in rec or "labels" in rec):
            return "doccano"
        if isinstance(rec, dict) and "entities" not in rec and ("spans" in rec or "answer" in rec):
            return "prodigy"
        return "jsonl"
    verdicts: Counter[str] = Counter()
    seen = 0
    for i, ln in enumerate(lines, 1):
        if len(ln) > MAX_LINE_CHARS:
            raise InputError(
                path,
                i,
                f"line of {len(ln):,} characters (limit {MAX_LINE_CHARS:,}): not a token-per-line "
                "file; for raw text with spans use JSONL",
            )
        ln = ln.rstrip(" \t\r")
        if not ln or ln.isspace() or is_docstart(ln):
            continue
        verdict = _classify(ln)
        if verdict:
            verdicts[verdict] += 1
        seen += 1
        if seen >= _SNIFF_LINES:
            break
    if not verdicts:
        raise InputError(
            path,
            lineno,
            "cannot detect the format: expected TOKEN|TAG, TOKEN<TAB>TAG, TOKEN TAG or JSONL "
            f"lines, found {line[:80]!r}; pass --format",
        )
    priority = {"peyma": 0, "tsv": 1, "conll": 2}
    return max(verdicts, key=lambda v: (verdicts[v], -priority[v]))


def read_file(
    path: str | Path,
    format: str | None = None,
    strict: bool = False,
    label_map: Mapping[str, str] | str | Path | None = None,
    **options: object,
) -> ReadResult:
    """Read one annotated file (a brat directory counts as one); ``format`` overrides detection.

    ``label_map`` may be a mapping, a preset name or a file. ``options`` (``sep``, ``token_col``,
    ``tag_col``) go to :func:`read_conll` for ``format="conll"``; ``annotator`` (an id, ``first`` or
    ``last``) chooses among several annotations of a Label Studio task and is ignored by other formats;
    ``layer`` names the WebAnno/INCEpTION span layer holding the entities.
    """
    lmap = label_map if label_map is None or isinstance(label_map, Mapping) else load_label_map(label_map)
    fmt = (format or detect_format(path)).lower()
    fmt = ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    annotator = options.pop("annotator", None)
    layer = options.pop("layer", None)
    if fmt in (*SPAN_FORMATS, *TOOL_FORMATS) and options:
        raise ConfigError(f"options {', '.join(options)} do not apply to the {fmt} format")
    if fmt in SPAN_FORMATS:
        reader = read_jsonl if fmt == "jsonl" else read_doccano
        return reader(path, strict=strict, label_map=lmap)
    if fmt == "labelstudio":
        from parsner.data.readers.labelstudio import read_labelstudio

        return read_labelstudio(path, strict=strict, label_map=lmap, annotator=annotator)  # type: ignore[arg-type]
    if fmt == "brat":
        from parsner.data.readers.brat import read_brat

        return read_brat(path, strict=strict, label_map=lmap)
    if fmt == "webanno":
        from parsner.data.readers.webanno import read_webanno

        return read_webanno(path, strict=strict, label_map=lmap, layer=layer)  # type: ignore[arg-type]
    if fmt == "prodigy":
        from parsner.data.readers.prodigy import read_prodigy

        return read_prodigy(path, strict=strict, label_map=lmap)
    return read_conll(path, fmt, strict=strict, label_map=lmap, **options)  # type: ignore[arg-type]
