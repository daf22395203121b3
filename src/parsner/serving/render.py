"""Output formats for tagged text: a self-contained RTL HTML page, inline text markup, CoNLL and JSON.

Everything here is pure Python (no torch) and works on plain data: the original text plus entity dicts
(:class:`parsner.inference.tagger.Entity`: ``{"text", "label", "start", "end", "score"}``) whose offsets index that
text, and, for CoNLL, the words with their tags. Each writer is streaming: ``begin`` / ``write(doc)`` / ``end`` on an
open text stream, so the ``predict`` command can print results as they are produced.
"""

from __future__ import annotations

import html
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:  # the type only: importing the tagger here would load more than the writers need
    from parsner.inference.tagger import Entity

FORMATS = ("json", "jsonl", "conll", "html", "text")

#: Background colours for the common Persian NER types (light enough for dark text).
TYPE_COLOURS: dict[str, str] = {
    "PER": "#aa9cfc",
    "LOC": "#ff9561",
    "ORG": "#7aecec",
    "DAT": "#bfe1d9",
    "TIM": "#bfeeb7",
    "MON": "#e4e7d2",
    "PCT": "#feca74",
    "FAC": "#9cc9cc",
    "PRO": "#f0d0ff",
    "EVE": "#ffeb80",
    "POG": "#c887fb",
    "NAT": "#e5c1a1",
}
_FALLBACK_COLOURS = ("#ddd6fe", "#fde68a", "#bbf7d0", "#fecaca", "#bae6fd", "#fbcfe8", "#d9f99d", "#e5e7eb")

#: Fonts that cover Persian well, most specific first; all are local (no web fonts are fetched).
FONT_STACK = (
    'Vazirmatn, Vazir, "Noto Naskh Arabic", "Noto Sans Arabic", Sahel, Tahoma, "DejaVu Sans", sans-serif'
)


class WordLike(Protocol):
    text: str
    start: int
    end: int


class TaggedDocLike(Protocol):
    """What the writers need from a tagged document (``parsner.inference.tagger.TaggedDoc`` satisfies it)."""

    text: str
    entities: list[Entity]
    words: Sequence[WordLike]
    tags: Sequence[str]
    sentence_word_ranges: Sequence[tuple[int, int]]


def colour_for(label: str) -> str:
    if label in TYPE_COLOURS:
        return TYPE_COLOURS[label]
    return _FALLBACK_COLOURS[zlib.crc32(label.encode("utf-8")) % len(_FALLBACK_COLOURS)]


def _check_entities(text: str, entities: Sequence[Entity]) -> list[Entity]:
    """Entities sorted by offset; refuse overlapping or out-of-range spans instead of garbling output."""
    ordered = sorted(entities, key=lambda e: (e["start"], e["end"]))
    prev_end = 0
    for ent in ordered:
        start, end = ent["start"], ent["end"]
        if not (0 <= start < end <= len(text)):
            raise ValueError(f"entity {ent!r} lies outside the text (length {len(text)})")
        if start < prev_end:
            raise ValueError(f"entity {ent!r} overlaps the previous one")
        prev_end = end
    return ordered


# ---------------------------------------------------------------- entity dicts / JSON


def entity_record(ent: Entity | Mapping[str, Any], digits: int = 4) -> Entity:
    """A JSON-ready copy of an entity (score rounded)."""
    return {
        "text": ent["text"],
        "label": ent["label"],
        "start": int(ent["start"]),
        "end": int(ent["end"]),
        "score": round(float(ent["score"]), digits),
    }


def doc_record(doc_id: str, text: str, entities: Sequence[Entity]) -> dict[str, Any]:
    return {"id": doc_id, "text": text, "entities": [entity_record(e) for e in entities]}


# ---------------------------------------------------------------- inline text markup


def render_text(text: str, entities: Sequence[Entity]) -> str:
    """``[تهران](LOC) پایتخت ایران است`` — each entity wrapped as ``[text](LABEL)``, the rest unchanged."""
    out: list[str] = []
    pos = 0
    for ent in _check_entities(text, entities):
        out.append(text[pos : ent["start"]])
        out.append(f"[{text[ent['start'] : ent['end']]}]({ent['label']})")
        pos = ent["end"]
    out.append(text[pos:])
    return "".join(out)


# ---------------------------------------------------------------- CoNLL


def render_conll(
    words: Sequence[WordLike],
    tags: Sequence[str],
    sentence_word_ranges: Sequence[tuple[int, int]],
    sep: str = "\t",
) -> str:
    """One ``word<sep>tag`` line per word, a blank line after each sentence."""
    from parsner.data.writers import conll_sentence

    if len(words) != len(tags):
        raise ValueError(f"{len(words)} words but {len(tags)} tags")
    return "".join(conll_sentence([[w.text for w in words[s:e]], list(tags[s:e])], sep)
                   for s, e in sentence_word_ranges)


# ---------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
body { font-family: %(font)s; margin: 0; padding: 1.5rem 2rem; background: #fafafa; color: #1f2328;
       line-height: 2.6; font-size: 18px; }
