#!/usr/bin/env python3
"""Build ``sample.jsonl`` from the human-editable markup in ``articles.txt`` (stdlib only).

Markup (see ``data/README.md``):

* Articles are separated by a line that is exactly ``---``.
* Lines whose first character is ``#`` are comments and are skipped everywhere.
* The first non-blank line of an article is ``id: <article-id>`` (lower-case letters, digits, ``-``).
* The remaining lines are the article text: the headline, then one paragraph per line. They are joined with
  ``\\n``; blank lines before and after the text are dropped and trailing whitespace on each line is removed.
* An entity is written inline as ``[surface text](TYPE)`` with TYPE one of PER LOC ORG DAT TIM MON PCT.
  Entities do not nest and do not cross lines. Any other ``[`` or ``]`` is an error, so a typo in the
  markup cannot silently become text.

Output: one JSON object per article, ``{"id", "text", "entities": [{"start", "end", "label"}]}``, with
``text[start:end]`` equal to the entity's surface text. Written atomically, UTF-8, LF.

Usage::

    python data/sample/build_sample.py            # (re)write sample.jsonl
    python data/sample/build_sample.py --check    # exit 1 if sample.jsonl is out of date
    python data/sample/build_sample.py --stats    # print the counts table used in data/README.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARTICLES = HERE / "articles.txt"
SAMPLE = HERE / "sample.jsonl"
SPLITS = HERE / "splits.json"

TYPES = ("PER", "LOC", "ORG", "DAT", "TIM", "MON", "PCT")
SPLIT_NAMES = ("train", "validation", "test")

_ENTITY_RE = re.compile(r"\[([^\[\]\n]*)\]\(([A-Za-z]+)\)")
_ID_RE = re.compile(r"^id:\s*(\S.*?)\s*$")
_ID_VALUE_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# A sentence ends at a newline or after . ! ? ؟ (plus closing quotes/brackets) followed by whitespace/end.
_SENT_END_RE = re.compile(r"[.!?؟]+[»\")\]]*(?=\s|$)")


class MarkupError(ValueError):
    """A problem in the markup file, located by file and 1-based line."""

    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}")


def _parse_line(line: str, path: str | Path, lineno: int, base: int) -> tuple[str, list[dict]]:
    """Strip the markup from one text line; entity offsets are shifted by ``base``."""
    out: list[str] = []
    entities: list[dict] = []
    pos = 0
    length = 0
    for m in _ENTITY_RE.finditer(line):
        plain = line[pos : m.start()]
        _reject_stray_brackets(plain, path, lineno)
        out.append(plain)
        length += len(plain)
        surface, label = m.group(1), m.group(2)
        if label not in TYPES:
            raise MarkupError(path, lineno, f"unknown entity type {label!r} in {m.group(0)!r} "
                                            f"(expected one of {' '.join(TYPES)})")
        if not surface.strip():
            raise MarkupError(path, lineno, f"empty entity {m.group(0)!r}")
        if surface != surface.strip():
            raise MarkupError(path, lineno, f"entity {m.group(0)!r} starts or ends with whitespace")
        entities.append({"start": base + length, "end": base + length + len(surface), "label": label})
        out.append(surface)
        length += len(surface)
        pos = m.end()
    rest = line[pos:]
    _reject_stray_brackets(rest, path, lineno)
    out.append(rest)
    return "".join(out), entities


def _reject_stray_brackets(plain: str, path: str | Path, lineno: int) -> None:
    for ch in "[]":
        i = plain.find(ch)
        if i >= 0:
            snippet = plain[max(0, i - 15) : i + 15]
            raise MarkupError(path, lineno, f"stray {ch!r} outside entity markup near {snippet!r} "
                                            "(write entities as [text](TYPE); nesting is not allowed)")


def _finish_block(lines: list[tuple[int, str]], path: str | Path, seen: dict[str, int]) -> dict | None:
    content = [(n, s) for n, s in lines if s.strip()]
    if not content:
        return None
    first_no, first = content[0]
    m = _ID_RE.match(first)
    if not m:
        raise MarkupError(path, first_no,
                          f"an article must start with 'id: <article-id>', found {first[:40]!r}")
    art_id = m.group(1)
    if not _ID_VALUE_RE.match(art_id):
        raise MarkupError(path, first_no,
                          f"bad article id {art_id!r} (use lower-case letters, digits and '-')")
    if art_id in seen:
        raise MarkupError(path, first_no, f"duplicate article id {art_id!r} (first at line {seen[art_id]})")
    seen[art_id] = first_no
    body = lines[lines.index((first_no, first)) + 1 :]
    while body and not body[0][1].strip():
        body.pop(0)
    while body and not body[-1][1].strip():
        body.pop()
    if not body:
        raise MarkupError(path, first_no, f"article {art_id!r} has no text")
    parts: list[str] = []
    entities: list[dict] = []
    base = 0
    for lineno, raw in body:
        plain, ents = _parse_line(raw, path, lineno, base)
        parts.append(plain)
        entities.extend(ents)
        base += len(plain) + 1  # the "\n" that joins lines
    return {"id": art_id, "text": "\n".join(parts), "entities": entities}


def parse_articles(markup: str, path: str | Path = "articles.txt") -> list[dict]:
    """Parse the whole markup text into span records (in file order)."""
    if markup.startswith("\ufeff"):
        raise MarkupError(path, 1, "the file starts with a BOM; save it as UTF-8 without BOM")
    records: list[dict] = []
    seen: dict[str, int] = {}
    block: list[tuple[int, str]] = []
    for lineno, raw in enumerate(markup.split("\n"), start=1):
        line = raw.rstrip()
        if "\r" in raw:
            raise MarkupError(path, lineno, "CR line ending; use LF")
        if line.startswith("#"):
            continue
        if line == "---":
            rec = _finish_block(block, path, seen)
            if rec is not None:
                records.append(rec)
            block = []
            continue
        block.append((lineno, line))
    rec = _finish_block(block, path, seen)
    if rec is not None:
        records.append(rec)
    if not records:
        raise MarkupError(path, 1, "no articles found")
    return records


def load_articles(path: str | Path = ARTICLES) -> list[dict]:
    return parse_articles(Path(path).read_text(encoding="utf-8"), path)


def to_jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_jsonl(records: list[dict], out: str | Path = SAMPLE) -> None:
    out = Path(out)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(to_jsonl(records))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def sentence_count(text: str) -> int:
    """Sentences by a simple rule: a newline, or . ! ? ؟ (with closing quotes) before whitespace/end."""
    n = 0
    for line in text.split("\n"):
        pieces = [p for p in _SENT_END_RE.split(line) if p.strip()]
        n += len(pieces)
    return n


def load_splits(path: str | Path = SPLITS) -> dict[str, list[str]]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def stats(records: list[dict], splits: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Articles, sentences, entity counts per type, per split and in total."""
    by_id = {r["id"]: r for r in records}
    result: dict[str, dict[str, int]] = {}
    for name in (*SPLIT_NAMES, "total"):
        ids = [r["id"] for r in records] if name == "total" else splits.get(name, [])
        row: Counter = Counter()
        for art_id in ids:
            rec = by_id[art_id]
            row["articles"] += 1
            row["sentences"] += sentence_count(rec["text"])
            row["characters"] += len(rec["text"])
            for e in rec["entities"]:
                row[e["label"]] += 1
                row["entities"] += 1
        result[name] = {k: row[k] for k in ("articles", "sentences", "characters", *TYPES, "entities")}
    return result


def stats_table(records: list[dict], splits: dict[str, list[str]]) -> str:
    """The Markdown counts table of data/README.md."""
    st = stats(records, splits)
    cols = ("articles", "sentences", *TYPES, "entities")
    lines = ["| split | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in st.items():
        lines.append(f"| {name} | " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", default=str(ARTICLES), help="markup file (default: %(default)s)")
    ap.add_argument("--out", default=str(SAMPLE), help="JSONL output (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if --out is out of date")
    ap.add_argument("--stats", action="store_true", help="print the per-split counts table")
    args = ap.parse_args(argv)
    try:
        records = load_articles(args.articles)
    except MarkupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.stats:
        print(stats_table(records, load_splits()))
        return 0
    if args.check:
        current = Path(args.out).read_text(encoding="utf-8") if Path(args.out).exists() else None
        if current != to_jsonl(records):
            print(f"{args.out} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(records)} articles)")
        return 0
    write_jsonl(records, args.out)
    n_ent = sum(len(r["entities"]) for r in records)
    print(f"wrote {args.out}: {len(records)} articles, {n_ent} entities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
