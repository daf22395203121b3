"""Writers and readers round-trip (read ∘ write = identity), checked with hypothesis on Persian text."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsner.data.readers import detect_format, read_file, read_jsonl
from parsner.data.records import Sentence
from parsner.data.wordtok import tokenize_words
from parsner.data.writers import SEPARATORS, write_conll, write_jsonl
from parsner.errors import ConfigError, InputError
from parsner.labels import repair_iob2, spans_from_tags

ZWNJ = "\u200c"
PERSIAN = "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهیآأؤئءة"
ARABIC = "يكىۀ"  # Arabic yeh/kaf and friends, as in ARMAN
DIGITS = "۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩0123456789"
DIACRITICS = "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652\u0654\u0670"
PUNCT = "«»،؛؟!.:-()%٪/"
LATIN = "abcXYZ"

WORD_CHARS = PERSIAN + ARABIC + DIGITS + DIACRITICS + PUNCT + LATIN + ZWNJ

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def plain_tokens(extra: str = "") -> st.SearchStrategy[str]:
    """Tokens a writer with the given extra characters must carry; never blank, never a document marker."""
    return st.text(alphabet=WORD_CHARS + extra, min_size=1, max_size=8).filter(
        lambda t: bool(t.strip()) and not t.startswith("-DOCSTART-")
    )


TYPES = st.sampled_from(["PER", "LOC", "ORG", "DAT", "MON", "PCT", "TIM"])


@st.composite
def sentences(draw: st.DrawFn, token_strategy: st.SearchStrategy[str]) -> list[tuple[list[str], list[str]]]:
    out = []
    for _ in range(draw(st.integers(1, 5))):
        n = draw(st.integers(1, 8))
        tokens = draw(st.lists(token_strategy, min_size=n, max_size=n))
        raw = draw(
            st.lists(
                st.one_of(st.just("O"), TYPES.map(lambda t: "B-" + t), TYPES.map(lambda t: "I-" + t)),
                min_size=n,
                max_size=n,
            )
        )
        tags, _ = repair_iob2(raw)  # sentences as readers produce them: valid IOB2
        out.append((tokens, tags))
    return out


# Tokens each separator must carry: spaces need tab or pipe; the pipe format carries "|" and tabs too.
TOKENS_FOR_SEP = {
    " ": plain_tokens(),
    "\t": plain_tokens(" |"),
    "|": plain_tokens(" |\t"),
}


@pytest.mark.parametrize("sep", list(SEPARATORS))
def test_conll_roundtrip(sep: str) -> None:
    @SETTINGS
    @given(sentences(TOKENS_FOR_SEP[sep]), st.booleans())
    def check(data: list[tuple[list[str], list[str]]], docstart: bool) -> None:
        sents = [Sentence(t, g, "mem", 1, doc_id=f"d{i // 2}") for i, (t, g) in enumerate(data)]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "out.txt"
            assert write_conll(sents, path, sep=sep, docstart=docstart) == len(sents)
            fmt = SEPARATORS[sep]
            for result in (read_file(path, format=fmt), read_file(path)):
                assert [(s.tokens, s.tags) for s in result.sentences] == data
                assert result.repaired == 0
                if docstart:  # document grouping survives
                    got = [s.doc_id for s in result.sentences]
                    want = [s.doc_id for s in sents]
                    assert [got.index(d) for d in got] == [want.index(d) for d in want]
            assert detect_format(path) == fmt

    check()


def test_conll_writer_refuses_what_cannot_roundtrip(tmp_path: Path) -> None:
    s = Sentence(["می شود", "کرد"], ["O", "O"], "in.txt", 40)
    out = tmp_path / "out.txt"
    with pytest.raises(InputError, match=r"in\.txt:40: .*whitespace"):
        write_conll([s], out, sep=" ")
    assert not out.exists()  # no partial output
    write_conll([s], out, sep="\t")
    assert read_file(out).sentences[0].tokens == ["می شود", "کرد"]
    with pytest.raises(InputError, match="tab"):
        write_conll([Sentence(["a\tb"], ["O"], "in.txt", 3)], tmp_path / "o2.txt", sep="\t")
    with pytest.raises(InputError, match="DOCSTART"):
        write_conll([Sentence(["-DOCSTART-"], ["O"], "in.txt", 3)], tmp_path / "o3.txt", sep="|")
    with pytest.raises(InputError, match="canonical IOB2"):
        write_conll([Sentence(["x"], ["B_PER"], "in.txt", 3)], tmp_path / "o4.txt", sep="|")
    with pytest.raises(ConfigError):
        write_conll([s], tmp_path / "o5.txt", sep=",")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


# ----------------------------------------------------------------------------------------- JSONL


PIECES = st.one_of(
    st.text(alphabet=PERSIAN + ARABIC + DIACRITICS + DIGITS + LATIN, min_size=1, max_size=7),
    st.sampled_from([" ", "  ", ZWNJ, "\n", ". ", "؟ ", "، ", "«", "» ", "۱۲٬۵۰۰", "3.5", " - ", "\u200f"]),
)


@st.composite
def documents(draw: st.DrawFn) -> dict:
    """A document with random text and random (possibly misaligned, possibly sentence-crossing) spans."""
    text = "".join(draw(st.lists(PIECES, min_size=1, max_size=25)))
    words = tokenize_words(text)
    entities = []
    i = 0
    while words and i < len(words):
        i += draw(st.integers(0, 3))
        if i >= len(words):
            break
        j = min(len(words) - 1, i + draw(st.integers(0, 3)))
        start, end = words[i].start, words[j].end
        if draw(st.booleans()) and end - start > 1:  # cut into the words: the reader must extend it
            cut = draw(st.integers(1, end - start - 1))
            start, end = (start + cut, end) if draw(st.booleans()) else (start, end - cut)
        entities.append({"start": start, "end": end, "label": draw(TYPES)})
        i = j + 1
    return {"text": text, "entities": entities}


@SETTINGS
@given(st.lists(documents(), min_size=1, max_size=3))
def test_jsonl_roundtrip(docs: list[dict]) -> None:
    docs = [d for d in docs if tokenize_words(d["text"])]  # a text without words is an error (tested apart)
    if not docs:
        return
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        src.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
        first = read_jsonl(src)
        # offsets are true to the original text
        for s in first.sentences:
            text = first.texts[s.doc_id]
            assert [text[a:b] for a, b in s.offsets] == s.tokens
        for k, d in enumerate(docs, 1):
            doc_id = f"in#{k}"
            assert first.texts[doc_id] == d["text"]
            found = [
                (s.offsets[i][0], s.offsets[j - 1][1], t)
                for s in first.sentences
                if s.doc_id == doc_id
                for i, j, t in spans_from_tags(s.tags)
            ]
            assert len(found) == len(d["entities"])
            words = tokenize_words(d["text"])
            for e, (a, b, t) in zip(d["entities"], found, strict=True):
                # the entity is exactly the words the span touches (extended inside words, trimmed at spaces)
                touched = [w for w in words if w.start < e["end"] and w.end > e["start"]]
                assert (a, b, t) == (touched[0].start, touched[-1].end, e["label"])
        out = Path(tmp) / "out.jsonl"
        assert write_jsonl(first, out) == len(docs)
        second = read_jsonl(out)
        assert second.texts == first.texts
        key = [(s.doc_id, s.tokens, s.tags, s.offsets) for s in first.sentences]
        assert [(s.doc_id, s.tokens, s.tags, s.offsets) for s in second.sentences] == key
        assert not any("word boundaries" in n for n in second.notes)  # written spans are word-aligned
        assert detect_format(out) == "jsonl"


def test_jsonl_from_conll_sentences(tmp_path: Path) -> None:
    """CoNLL data (no offsets) becomes span records whose entities cover exactly the entity tokens."""
    sents = [
        Sentence(["وزارت", "امور خارجه", "ایران"], ["B-ORG", "I-ORG", "I-ORG"], "p.txt", 1, "p#0"),
        Sentence(["دیروز", "۵۰", "درصد"], ["B-DAT", "B-PCT", "I-PCT"], "p.txt", 5, "p#0"),
        Sentence(["تمام"], ["O"], "p.txt", 9, "p#1"),
    ]
    out = tmp_path / "o.jsonl"
    assert write_jsonl(sents, out) == 2
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in recs] == ["p#0", "p#1"]
    t = recs[0]["text"]
    assert [t[e["start"] : e["end"]] for e in recs[0]["entities"]] == [
        "وزارت امور خارجه ایران",
        "دیروز",
        "۵۰ درصد",
    ]
    assert [e["label"] for e in recs[0]["entities"]] == ["ORG", "DAT", "PCT"]
    back = read_jsonl(out)
    assert [s.tags for s in back.sentences if s.doc_id == "p#0"][1] == ["B-DAT", "B-PCT", "I-PCT"]


def test_jsonl_writer_checks_texts(tmp_path: Path) -> None:
    s = Sentence(["تهران"], ["B-LOC"], "x.jsonl", 4, "d", [(0, 5)])
    with pytest.raises(InputError, match=r"x\.jsonl:4: .*not the text"):
        write_jsonl([s], tmp_path / "o.jsonl", texts={"d": "شیراز"})
    assert not (tmp_path / "o.jsonl").exists()
    write_jsonl([s], tmp_path / "o.jsonl")  # without texts: rebuilt from tokens and offsets
    assert read_jsonl(tmp_path / "o.jsonl").texts == {"d": "تهران"}