header { border-bottom: 1px solid #d0d7de; margin-bottom: 1rem; padding-bottom: .5rem; }
h1 { font-size: 1.2rem; margin: 0 0 .3rem 0; line-height: 1.6; }
.legend { display: flex; flex-wrap: wrap; gap: .4rem; line-height: 1.6; font-size: .85rem; }
.legend .key { padding: .1rem .6rem; border-radius: .35rem; border: 1px solid rgba(0,0,0,.12); }
.legend .key b { direction: ltr; unicode-bidi: isolate; font-family: sans-serif; font-size: .75rem; }
.legend .count { opacity: .7; }
article { background: #fff; border: 1px solid #d0d7de; border-radius: .5rem; padding: .4rem 1.2rem;
          margin-bottom: 1rem; }
article h2 { font-size: .8rem; font-weight: normal; color: #57606a; margin: 0; direction: ltr;
             text-align: right; unicode-bidi: isolate; line-height: 1.8; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
mark.ent { padding: .2em .4em; margin: 0 .1em; border-radius: .35em; color: inherit;
           box-decoration-break: clone; -webkit-box-decoration-break: clone; }
mark.ent .lbl { font-family: sans-serif; font-size: .6em; font-weight: bold; text-transform: uppercase;
                margin-inline-start: .45em; vertical-align: middle; unicode-bidi: isolate;
                opacity: .85; }
.empty { color: #57606a; font-style: italic; }
"""


def _legend(labels: Iterable[str], counts: Mapping[str, int] | None = None) -> str:
    keys = []
    for label in labels:
        n = f' <span class="count">{counts.get(label, 0)}</span>' if counts is not None else ""
        keys.append(
            f'<span class="key" style="background:{colour_for(label)}"><b>{html.escape(label)}</b>{n}</span>'
        )
    return '<div class="legend" aria-label="entity types">' + "".join(keys) + "</div>"


def html_head(title: str, labels: Sequence[str]) -> str:
    """The start of the page: ``<head>`` with inline CSS and the legend of entity types."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="fa" dir="rtl">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{_CSS % {'font': FONT_STACK}}</style>\n</head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1>{_legend(labels)}</header>\n"
    )


def html_doc(doc_id: str, text: str, entities: Sequence[Entity]) -> str:
    """One ``<article>``: the text with each entity in a ``<mark>`` coloured by its type."""
    parts: list[str] = []
    pos = 0
    for ent in _check_entities(text, entities):
        label = str(ent["label"])
        parts.append(html.escape(text[pos : ent["start"]]))
        title = f"{label} {float(ent['score']):.2f}"
        parts.append(
            f'<mark class="ent" data-label="{html.escape(label)}" style="background:{colour_for(label)}"'
            f' title="{html.escape(title)}">{html.escape(text[ent["start"] : ent["end"]])}'
            f'<span class="lbl">{html.escape(label)}</span></mark>'
        )
        pos = ent["end"]
    parts.append(html.escape(text[pos:]))
    body = "".join(parts) if text.strip() else '<span class="empty">(empty)</span>'
    heading = f"<h2>{html.escape(doc_id)}</h2>" if doc_id else ""
    return f'<article>{heading}<div class="text">{body}</div></article>\n'


def html_tail() -> str:
    return "</body>\n</html>\n"


def render_html(
    docs: Iterable[tuple[str, str, Sequence[Entity]]],
    labels: Sequence[str] | None = None,
    title: str = "ParsNER",
) -> str:
    """A whole page for ``(doc_id, text, entities)`` triples; ``labels`` fixes the legend (default: found)."""
    docs = list(docs)
    if labels is None:
        labels = sorted({str(e["label"]) for _, _, ents in docs for e in ents})
    return html_head(title, labels) + "".join(html_doc(i, t, e) for i, t, e in docs) + html_tail()


# ---------------------------------------------------------------- streaming writers


class OutputWriter:
    """Streams documents in one format to ``out``: ``begin()``, ``write(doc_id, doc)`` per doc, ``end()``."""

    def __init__(self, fmt: str, out: TextIO, *, labels: Sequence[str] = (), title: str = "ParsNER") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.fmt, self.out, self.labels, self.title = fmt, out, list(labels), title
        self.count = 0

    def begin(self) -> None:
        if self.fmt == "html":
            self.out.write(html_head(self.title, self.labels))
        elif self.fmt == "json":
            self.out.write("[")

    def write(self, doc_id: str, doc: TaggedDocLike) -> None:
        f = self.fmt
        if f == "jsonl":
            self.out.write(json.dumps(doc_record(doc_id, doc.text, doc.entities), ensure_ascii=False) + "\n")
        elif f == "json":
            sep = "\n" if self.count == 0 else ",\n"
            rec = json.dumps(doc_record(doc_id, doc.text, doc.entities), ensure_ascii=False, indent=2)
            self.out.write(sep + rec)
        elif f == "html":
            self.out.write(html_doc(doc_id, doc.text, doc.entities))
        elif f == "text":
            self.out.write(render_text(doc.text, doc.entities).rstrip("\n") + "\n")
        elif f == "conll":
            # CoNLL-2003 document separator, so several inputs stay distinguishable.
            self.out.write("-DOCSTART-\tO\n\n")
            self.out.write(render_conll(doc.words, doc.tags, doc.sentence_word_ranges))
        self.count += 1
        self.out.flush()

    def end(self) -> None:
        if self.fmt == "html":
            self.out.write(html_tail())
        elif self.fmt == "json":
            self.out.write("\n]\n")
        self.out.flush()
