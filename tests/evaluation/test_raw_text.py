"""Raw-text evaluation: sentences tagged as text, character spans scored beside the token-level scores."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from parsner.evaluation.rawtext import evaluate_raw_text, gold_char_spans, join_tokens
from parsner.inference.calibration import Calibrator
from parsner.inference.tagger import Tagger

ZWNJ = "\u200c"
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


class LexiconRunner:
    """A word-level runner that tags words by a lexicon: a way to know exactly what the Tagger will find."""

    backend = "lexicon"
    word_level = True
    model = None
    device = "cpu"

    def __init__(self, lexicon: dict[str, tuple[str, float]]) -> None:
        self.lexicon = lexicon
        self.config = SimpleNamespace(id2label=dict(enumerate(LABELS)), label2id={t: i for i, t in enumerate(LABELS)})
        self.seen: list[list[str]] = []

    def tag_words(self, sentences: list[list[str]]) -> list[tuple[list[str], list[float]]]:
        self.seen.extend(sentences)
        return [([self.lexicon.get(w, ("O", 0.9))[0] for w in s], [self.lexicon.get(w, ("O", 0.9))[1] for w in s])
                for s in sentences]


def lexicon_tagger(lexicon: dict[str, tuple[str, float]], **kwargs: object) -> Tagger:
    return Tagger(LexiconRunner(lexicon), None, None, meta={"model_name": "lexicon"}, **kwargs)


def test_joined_tokens_keep_their_offsets_with_zwnj_and_inner_spaces() -> None:
    tokens = ["کتاب" + ZWNJ + "ها", "انتهای پیام", "۱۴۰۲", "."]
    text, offsets = join_tokens(tokens)
    assert text == " ".join(tokens)
    assert [text[a:b] for a, b in offsets] == tokens
    text, spans = gold_char_spans(["علی", "رضایی", "در", "تهران"], ["B-PER", "I-PER", "O", "B-LOC"])
    assert {text[a:b]: t for a, b, t in spans} == {"علی رضایی": "PER", "تهران": "LOC"}


def test_spans_are_scored_exactly_and_a_wrong_boundary_counts_twice() -> None:
    tagger = lexicon_tagger({"علی": ("B-PER", 0.9), "رضایی": ("I-PER", 0.5), "تهران": ("B-LOC", 0.8),
                             "مشهد": ("B-PER", 0.6)})
    tokens = [["علی", "رضایی", "به", "تهران", "رفت"], ["مشهد", "زیباست"], ["حسن", "آمد"]]
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-LOC", "O"], ["B-PER", "O"]]
    out = evaluate_raw_text(tagger, tokens, gold, n_bootstrap=200)
    # right: علی رضایی (PER), تهران (LOC); wrong type: مشهد; missed: حسن
    assert (out["n_correct"], out["n_pred"], out["n_gold"]) == (2, 3, 4)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(0.5)
    assert out["per_type"]["LOC"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert out["bootstrap"]["low"] <= out["f1"] <= out["bootstrap"]["high"]
    conf = out["confidence"]
    assert conf["entities"] == 3 and conf["gold_entities"] == 4 and conf["score"].startswith("raw")
    # raw scores: products of the words' probabilities: 0.45 (right), 0.8 (right), 0.6 (wrong)
    assert conf["ece_raw"] == pytest.approx((abs(1 - 0.45) + abs(1 - 0.8) + abs(0 - 0.6)) / 3)
    assert conf["ece"] == conf["ece_raw"]


def test_calibrated_scores_are_reported_beside_the_raw_ones() -> None:
    cal = Calibrator(x=[0.0, 1.0], y=[0.0, 0.5])
    tagger = lexicon_tagger({"تهران": ("B-LOC", 0.8)}, calibrator=cal, min_score=0.9)
    out = evaluate_raw_text(tagger, [["تهران"]], [["B-LOC"]], n_bootstrap=0)
    # min_score does not hide entities from the evaluation; the calibrated score is 0.4, the raw 0.8
    assert out["n_pred"] == 1 and "bootstrap" not in out
    assert out["confidence"]["score"] == "calibrated"
    assert out["confidence"]["ece"] == pytest.approx(0.6) and out["confidence"]["ece_raw"] == pytest.approx(0.2)


def test_the_tagger_sees_its_own_words_not_the_corpus_tokens() -> None:
    """A corpus token holding a space is two words to the Tagger: token-level scoring cannot see that; this can."""
    runner = LexiconRunner({"نیویورک": ("B-LOC", 0.9), "تایمز": ("B-LOC", 0.9)})
    tagger = Tagger(runner, None, None, meta={"model_name": "lexicon"})
    out = evaluate_raw_text(tagger, [["نیویورک تایمز", "نوشت"]], [["B-LOC", "O"]], n_bootstrap=0)
    assert runner.seen == [["نیویورک", "تایمز", "نوشت"]]
    assert (out["n_correct"], out["n_pred"], out["n_gold"]) == (0, 2, 1)  # two one-word LOCs, not the gold span


def test_eval_reports_raw_text_beside_token_level(tmp_path: Path, model: str) -> None:
    from helpers.train import small_dataset
    from parsner.evaluation.api import evaluate

    data = small_dataset(tmp_path / "data", n_train=8, n_valid=12)
    res = evaluate(model, data, "validation", tmp_path / "ev", bootstrap=50)
    raw = res.metrics["raw_text"]
    assert raw["texts"] == res.metrics["n_sentences"] and raw["n_gold"] == res.metrics["strict"]["n_gold"]
    assert 0.0 <= raw["f1"] <= 1.0 and raw["confidence"]["entities"] == raw["n_pred"]
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["raw_text"]["n_pred"] == raw["n_pred"]
    assert "## Raw text (character spans)" in res.report and (tmp_path / "ev" / "raw_text_reliability.png").is_file()
    off = evaluate(model, data, "validation", None, bootstrap=0, raw_text=False)
    assert "raw_text" not in off.metrics and "Raw text" not in off.report
