"""Output formats: RTL HTML page (self-contained, escaped), inline text markup, CoNLL, JSON(L) streaming."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from parsner.data.wordtok import Word, tokenize_words
from parsner.serving.render import OutputWriter, colour_for, render_conll, render_html, render_text

TEXT = "علی‌رضا محمدی در تهران گفت: شرکت <b>Apple</b> & «ایرنا» ۱۲۳ درصد."


def ent(text: str, surface: str, label: str, after: int = 0, score: float = 0.9) -> dict:
    start = text.index(surface, after)
    return {"text": surface, "label": label, "start": start, "end": start + len(surface), "score": score}


ENTS = [ent(TEXT, "علی‌رضا محمدی", "PER"), ent(TEXT, "تهران", "LOC"), ent(TEXT, "<b>Apple</b>", "ORG"),
        ent(TEXT, "ایرنا", "O<RG")]


class _Collector(HTMLParser):
    """Rebuilds the visible text of each article (without the entity label badges) and the marks."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.texts: list[str] = []
        self.marks: list[tuple[str, str]] = []  # (label attr, marked text)
        self.external: list[str] = []
        self.html_attrs: dict = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "html":
            self.html_attrs = a
        for key in ("src", "href"):
            if key in a:
                self.external.append(a[key])
        if tag == "div" and a.get("class") == "text":
            self.texts.append("")
        if tag == "mark":
            self.marks.append((a.get("data-label", ""), ""))
        if tag not in ("meta", "br"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        classes = [a.get("class") for _, a in self.stack]
        if "text" not in classes or "lbl" in classes:
            return
        self.texts[-1] += data
        if any(t == "mark" for t, _ in self.stack):
            label, so_far = self.marks[-1]
            self.marks[-1] = (label, so_far + data)


def test_html_is_rtl_self_contained_and_escaped() -> None:
    page = render_html([("doc <1>", TEXT, ENTS)], title="t<i>tle")
    assert page.startswith("<!DOCTYPE html>")
    p = _Collector()
    p.feed(page)
    assert p.html_attrs == {"lang": "fa", "dir": "rtl"}
    assert p.external == []
    low = page.lower()
    for needle in ("http:", "https:", "url(", "@import", "<link", "<script", "<img"):
        assert needle not in low, needle
    assert "Vazirmatn" in page and "Tahoma" in page
    # Visible text is exactly the original text; the marks are exactly the entities, with their labels.
    assert p.texts == [TEXT]
    assert p.marks == [(e["label"], e["text"]) for e in ENTS]
    assert "<b>Apple</b>" not in page and "&lt;b&gt;Apple&lt;/b&gt;" in page
    assert "doc &lt;1&gt;" in page and "t&lt;i&gt;tle" in page


def test_html_legend_and_colours() -> None:
    page = render_html([("a", TEXT, ENTS)], labels=["LOC", "ORG", "PER", "DAT"])
    legend = page[page.index('class="legend"') : page.index("</header>")]
    assert [m for m in re.findall(r"<b>([^<]+)</b>", legend)] == ["LOC", "ORG", "PER", "DAT"]
    assert colour_for("PER") != colour_for("LOC")
    assert f"background:{colour_for('LOC')}" in page
    assert colour_for("SOMETHING") == colour_for("SOMETHING")  # stable fallback colour
    # Without explicit labels the legend lists the types found.
    found = render_html([("a", TEXT, ENTS)])
    legend = found[found.index('class="legend"') : found.index("</header>")]
    assert sorted(re.findall(r"<b>([^<]+)</b>", legend)) == sorted({"PER", "LOC", "ORG", "O&lt;RG"})


def test_text_markup_round_trips() -> None:
    out = render_text(TEXT, ENTS)
    assert "[علی‌رضا محمدی](PER)" in out and "[تهران](LOC)" in out
    stripped = out
    for e in ENTS:
        stripped = stripped.replace(f"[{e['text']}]({e['label']})", e["text"], 1)
    assert stripped == TEXT
    assert render_text(TEXT, []) == TEXT
    assert render_text("", []) == ""


@pytest.mark.parametrize(
    "bad",
    [
        [{"text": "x", "label": "PER", "start": 5, "end": 3, "score": 1.0}],
        [{"text": "x", "label": "PER", "start": 0, "end": len(TEXT) + 1, "score": 1.0}],
        [{"text": "x", "label": "PER", "start": 0, "end": 5, "score": 1.0},
         {"text": "x", "label": "LOC", "start": 4, "end": 8, "score": 1.0}],
    ],
)
def test_bad_spans_are_refused(bad: list[dict]) -> None:
    with pytest.raises(ValueError):
        render_text(TEXT, bad)
    with pytest.raises(ValueError):
        render_html([("a", TEXT, bad)])


def test_conll_one_word_per_line() -> None:
    words = [Word("علی", 0, 3), Word("آمد", 4, 7), Word(".", 7, 8), Word("تهران", 9, 14)]
    out = render_conll(words, ["B-PER", "O", "O", "B-LOC"], [(0, 3), (3, 4)])
    assert out == "علی\tB-PER\nآمد\tO\n.\tO\n\nتهران\tB-LOC\n\n"
    assert render_conll([], [], []) == ""
    with pytest.raises(ValueError):
        render_conll(words, ["O"], [(0, 4)])


@dataclass
class _Doc:
    text: str
    entities: list[dict]
    words: list = field(default_factory=list)
    tags: list = field(default_factory=list)
    sentence_word_ranges: list = field(default_factory=list)


def _doc(text: str, entities: list[dict]) -> _Doc:
    words = tokenize_words(text)
    tags = ["O"] * len(words)
    return _Doc(text, entities, words, tags, [(0, len(words))] if words else [])


@pytest.mark.parametrize("fmt", ["json", "jsonl", "conll", "html", "text"])
def test_writers_stream_each_document(fmt: str) -> None:
    out = io.StringIO()
    w = OutputWriter(fmt, out, labels=["LOC", "ORG", "PER"])
    w.begin()
    w.write("first", _doc(TEXT, ENTS))
    after_first = out.getvalue()
    assert "تهران" in after_first  # written before the next document arrives
    w.write("second", _doc("", []))
    w.end()
    full = out.getvalue()
    assert full.startswith(after_first)
    if fmt == "jsonl":
        recs = [json.loads(line) for line in full.splitlines()]
        assert [r["id"] for r in recs] == ["first", "second"]
        assert recs[0]["text"] == TEXT and recs[1]["entities"] == []
        assert [(e["start"], e["end"], e["label"]) for e in recs[0]["entities"]] == [
            (e["start"], e["end"], e["label"]) for e in ENTS
        ]
    elif fmt == "json":
        recs = json.loads(full)
        assert [r["id"] for r in recs] == ["first", "second"]
        assert all(TEXT[e["start"] : e["end"]] == e["text"] for e in recs[0]["entities"])
    elif fmt == "conll":
        assert full.count("-DOCSTART-") == 2
        assert len([ln for ln in full.splitlines() if ln and not ln.startswith("-DOCSTART-")]) == len(
            tokenize_words(TEXT)
        )
    elif fmt == "html":
        assert full.rstrip().endswith("</html>") and full.count("<article>") == 2
    elif fmt == "text":
        assert full.splitlines()[0] == render_text(TEXT, ENTS)


def test_unknown_format() -> None:
    with pytest.raises(ValueError):
        OutputWriter("xml", io.StringIO())
