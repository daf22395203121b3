"""Tagger: entities with offsets into the ORIGINAL text, windows, batching, edge inputs, predict_words.

The model is a tiny random BERT (fixed seed) saved like a training run, so predictions are arbitrary but
deterministic: plenty of entities of every type, which is what offset and consistency checks need.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.tagger import LABELS, TRAIN_TEXT, check_entities
from parsner.data.wordtok import tokenize_words
from parsner.inference.tagger import DEFAULT_MAX_BATCH_TOKENS

NASTY_TEXTS = [
    # Arabic yeh/kaf, diacritics, ZWNJ, Arabic-Indic + Persian + ASCII digits, tatweel, double spaces
    "عليرضا  كريمي در دانشگاهِ تهران گفت: کتاب‌ها ۱۲۳ و ١٢٣ و 123 نسخه‌اند.  سازمان  ملل   متحد",
    "مُحَمَّد\u200cرضا در \u200cتهران\u200c و کــــتاب\tو\nمشهد\r\nگفت…  «ایران» (عراق) ۳٫۵٪",
    "Apple و Microsoft در New York؛ علی‌رضا 😀👍🏽 🇮🇷 #تهران @iran https://example.com/a?b=1.",
]


@pytest.mark.parametrize("text", NASTY_TEXTS)
def test_offsets_index_the_original_text(tagger, text: str) -> None:
    entities = tagger(text)
    check_entities(text, entities)
    doc = tagger.tag_documents([text])[0]
    assert len(doc.tags) == len(doc.words) == len(doc.scores) == len(tokenize_words(text))
    assert [w.text for w in doc.words] == [text[w.start : w.end] for w in doc.words]


def test_random_model_finds_entities_in_test_texts(tagger) -> None:
    """Guard against vacuous offset tests: the fixed random model must produce entities here."""
    assert sum(len(tagger(t)) for t in NASTY_TEXTS) >= 5


def test_normalisation_is_applied_but_offsets_stay_original(tagger) -> None:
    """Arabic ي/ك, diacritics and Arabic-Indic digits are normalised for the model, not in the output."""
    persian = "علی کریمی در تهران ۱۲۳ کتاب دارد و رضایی در مشهد است"
    arabic = "علي كريمي در تهرانِ ١٢٣ كتاب دارد و رضايي در مشهد است"
    assert len(persian) != len(arabic)  # the diacritic shifts offsets
    doc_p, doc_a = tagger.tag_documents([persian, arabic])
    assert doc_a.tags == doc_p.tags
    assert doc_a.scores == pytest.approx(doc_p.scores, abs=1e-5)
    assert len(doc_a.entities) == len(doc_p.entities) > 0
    for ea, ep in zip(doc_a.entities, doc_p.entities, strict=True):
        assert ea["text"] == arabic[ea["start"] : ea["end"]]
        assert ea["label"] == ep["label"]
    assert any("ي" in e["text"] or "ك" in e["text"] or "١" in e["text"] for e in doc_a.entities)


def test_batching_and_order_do_not_change_results(tagger) -> None:
    texts = [*NASTY_TEXTS, "تهران", "", TRAIN_TEXT]
    one_by_one = [tagger(t) for t in texts]
    for batch_size, max_tokens in ((1, None), (3, None), (64, None), (64, 40), (64, 10_000)):
        tagger.max_batch_tokens = max_tokens
        try:
            batched = tagger(texts, batch_size=batch_size)
        finally:
            tagger.max_batch_tokens = DEFAULT_MAX_BATCH_TOKENS
        assert len(batched) == len(texts)
        for got, want in zip(batched, one_by_one, strict=True):
            assert [(e["start"], e["end"], e["label"]) for e in got] == [
                (e["start"], e["end"], e["label"]) for e in want
            ]
            assert [e["score"] for e in got] == pytest.approx([e["score"] for e in want], abs=1e-5)


@pytest.mark.parametrize(
    "text",
    ["", " ", "   \n\t \u200c ", "،؛!؟...«»()-", "Hello world 42", "😀👍🏽🇮🇷", "\u200c", "\u0650\u064b"],
)
def test_degenerate_inputs_give_well_formed_results(tagger, text: str) -> None:
    entities = tagger(text)
    assert isinstance(entities, list)
    check_entities(text, entities)
    doc = tagger.tag_documents([text])[0]
    assert len(doc.tags) == len(doc.words)
    if not text.strip(" \n\t\u200c"):
        assert entities == [] and doc.words == []


def test_long_sentence_is_windowed_not_truncated(model_dir: Path) -> None:
    """A 3000-word sentence (far past 512 sub-tokens) gets a tag for every word and entities at its end."""
    from parsner.inference.tagger import Tagger

    tagger = Tagger.from_pretrained(model_dir, device="cpu", max_length=64)
    base = [w.text for w in tokenize_words(TRAIN_TEXT) if w.text.isalpha()]
    text = " ".join(base[i % len(base)] for i in range(3000))
    doc = tagger.tag_documents([text])[0]
    assert len(doc.sentence_word_ranges) == 1
    assert len(doc.tags) == len(doc.words) == 3000
    check_entities(text, doc.entities)
    late = [e for e in doc.entities if e["start"] > len(text) * 0.9]
    assert late, "no entity in the last 10% of a long sentence: words past the first window were lost"
    # Short texts never reach the window limit: the same result whatever max_length is.
    wide = Tagger.from_pretrained(model_dir, device="cpu", max_length=512)
    short = "علی رضایی رئیس دانشگاه تهران روز دوشنبه در مشهد گفت"
    assert tagger.tag_documents([short])[0].tags == wide.tag_documents([short])[0].tags


def test_many_sentences_keep_document_offsets(tagger) -> None:
    sentence = "علی رضایی در دانشگاه تهران گفت. "
    text = sentence * 300
    doc = tagger.tag_documents([text])[0]
    assert len(doc.sentence_word_ranges) == 300
    check_entities(text, doc.entities)
    # Same sentence, same context: identical tags in every copy (offsets shifted by the sentence length).
    first = [(e["start"], e["end"], e["label"]) for e in doc.entities if e["end"] <= len(sentence)]
    for k in (1, 150, 299):
        shift = k * len(sentence)
        copy = [
            (e["start"] - shift, e["end"] - shift, e["label"])
            for e in doc.entities
            if shift <= e["start"] < shift + len(sentence)
        ]
        assert copy == first


@pytest.mark.slow  # ~10 s of word splitting/encoding on one core, more on a busy machine
def test_one_megabyte_document(tagger) -> None:
    unit = "سازمان ملل متحد در نیویورک اعلام کرد که ۳۵ درصد کمک‌ها به ایران می‌رسد. Apple 😀\n"
    text = unit * (1_000_000 // len(unit) + 1)
    assert len(text) >= 1_000_000
    t0 = time.perf_counter()
    doc = tagger.tag_documents([text], batch_size=256)[0]
    elapsed = time.perf_counter() - t0
    assert len(doc.tags) == len(doc.words) == len(tokenize_words(text))
    assert doc.entities and doc.entities[-1]["end"] > len(text) - len(unit)
    for ent in doc.entities[:: max(1, len(doc.entities) // 2000)]:
        assert ent["text"] == text[ent["start"] : ent["end"]]
    assert elapsed < 300, f"1 MB took {elapsed:.0f} s"


def test_predict_words_gives_one_tag_per_word(tagger) -> None:
    sentences = [
        ["علی", "رضایی", "در", "تهران"],
        [],
        ["", " ", "\u200c", "می شود", "کتاب\u200cها", "😀", "x" * 300],
        ["تهران"] * 700,
    ]
    tags = tagger.predict_words(sentences)
    assert [len(t) for t in tags] == [len(s) for s in sentences]
    assert all(t in LABELS for sent in tags for t in sent)
    tags2, scores = tagger.predict_words(sentences, batch_size=1, return_scores=True)
    assert tags2 == tags
    assert all(0.0 < s <= 1.0 for sent in scores for s in sent)


def test_predict_words_matches_raw_text_tagging(tagger) -> None:
    text = "علی رضایی رئیس دانشگاه تهران روز دوشنبه در مشهد گفت"
    doc = tagger.tag_documents([text])[0]
    assert tagger.predict_words([[w.text for w in doc.words]]) == [doc.tags]


def test_quantized_tagger_is_well_formed(model_dir: Path) -> None:
    from parsner.inference.tagger import Tagger

    q = Tagger.from_pretrained(model_dir, device="cpu", quantize=True)
    for text in NASTY_TEXTS:
        check_entities(text, q(text))
    kinds = {type(m).__module__ for m in q.model.modules()}
    assert any("quantized" in k for k in kinds), kinds


def test_bad_arguments(tagger) -> None:
    with pytest.raises(TypeError):
        tagger([123])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        tagger("تهران", batch_size=0)


def test_labels_and_lazy_import() -> None:
    import subprocess
    import sys

    code = "import parsner.inference.tagger, sys; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# Random text over the characters that trouble Persian pipelines: ZWNJ/ZWJ, Arabic ي/ك, diacritics, tatweel,
# three digit systems, bidi marks, mixed whitespace, punctuation, Latin and emoji.
_ALPHABET = (
    "ابتدرسکگلمنوهیيكة" + "\u200c\u200d\u200e\u200f\u064b\u064e\u0650\u0651\u0640" + "۱۲٣٤56"
    + "  \t\n\r\u00a0" + ".،؛؟!«»()-%/" + "aBz" + "😀🇮🇷"
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=_ALPHABET, max_size=60), min_size=1, max_size=4))
def test_offsets_hold_for_random_persian_text(tagger, texts: list[str]) -> None:
    docs = tagger.tag_documents(texts, batch_size=2)
    assert len(docs) == len(texts)
    for text, doc in zip(texts, docs, strict=True):
        assert doc.text == text
        # Words come from the normalised text mapped back: exact slices, in order, no overlap, and every
        # original word with a letter or digit is covered (the normaliser may join `می شود` into one word).
        for w in doc.words:
            assert text[w.start : w.end] == w.text and w.text.strip()
        assert all(a.end <= b.start for a, b in zip(doc.words, doc.words[1:], strict=False))
        for ow in tokenize_words(text):
            if any(ch.isalnum() for ch in ow.text):
                assert any(w.start < ow.end and ow.start < w.end for w in doc.words), ow
        assert len(doc.tags) == len(doc.words) == len(doc.scores)
        assert [r[0] for r in doc.sentence_word_ranges] == sorted(r[0] for r in doc.sentence_word_ranges)
        assert sum(e - s for s, e in doc.sentence_word_ranges) == len(doc.words)
        check_entities(text, doc.entities)


@pytest.mark.parametrize("forced", ["0", "1"])
def test_onednn_linear_keeps_the_outputs(model_dir: Path, monkeypatch, forced: str) -> None:
    """torch's Linear layers on oneDNN (a CPU speed path) give the same entities and scores to rounding."""
    import torch

    from parsner.envinfo import ONEDNN_ENV, onednn_linear_helps
    from parsner.inference.tagger import Tagger

    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch has no oneDNN")
    monkeypatch.setenv(ONEDNN_ENV, "0")
    ref = Tagger.from_pretrained(model_dir, device="cpu")
    monkeypatch.setenv(ONEDNN_ENV, forced)
    assert onednn_linear_helps() is (forced == "1")
    fast = Tagger.from_pretrained(model_dir, device="cpu")
    assert fast.runner.fast_linear is (forced == "1") and ref.runner.fast_linear is False
    names = {type(m).__name__ for m in fast.model.modules()}
    assert ("OneDnnLinear" in names) is (forced == "1")
    for text in NASTY_TEXTS:
        a, b = fast(text), ref(text)
        check_entities(text, a)
        assert [(e["start"], e["end"], e["label"]) for e in a] == [(e["start"], e["end"], e["label"]) for e in b]
        assert [e["score"] for e in a] == pytest.approx([e["score"] for e in b], abs=1e-5)


def test_a_callers_model_is_never_changed(model_dir: Path, monkeypatch) -> None:
    """Only a model the Tagger loaded itself moves to oneDNN: one handed in may still be trained or saved."""
    import torch

    from parsner.envinfo import ONEDNN_ENV
    from parsner.inference.modeling import load_for_inference
    from parsner.inference.tagger import Tagger

    monkeypatch.setenv(ONEDNN_ENV, "1")
    model, tok, norm, meta = load_for_inference(str(model_dir), device="cpu")
    tagger = Tagger(model, tok, norm, meta=meta, device="cpu")
    assert tagger.runner.fast_linear is False
    assert any(type(m) is torch.nn.Linear for m in model.modules())
