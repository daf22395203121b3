"""Entity confidence: the raw span probability, the isotonic calibrator, and the Tagger applying calibration.json
and ``min_score`` (:mod:`parsner.inference.calibration`)."""

from __future__ import annotations

import json
import math
import random
import shutil
from itertools import pairwise
from pathlib import Path

import pytest

from parsner.errors import ModelLoadError
from parsner.inference.calibration import CALIBRATION_FILE, Calibrator, check_min_score, span_confidence

TEXTS = ["علی رضایی رئیس دانشگاه تهران روز دوشنبه در مشهد گفت.",
         "سازمان ملل متحد در نیویورک اعلام کرد که ۳۵ درصد کمک‌ها به ایران و عراق می‌رسد."]


def test_span_confidence_is_the_product() -> None:
    assert span_confidence([0.9]) == pytest.approx(0.9)
    assert span_confidence([0.9, 0.5, 0.2]) == pytest.approx(0.09)
    assert span_confidence([0.9, 0.007]) < 0.01  # one forced tag sinks the span (the mean said 0.45)


@pytest.mark.parametrize("bad", [-0.01, 1.5, float("nan"), "x", True, None, [0.5]])
def test_check_min_score_refuses(bad) -> None:
    with pytest.raises(ValueError, match="min_score"):
        check_min_score(bad)


def test_check_min_score_accepts() -> None:
    assert check_min_score("0.9") == 0.9 and check_min_score(0) == 0.0 and check_min_score(1) == 1.0


