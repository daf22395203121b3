"""Calibration error, reliability and threshold tables, and the fit (:mod:`parsner.evaluation.calibration`)."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from parsner.evaluation.calibration import (
    Outcomes,
    confidence_markdown,
    confidence_report,
    entity_outcomes,
    expected_calibration_error,
    fit_from_predictions,
    reliability_table,
    threshold_table,
)
from parsner.inference.calibration import Calibrator


def test_ece_by_hand() -> None:
    # bin 0.9: 2 entities at 0.95, one right -> |0.5 - 0.95| = 0.45; bin 0.2: one at 0.25, wrong -> 0.25
    scores, correct = [0.95, 0.95, 0.25], [True, False, False]
    assert expected_calibration_error(scores, correct) == pytest.approx(2 / 3 * 0.45 + 1 / 3 * 0.25)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0  # 1.0 falls in the last bin
    assert expected_calibration_error([], []) is None
    rows = reliability_table(scores, correct)
    assert len(rows) == 10 and rows[9]["entities"] == 2 and rows[9]["accuracy"] == 0.5
    assert rows[2]["mean_score"] == 0.25 and rows[0]["accuracy"] is None


def test_perfectly_calibrated_data_has_a_small_ece() -> None:
    rng = random.Random(1)
    scores = [rng.random() for _ in range(20000)]
    correct = [rng.random() < s for s in scores]
    assert expected_calibration_error(scores, correct) < 0.02
    over = [min(1.0, s + 0.3) for s in scores]
    assert expected_calibration_error(over, correct) > 0.2


def test_isotonic_lowers_ece_on_its_fit_data_and_keeps_order() -> None:
    rng = random.Random(2)
    for trial in range(5):
        raw = [rng.random() ** 0.3 for _ in range(500)]  # over-confident
        correct = [rng.random() < r ** 4 for r in raw]
        cal = Calibrator.fit(raw, correct)
        fitted = cal.apply(raw)
        assert expected_calibration_error(fitted, correct) <= expected_calibration_error(raw, correct), trial
        order = sorted(range(len(raw)), key=lambda i: raw[i])
        assert all(fitted[b] >= fitted[a] for a, b in pairwise(order))


def test_entity_outcomes_and_threshold_table() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-LOC"]]
    scores = [{(0, 2, "PER"): 0.95, (3, 4, "ORG"): 0.4}, {(0, 1, "ORG"): 0.8, (1, 2, "LOC"): 0.05}]
    out = entity_outcomes(gold, pred, scores)
    assert out.n_gold == 3 and sorted(zip(out.scores, out.correct, strict=True)) == [
        (0.05, False), (0.4, False), (0.8, True), (0.95, True)]
    rows = {r["threshold"]: r for r in threshold_table(out)}
    assert rows[0.0]["precision"] == 0.5 and rows[0.0]["recall"] == pytest.approx(2 / 3)
    assert rows[0.5]["entities"] == 2 and rows[0.5]["precision"] == 1.0
    assert rows[0.95]["entities"] == 1 and rows[0.95]["recall"] == pytest.approx(1 / 3)
    assert [r["threshold"] for r in threshold_table(out)] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    conf = confidence_report(out, calibrated=True)
    text = "\n".join(confidence_markdown(conf, "threshold.png", "reliability.png"))
    assert "| 0.95 | 1 | 100.0 | 33.3 | 50.0 |" in text and "reliability.png" in text and "ECE" not in text
    assert f"**{conf['ece']:.4f}**" in text


def test_fit_from_predictions_uses_the_product_of_word_scores() -> None:
    gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "O"]] * 10
    pred = [["B-PER", "I-PER", "O"], ["B-LOC", "B-PER", "O"]] * 10
    word_scores = [[0.9, 0.9, 1.0], [0.6, 0.5, 1.0]] * 10
    cal = fit_from_predictions(gold, pred, word_scores)
    assert cal is not None and cal.info["entities"] == 30
    assert cal(0.81) == 1.0 and cal(0.6) == 1.0 and cal(0.5) == 0.0  # 0.81 = 0.9 * 0.9, the PER span
    assert cal.info["ece_fitted"] <= cal.info["ece_raw"]
    assert fit_from_predictions([["O"]], [["O"]], [[1.0]]) is None
    assert expected_calibration_error(*_as_lists(Outcomes([0.5], [True], 1))) == 0.5


def _as_lists(out: Outcomes) -> tuple[list[float], list[bool]]:
    return out.scores, out.correct
