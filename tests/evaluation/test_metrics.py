"""seqeval scoring: hand-computed cases (conlleval semantics) and the known pitfalls."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsner.evaluation.metrics import bootstrap_f1_ci, score, sentence_counts, sentence_entities

# Two sentences; gold entities PER[0..1] LOC[3] | ORG[0]; predicted PER[0] LOC[3] | ORG[0] LOC[1].
GOLD = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "O", "O"]]
PRED = [["B-PER", "O", "O", "B-LOC", "O"], ["B-ORG", "B-LOC", "O"]]


def test_hand_computed_mixed_case() -> None:
    m = score(GOLD, PRED)
    d = m["default"]
    # correct: LOC, ORG -> 2; predicted 4; gold 3
    assert (d["n_correct"], d["n_pred"], d["n_gold"]) == (2, 4, 3)
    assert d["precision"] == pytest.approx(2 / 4)
    assert d["recall"] == pytest.approx(2 / 3)
    assert d["f1"] == pytest.approx(4 / 7)
    assert d["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert d["per_type"]["LOC"]["precision"] == pytest.approx(0.5)
    assert d["per_type"]["LOC"]["recall"] == pytest.approx(1.0)
    assert d["per_type"]["LOC"]["f1"] == pytest.approx(2 / 3)
    assert d["per_type"]["ORG"]["f1"] == pytest.approx(1.0)
    assert d["macro_avg"]["f1"] == pytest.approx((0 + 2 / 3 + 1) / 3)
    assert d["weighted_avg"]["f1"] == pytest.approx((0 + 2 / 3 + 1) / 3)
    assert d["micro_avg"]["f1"] == pytest.approx(d["f1"])
    assert m["token_accuracy"] == pytest.approx(6 / 8)
    assert (m["n_sentences"], m["n_tokens"], m["n_gold_entities"], m["n_pred_entities"]) == (2, 8, 3, 4)
    # all tags well-formed: strict agrees with default here
    assert m["strict"]["f1"] == pytest.approx(d["f1"])


def test_schema_keys() -> None:
    m = score(GOLD, PRED)
    for mode in ("default", "strict"):
        for key in ("precision", "recall", "f1", "per_type", "micro_avg", "macro_avg", "weighted_avg"):
            assert key in m[mode]
        for row in m[mode]["per_type"].values():
            assert set(row) == {"precision", "recall", "f1", "support"}
    for key in ("token_accuracy", "n_sentences", "n_gold_entities", "n_pred_entities"):
        assert key in m


def test_orphan_i_default_counts_strict_drops() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["I-PER", "I-PER", "O", "B-LOC"]]
    m = score(gold, pred)
    # conlleval: the orphan I-PER starts an entity spanning 0..1, which matches the gold PER
    assert m["default"]["f1"] == pytest.approx(1.0)
    # strict IOB2: no PER entity predicted -> P = 1/1, R = 1/2
    assert m["strict"]["n_pred"] == 1
    assert m["strict"]["precision"] == pytest.approx(1.0)
    assert m["strict"]["recall"] == pytest.approx(0.5)
    assert m["strict"]["f1"] == pytest.approx(2 / 3)


def test_strict_without_scheme_pitfall_is_avoided() -> None:
    """seqeval's f1_score(mode="strict") without a scheme silently scores in default mode."""
    from seqeval.metrics import f1_score

    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["I-PER", "I-PER", "O", "B-LOC"]]
    fallback = f1_score(gold, pred, mode="strict")
    assert fallback == pytest.approx(1.0)  # the pitfall: same as default
    assert score(gold, pred)["strict"]["f1"] != pytest.approx(fallback)


def test_type_change_inside_entity() -> None:
    gold = [["B-PER", "I-PER"]]
    pred = [["B-PER", "I-LOC"]]
    m = score(gold, pred)
    assert m["default"]["n_pred"] == 2  # PER[0], LOC[1] (orphan I-LOC starts one)
    assert m["strict"]["n_pred"] == 1  # only PER[0]
    assert m["default"]["f1"] == 0.0 and m["strict"]["f1"] == 0.0


