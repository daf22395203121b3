"""Sub-word alignment and windows on ParsBERT v1's real tokenizer (skips where shared/ is absent)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsner.data.align import IGNORE_INDEX, encode_words
from parsner.errors import ConfigError
from parsner.inference.decoding import decode_words

ZWNJ = "\u200c"
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@pytest.fixture(scope="module")
def tok(parsbert_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(parsbert_tokenizer_dir))


def _labelled(enc):
    """(sentence, word) -> list of (window index, position) where that word is labelled."""
    seen: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for k, win in enumerate(enc.windows):
        for p in win.label_positions:
            seen.setdefault((win.sentence, win.word_ids[p]), []).append((k, p))
    return seen


def _check_every_word_once(enc, sentences, labels=None):
    seen = _labelled(enc)
    for s, words in enumerate(sentences):
        for w in range(len(words)):
            assert len(seen.get((s, w), [])) == 1, f"sentence {s} word {w}: {seen.get((s, w))}"
    assert sum(len(v) for v in seen.values()) == sum(len(x) for x in sentences)
    if labels is not None:
        for win in enc.windows:
            ids = [win.labels[p] for p in win.label_positions]
            gold = [labels[win.sentence][win.word_ids[p]] for p in win.label_positions]
            assert ids == gold
            labelled = {p for p, lab in enumerate(win.labels) if lab != IGNORE_INDEX}
            assert labelled == set(win.label_positions)


def test_zwnj_word_is_one_word_with_first_subtoken_label(tok):
    words = ["آن", f"می{ZWNJ}توانند", "به", "تهران", "بروند"]
    labels = [0, 0, 0, 1, 0]
    enc = encode_words([words], tok, [labels])
    (win,) = enc.windows
    assert win.input_ids[0] == tok.cls_token_id and win.input_ids[-1] == tok.sep_token_id
    assert win.labelled_words == [0, 1, 2, 3, 4]
    # ParsBERT v1 deletes ZWNJ: the word is still one word (one labelled position).
    pieces = tok.convert_ids_to_tokens([win.input_ids[p] for p, w in enumerate(win.word_ids) if w == 1])
    assert "".join(p.removeprefix("##") for p in pieces) == "میتوانند"
    assert [win.labels[p] for p in win.label_positions] == labels


def test_arabic_kaf_and_ascii_digits_become_unk_but_keep_their_label(tok):
    words = ["كتاب", "1399", "سال", "۱۳۹۹"]
    enc = encode_words([words], tok, [[1, 2, 0, 3]])
    (win,) = enc.windows
    first_ids = [win.input_ids[p] for p in win.label_positions]
    assert first_ids[0] == tok.unk_token_id  # Arabic kaf is not in ParsBERT v1's vocab
    assert first_ids[1] == tok.unk_token_id  # neither are ASCII digits
    assert first_ids[3] != tok.unk_token_id  # Persian digits are
    assert [win.labels[p] for p in win.label_positions] == [1, 2, 0, 3]
    assert enc.zero_subtoken_words == 0


def test_zero_subtoken_words_get_unk_and_a_prediction(tok):
    words = ["سلام", "\u0654", ZWNJ, "", "دنیا"]
    labels = [3, 4, 4, 0, 1]
    enc = encode_words([words], tok, [labels])
    assert enc.zero_subtoken_words == 3
    (win,) = enc.windows
    assert win.labelled_words == [0, 1, 2, 3, 4]
    for p, w in zip(win.label_positions, win.labelled_words, strict=True):
        if w in (1, 2, 3):
            assert win.input_ids[p] == tok.unk_token_id
    decoded = decode_words(enc.windows, [np.array(win.labels)], enc.word_counts, LABELS)
    assert decoded[0].label_ids == labels
    assert decoded[0].tags == ["B-PER", "I-PER", "I-PER", "O", "B-LOC"]
    assert words == ["سلام", "\u0654", ZWNJ, "", "دنیا"]  # the caller's words are untouched


def test_label_all_subtokens_turns_b_into_i(tok):
    words = ["هوشواره", "رفت"]  # هوش ##واره
    enc = encode_words([words], tok, [[1, 0]], label_all_subtokens=True, label_names=LABELS)
    (win,) = enc.windows
    inner = [p for p, w in enumerate(win.word_ids) if w == 0]
    assert len(inner) >= 2
    assert [win.labels[p] for p in inner] == [1] + [2] * (len(inner) - 1)
    assert win.label_positions == [inner[0], inner[-1] + 1]  # decoding still reads first sub-tokens only
    plain = encode_words([words], tok, [[1, 0]])
    assert [plain.windows[0].labels[p] for p in inner] == [1] + [IGNORE_INDEX] * (len(inner) - 1)


def test_long_sentence_is_windowed_without_losing_words(tok):
    pool = ["تهران", "هوشواره", f"می{ZWNJ}شود", "سازمان", "ملل", "1400", "«", "»", "ايران"]
    words = [pool[i % len(pool)] for i in range(700)]
    labels = [i % len(LABELS) for i in range(700)]
    short = ["یک", "جمله"]
    enc = encode_words([short, words], tok, [[0, 0], labels], max_length=64, stride=16)
    assert enc.windowed_sentences == 1
    assert len([w for w in enc.windows if w.sentence == 0]) == 1
    assert len([w for w in enc.windows if w.sentence == 1]) > 10
    assert all(len(w.input_ids) <= 64 for w in enc.windows)
    _check_every_word_once(enc, [short, words], [[0, 0], labels])
    # consecutive windows overlap (context on both sides), and each word sits in its most central window
    wins = [w for w in enc.windows if w.sentence == 1]
    for a, b in itertools.pairwise(wins):
        assert min(x for x in b.word_ids if x is not None) <= max(x for x in a.word_ids if x is not None)
    for win in wins:
        for p in win.label_positions:
            w = win.word_ids[p]
            here = min(p - 1, len(win.input_ids) - 2 - p)
            for other in wins:
                if other is win or w not in other.word_ids:
                    continue
                q = other.word_ids.index(w)
                assert min(q - 1, len(other.input_ids) - 2 - q) <= here + 3  # +3: multi-piece word centres
    decoded = decode_words(enc.windows, [np.array(w.labels) for w in enc.windows], enc.word_counts)
    assert decoded[1].label_ids == labels


def test_word_longer_than_a_window_is_cut_but_predicted(tok):
    huge = " ".join(["تهران"] * 30)  # one PEYMA-style word with spaces: 30 sub-words
    enc = encode_words([["در", huge, "بود"]], tok, [[0, 1, 0]], max_length=12, stride=2)
    assert enc.cut_words == 1
    assert all(len(w.input_ids) <= 12 for w in enc.windows)
    _check_every_word_once(enc, [["در", huge, "بود"]], [[0, 1, 0]])


def test_decode_logits_gives_probabilities(tok):
    enc = encode_words([["علی", "به", "تهران"]], tok)
    (win,) = enc.windows
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(win.input_ids) + 3, len(LABELS)))  # padded beyond the window
    out = decode_words(enc.windows, [logits], enc.word_counts, dict(enumerate(LABELS)))[0]
    for p, label_id, score in zip(win.label_positions, out.label_ids, out.scores, strict=True):
        probs = np.exp(logits[p]) / np.exp(logits[p]).sum()
        assert label_id == int(np.argmax(logits[p]))
        assert score == pytest.approx(float(probs.max()))
        assert 0 < score <= 1


def test_decode_rejects_missing_prediction(tok):
    enc = encode_words([["علی", "رفت"]], tok)
    with pytest.raises(ValueError, match="received no prediction"):
        decode_words([], [], enc.word_counts)


def test_bad_window_settings(tok):
    with pytest.raises(ConfigError, match="stride"):
        encode_words([["a"]], tok, max_length=10, stride=8)
    with pytest.raises(ConfigError, match="max_length"):
        encode_words([["a"]], tok, max_length=3, stride=0)


def test_empty_sentence_has_no_window(tok):
    enc = encode_words([[], ["سلام"]], tok, [[], [0]])
    assert [w.sentence for w in enc.windows] == [1]
    out = decode_words(enc.windows, [np.array(enc.windows[0].labels)], enc.word_counts)
    assert out[0].label_ids == [] and out[1].label_ids == [0]


WORDS = st.sampled_from(
    ["تهران", f"می{ZWNJ}توانند", "ك", "123", "\u0654", ZWNJ, "", "آگاهی", "هوشواره", "بین المللی", "«", "x",
     "ءءءءءءءءءءءءءءءءءءءء", "مسئولیت‌پذیری", " ".join(["تهران"] * 12)]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sentences=st.lists(st.lists(WORDS, min_size=0, max_size=60), min_size=1, max_size=4),
    max_length=st.integers(min_value=6, max_value=40),
    stride_frac=st.floats(min_value=0.0, max_value=0.9),
)
def test_property_every_word_labelled_exactly_once(tok, sentences, max_length, stride_frac):
    budget = max_length - 2
    stride = min(int(stride_frac * budget), budget - 1)
    labels = [[(i * 7 + len(w)) % len(LABELS) for i, w in enumerate(s)] for s in sentences]
    enc = encode_words(sentences, tok, labels, max_length=max_length, stride=stride)
    assert all(len(w.input_ids) <= max_length for w in enc.windows)
    _check_every_word_once(enc, sentences, labels)
    decoded = decode_words(enc.windows, [np.array(w.labels) for w in enc.windows], enc.word_counts)
    assert [d.label_ids for d in decoded] == labels


# --------------------------------------------------------------------------- IOB2-constrained decoding


def _one_window(n_words: int):
    from parsner.data.align import Window

    return Window(
        sentence=0,
        input_ids=list(range(n_words + 2)),
        labels=None,
        word_ids=[None, *range(n_words), None],
        label_positions=list(range(1, n_words + 1)),
    )


def test_constrained_decoding_never_predicts_orphan_i_tags() -> None:
    import numpy as np

    from parsner.labels import first_invalid_transition

    names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    # argmax per word would be: I-LOC (orphan), I-LOC, O, I-PER (after O: orphan)
    probs = np.array([
        [0.30, 0.25, 0.45, 0.00, 0.00],
        [0.10, 0.10, 0.80, 0.00, 0.00],
        [0.90, 0.05, 0.05, 0.00, 0.00],
        [0.40, 0.00, 0.00, 0.15, 0.45],
    ])
    with np.errstate(divide="ignore"):  # log(0) = -inf: those labels are impossible
        logits = np.log(np.vstack([np.zeros(5) + 1e-9, probs, np.zeros(5) + 1e-9]))
    win = _one_window(4)
    plain = decode_words([win], [logits], [4], names)[0].tags
    assert plain == ["I-LOC", "I-LOC", "O", "I-PER"]
    fixed = decode_words([win], [logits], [4], names, constrained=True)[0]
    assert first_invalid_transition(fixed.tags) is None
    # B-LOC I-LOC (0.25*0.8=0.20) beats O O (0.3*0.1=0.03); the last word: O (0.40) beats B-PER (0.15)
    assert fixed.tags == ["B-LOC", "I-LOC", "O", "O"]
    assert fixed.scores == pytest.approx([0.25, 0.80, 0.90, 0.40])


def test_constrained_decoding_keeps_a_valid_argmax_sequence() -> None:
    import numpy as np


    names = ["O", "B-ORG", "I-ORG"]
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 12))
        probs = rng.dirichlet(np.ones(3), size=n)
        logits = np.log(np.vstack([np.ones(3), probs, np.ones(3)]))
        win = _one_window(n)
        plain = decode_words([win], [logits], [n], names)[0]
        fixed = decode_words([win], [logits], [n], names, constrained=True)[0]
        valid = all(not (t == "I-ORG" and p == "O") for p, t in zip(["O", *plain.tags], plain.tags, strict=False))
        if valid:
            assert fixed.tags == plain.tags
        # the constrained path is never less probable than any other valid path it could have chosen
        # (checked against the argmax path with orphans repaired to B-, which is always valid)
        from parsner.labels import repair_iob2

        repaired, _ = repair_iob2(plain.tags)
        idx = {t: i for i, t in enumerate(names)}
        def logp(tags: list[str], probs: np.ndarray = probs, idx: dict = idx) -> float:
            return float(sum(np.log(probs[w, idx[t]]) for w, t in enumerate(tags)))

        assert logp(fixed.tags) >= logp(repaired) - 1e-9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sentences=st.lists(st.lists(WORDS, min_size=0, max_size=40), min_size=1, max_size=4),
    max_length=st.integers(min_value=6, max_value=40),
)
def test_property_distinct_word_encoding_equals_sentence_encoding(tok, sentences, max_length):
    """Encoding each distinct word once gives the windows that encoding whole sentences gives (any windows)."""
    from parsner.data import align

    labels = [[(i * 5 + len(w)) % len(LABELS) for i, w in enumerate(s)] for s in sentences]
    fast = encode_words(sentences, tok, labels, max_length=max_length, stride=(max_length - 2) // 3)
    real = align._words_independent
    try:
        align._words_independent = lambda tokenizer: False
        whole = encode_words(sentences, tok, labels, max_length=max_length, stride=(max_length - 2) // 3)
    finally:
        align._words_independent = real
    assert fast.summary() == whole.summary()
    assert [vars(w) for w in fast.windows] == [vars(w) for w in whole.windows]


SENTENCES_WITH_REPEATS = [
    ["تهران", "و", "تهران", f"می{ZWNJ}شود", "۱۴۰۲", "و"],
    ["و", "\u0654", "تهران", "", "كتاب", "1399"],
    ["یک"],
]


def _whole_sentence_windows(tok, sentences):
    """What encoding each sentence whole (the tokenizer's own word_ids) gives, in one window each."""
    out = []
    for words in sentences:
        enc = tok([words], is_split_into_words=True, add_special_tokens=True)
        out.append((list(enc["input_ids"][0]), enc.word_ids(0)))
    return out


def test_distinct_words_are_encoded_once_and_give_the_sentence_encoding(tok, monkeypatch):
    from parsner.data import align

    assert align._words_independent(tok)  # WordPiece encodes each word of pre-split input on its own
    calls = []
    real = type(tok).__call__

    def spy(self, text, **kw):
        if kw.get("add_special_tokens") is False:  # not the probe for the special tokens
            calls.append(text)
        return real(self, text, **kw)

    monkeypatch.setattr(type(tok), "__call__", spy)
    sentences = [[w for w in s if w not in ("\u0654", "")] for s in SENTENCES_WITH_REPEATS]
    enc = encode_words(sentences, tok)
    encoded_words = [w for text in calls for seq in text for w in seq]
    assert sorted(encoded_words) == sorted({w for s in sentences for w in s} | {tok.unk_token})
    monkeypatch.undo()
    for win, (ids, wids) in zip(enc.windows, _whole_sentence_windows(tok, sentences), strict=True):
        assert win.input_ids == ids
        assert win.word_ids == wids


def test_position_dependent_tokenizers_are_encoded_sentence_by_sentence(tok, monkeypatch):
    from parsner.data import align

    labels = [[i % len(LABELS) for i in range(len(s))] for s in SENTENCES_WITH_REPEATS]
    fast = encode_words(SENTENCES_WITH_REPEATS, tok, labels, max_length=6, stride=2)
    monkeypatch.setattr(align, "_words_independent", lambda tokenizer: False)
    whole = encode_words(SENTENCES_WITH_REPEATS, tok, labels, max_length=6, stride=2)
    assert whole.summary() == fast.summary()
    assert whole.zero_subtoken_words == 2
    assert [vars(w) for w in whole.windows] == [vars(w) for w in fast.windows]