def _brute_isotonic(xs: list[float], ys: list[float]) -> list[float]:
    """Least-squares non-decreasing fit by repeated pooling over sorted points (slow, obviously right)."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    levels = [[ys[i]] for i in order]
    changed = True
    while changed:
        changed = False
        for k in range(len(levels) - 1):
            if sum(levels[k]) / len(levels[k]) > sum(levels[k + 1]) / len(levels[k + 1]):
                levels[k] += levels.pop(k + 1)
                changed = True
                break
    return [sum(lv) / len(lv) for lv in levels for _ in lv]


def test_isotonic_fit_matches_pooling_and_is_monotone() -> None:
    rng = random.Random(0)
    xs = [rng.random() for _ in range(200)]
    ys = [int(rng.random() < x * x) for x in xs]  # over-confident raw scores
    cal = Calibrator.fit(xs, ys)
    assert [cal(x) for x in sorted(xs)] == pytest.approx(_brute_isotonic(xs, ys))  # the step fit at fitted scores
    grid = [i / 100 for i in range(101)]
    out = [cal(x) for x in grid]
    assert all(b >= a for a, b in pairwise(out))
    assert all(0.0 <= v <= 1.0 for v in out)


def test_ties_share_a_block() -> None:
    cal = Calibrator.fit([0.5, 0.5, 0.5, 0.9], [1, 0, 0, 1])
    assert cal(0.5) == pytest.approx(1 / 3) and cal(0.9) == 1.0 and cal(0.0) == pytest.approx(1 / 3)


def test_round_trip_and_bad_file(tmp_path: Path) -> None:
    cal = Calibrator.fit([0.1, 0.4, 0.7, 0.95], [0, 1, 0, 1], split="validation")
    cal.save(tmp_path)
    from parsner.inference.calibration import load_calibration

    back = load_calibration(tmp_path / CALIBRATION_FILE)
    assert back is not None and back.x == cal.x and back.y == cal.y and back.info["split"] == "validation"
    (tmp_path / CALIBRATION_FILE).write_text('{"method": "isotonic", "raw": "product", "x": [0.5, 0.2], '
                                             '"y": [0.1, 0.2]}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="calibration"):
        load_calibration(tmp_path / CALIBRATION_FILE)


@pytest.fixture(scope="module")
def calibrated_dir(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """The session model with a calibration.json that lifts every raw score to at least 0.3 (0.3 to 1.0)."""
    run = tmp_path_factory.mktemp("calibrated") / "run"
    shutil.copytree(model_dir, run)
    Calibrator(x=[0.0, 1.0], y=[0.3, 1.0]).save(run)
    return run


def test_tagger_applies_a_saved_calibration(tagger, calibrated_dir: Path) -> None:
    from parsner.inference.tagger import Tagger

    assert tagger.calibrator is None  # no calibration.json: raw scores
    cal = Tagger.from_pretrained(calibrated_dir, device="cpu")
    assert cal.calibrator is not None
    raw_docs, cal_docs = tagger.tag_documents(TEXTS), cal.tag_documents(TEXTS)
    pairs = [(r, c) for rd, cd in zip(raw_docs, cal_docs, strict=True)
             for r, c in zip(rd.entities, cd.entities, strict=True)]
    assert pairs, "the comparison is not vacuous"
    for r, c in pairs:
        assert (r["start"], r["end"], r["label"]) == (c["start"], c["end"], c["label"])
        assert c["score"] == pytest.approx(0.3 + 0.7 * r["score"])
    for doc in raw_docs:  # the raw score is the product of the entity's word probabilities
        for e in doc.entities:
            ws = [i for i, w in enumerate(doc.words) if e["start"] <= w.start and w.end <= e["end"]]
            assert e["score"] == pytest.approx(math.prod(doc.scores[i] for i in ws))
    off = Tagger.from_pretrained(calibrated_dir, device="cpu", calibrator=None)
    assert [e["score"] for e in off(TEXTS[0])] == pytest.approx([e["score"] for e in tagger(TEXTS[0])])


def test_min_score_drops_entities_and_their_tags(tagger) -> None:
    docs = tagger.tag_documents(TEXTS)
    scores = sorted(e["score"] for d in docs for e in d.entities)
    assert len(scores) >= 2
    floor = scores[len(scores) // 2]
    kept = tagger.tag_documents(TEXTS, min_score=floor)
    for full, part in zip(docs, kept, strict=True):
        assert part.entities == [e for e in full.entities if e["score"] >= floor]
        assert len(part.tags) == len(full.tags) and part.scores == full.scores
        from parsner.labels import spans_from_tags

        assert len(spans_from_tags(part.tags)) == len(part.entities)  # dropped entities' words are O
    with pytest.raises(ValueError, match="min_score"):
        tagger.tag_documents(TEXTS, min_score=2)


def test_calibration_file_is_json(calibrated_dir: Path) -> None:
    doc = json.loads((calibrated_dir / CALIBRATION_FILE).read_text(encoding="utf-8"))
    assert doc["method"] == "isotonic" and doc["raw"] == "product" and doc["version"] == 1


@pytest.mark.parametrize(("content", "why"), [
    (b'{"method": "isotonic", "method": "isotonic", "raw": "product", "x": [0.5], "y": [0.5]}', "duplicate key"),
    (b"[" * 5000 + b"]" * 5000, "nest"),
    (b'["isotonic"]', "a JSON object"),
    (b'{"method": "isotonic", "raw": "product", "x": ["0.5"], "y": [0.5]}', "list of numbers"),
    (b'{"method": "isotonic", "raw": "product", "x": [true], "y": [0.5]}', "list of numbers"),
    (b'{"method": "isotonic", "raw": "product", "x": [NaN], "y": [0.5]}', "list of numbers"),
    (b'{"method": "isotonic", "raw": "product", "x": [0.5], "y": [0.5], "info": [1]}', "info"),
    (b'{"method": "isotonic", "raw": "product", "x": [0.5], "y": [0.5]', "malformed"),
    (b"\xff\xfe{}", "UTF-8"),
])
def test_a_hostile_calibration_file_is_one_message(tmp_path: Path, content: bytes, why: str) -> None:
    """A model folder may come from anyone: what its calibration.json holds is checked, never trusted."""
    from parsner.inference.calibration import load_calibration

    (tmp_path / CALIBRATION_FILE).write_bytes(content)
    with pytest.raises(ModelLoadError, match=why) as err:
        load_calibration(tmp_path / CALIBRATION_FILE)
    assert str(tmp_path / CALIBRATION_FILE) in str(err.value) and "delete it" in str(err.value)


def test_an_oversized_calibration_file_is_refused_unread(tmp_path: Path) -> None:
    from parsner.inference import calibration

    path = tmp_path / CALIBRATION_FILE
    with open(path, "wb") as f:
        f.truncate(calibration.MAX_CALIBRATION_BYTES + 10)  # sparse: no memory or disk spent
    with pytest.raises(ModelLoadError, match="over 16 MiB"):
        calibration.load_calibration(path)