def test_underscore_tags_are_normalised() -> None:
    gold = [["B_ORG", "I_ORG", "O", "b-pers"]]
    pred = [["B-ORG", "I-ORG", "O", "B-PER"]]
    m = score(gold, pred)
    assert set(m["default"]["per_type"]) == {"ORG", "PER"}  # not "_ORG"
    assert m["default"]["f1"] == pytest.approx(1.0)
    assert m["strict"]["f1"] == pytest.approx(1.0)
    assert m["token_accuracy"] == pytest.approx(1.0)


def test_all_o_no_crash_no_warnings() -> None:
    gold = [["O", "O"], ["O"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = score(gold, [["O", "O"], ["O"]])
        assert m["default"]["f1"] == m["default"]["precision"] == m["default"]["recall"] == 0.0
        assert m["default"]["per_type"] == {}
        assert m["strict"]["macro_avg"]["f1"] == 0.0
        assert m["token_accuracy"] == 1.0
        # all-O gold, one spurious prediction
        m2 = score(gold, [["B-PER", "O"], ["O"]])
        assert m2["n_pred_entities"] == 1 and m2["default"]["precision"] == 0.0
        assert m2["default"]["per_type"]["PER"]["support"] == 0
        # only an orphan I- predicted: an entity in default mode, none in strict mode
        m3 = score(gold, [["I-PER", "O"], ["O"]])
        assert m3["default"]["n_pred"] == 1 and m3["strict"]["n_pred"] == 0
        assert m3["strict"]["f1"] == 0.0
        assert score([], [])["n_sentences"] == 0


def test_length_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="2 sentences"):
        score(GOLD, PRED[:1])
    with pytest.raises(ValueError, match="sentence 1"):
        score(GOLD, [PRED[0], PRED[1][:2]])


def test_unknown_tag_is_an_error() -> None:
    with pytest.raises(ValueError, match="pred: sentence 0, word 1"):
        score([["O", "B-PER"]], [["O", "E-PER"]])


def test_sentence_counts_sum_to_micro() -> None:
    c = sentence_counts(GOLD, PRED, "default")
    assert c.tolist() == [[1, 2, 2], [1, 2, 1]]


def _random_tags(rng: np.random.Generator, n: int) -> tuple[list[list[str]], list[list[str]]]:
    labels = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    gold, pred = [], []
    for _ in range(n):
        length = int(rng.integers(1, 12))
        g = [labels[i] for i in rng.integers(0, len(labels), size=length)]
        p = [t if rng.random() < 0.8 else labels[int(rng.integers(0, len(labels)))] for t in g]
        gold.append(g)
        pred.append(p)
    return gold, pred


def test_bootstrap_deterministic_and_contains_point() -> None:
    gold, pred = _random_tags(np.random.default_rng(1), 300)
    a = bootstrap_f1_ci(gold, pred, n_resamples=500, seed=7)
    b = bootstrap_f1_ci(gold, pred, n_resamples=500, seed=7)
    c = bootstrap_f1_ci(gold, pred, n_resamples=500, seed=8)
    assert a == b
    assert (a["low"], a["high"]) != (c["low"], c["high"])
    assert a["f1"] == pytest.approx(score(gold, pred)["default"]["f1"])
    assert a["low"] < a["f1"] < a["high"]
    assert a["high"] - a["low"] < 0.2
    s = bootstrap_f1_ci(gold, pred, mode="strict", n_resamples=200, seed=7)
    assert s["f1"] == pytest.approx(score(gold, pred)["strict"]["f1"])


def test_bootstrap_perfect_and_fast() -> None:
    gold, _ = _random_tags(np.random.default_rng(2), 2000)
    ci = bootstrap_f1_ci(gold, gold, n_resamples=20, seed=0)
    assert ci["low"] == ci["high"] == ci["f1"] == 1.0
    counts_start = time.perf_counter()
    bootstrap_f1_ci(gold, gold, n_resamples=1000, seed=0)
    assert time.perf_counter() - counts_start < 10.0


TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TAGS), max_size=12))
def test_fast_entity_extraction_matches_seqeval(tags: list[str]) -> None:
    from seqeval.metrics.sequence_labeling import get_entities
    from seqeval.scheme import IOB2, Entities

    assert sentence_entities(tags, "default") == set(get_entities(tags))
    strict = {(e.tag, e.start, e.end - 1) for e in Entities([tags], IOB2).entities[0]}
    assert sentence_entities(tags, "strict") == strict
