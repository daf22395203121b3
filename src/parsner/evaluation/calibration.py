"""How far entity scores can be trusted: calibration error, reliability and threshold tables, and the fit.

An entity (a predicted span with its type) is **right** when a gold entity has exactly its words and type (spans
of :func:`parsner.labels.spans_from_tags`; the Tagger's tags are valid IOB2, so these are strict-mode entities).
Its score is the Tagger's (:mod:`parsner.inference.calibration`: the product of its words' tag probabilities,
calibrated when the model carries ``calibration.json``).

* **ECE** (expected calibration error, entity level): the entities are put in ``bins`` equal-width score bins
  ([0, 0.1), [0.1, 0.2), ..., [0.9, 1.0], a score of 1.0 in the last); ECE is the sum over bins of
  ``(entities in the bin / all entities) * |share right in the bin - mean score in the bin|``. Missed gold entities
  have no score and do not count (their cost is recall, in the threshold table).
* **Reliability table**: per bin, the entities, their mean score and the share right (the reliability diagram).
* **Threshold table**: precision, recall and F1 over the entities kept at each score threshold (``score >= t``);
  recall's denominator is every gold entity.
* **Fit** (after training, on the validation split): isotonic regression of right (1/0) on the raw score
  (:meth:`parsner.inference.calibration.Calibrator.fit`), saved as ``calibration.json`` in the model folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsner.labels import spans_from_tags

#: Thresholds of the threshold table.
THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
BINS = 10


@dataclass
class Outcomes:
    """Every predicted entity's score and whether it was right, and the number of gold entities."""

    scores: list[float]
    correct: list[bool]
    n_gold: int


def entity_outcomes(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], entity_scores: Sequence[dict[tuple, float]]
) -> Outcomes:
    """Outcomes of the predicted spans in ``pred``; ``entity_scores[i]`` maps sentence i's ``(start, end, type)``
    word spans (those of ``spans_from_tags(pred[i])``) to their scores."""
    scores: list[float] = []
    correct: list[bool] = []
    n_gold = 0
    for g, p, sc in zip(gold, pred, entity_scores, strict=True):
        gold_spans = set(spans_from_tags(list(g)))
        n_gold += len(gold_spans)
        for span in spans_from_tags(list(p)):
            scores.append(float(sc[span]))
            correct.append(span in gold_spans)
    return Outcomes(scores, correct, n_gold)


def sentence_entity_scores(
    tags: Sequence[Sequence[str]], word_scores: Sequence[Sequence[float]], score: Any
) -> list[dict[tuple, float]]:
    """Per sentence, ``{(start, end, type): score(word_scores[start:end])}`` over the spans of its tags."""
    return [{span: float(score(list(ws[span[0]:span[1]]))) for span in spans_from_tags(list(t))}
            for t, ws in zip(tags, word_scores, strict=True)]


def _bin_of(score: float, bins: int) -> int:
    return min(bins - 1, max(0, int(score * bins)))


def reliability_table(scores: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> list[dict[str, Any]]:
    """Per equal-width bin: ``lo``, ``hi``, ``entities``, ``mean_score`` and ``accuracy`` (None when empty)."""
    counts = [0] * bins
    sums = [0.0] * bins
    rights = [0] * bins
    for s, c in zip(scores, correct, strict=True):
        b = _bin_of(s, bins)
        counts[b] += 1
        sums[b] += s
        rights[b] += bool(c)
    return [{"lo": round(b / bins, 4), "hi": round((b + 1) / bins, 4), "entities": counts[b],
             "mean_score": sums[b] / counts[b] if counts[b] else None,
             "accuracy": rights[b] / counts[b] if counts[b] else None} for b in range(bins)]


def expected_calibration_error(scores: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> float | None:
    """Entity-level ECE over ``bins`` equal-width bins (None without entities)."""
    n = len(scores)
    if n == 0:
        return None
    return sum(row["entities"] / n * abs(row["accuracy"] - row["mean_score"])
               for row in reliability_table(scores, correct, bins) if row["entities"])


def threshold_table(outcomes: Outcomes, thresholds: Sequence[float] = THRESHOLDS) -> list[dict[str, Any]]:
    """Per threshold t, over the entities scored at least t: ``entities``, ``precision``, ``recall``, ``f1``."""
    rows = []
    for t in thresholds:
        kept = [c for s, c in zip(outcomes.scores, outcomes.correct, strict=True) if s >= t]
        tp = sum(kept)
        p = tp / len(kept) if kept else 0.0
        r = tp / outcomes.n_gold if outcomes.n_gold else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rows.append({"threshold": t, "entities": len(kept), "precision": p, "recall": r, "f1": f1})
    return rows


def confidence_report(outcomes: Outcomes, *, calibrated: bool) -> dict[str, Any]:
    """What metrics.json keeps under ``confidence``."""
    return {
        "score": "calibrated" if calibrated else "raw (no calibration.json)",
        "entities": len(outcomes.scores),
        "gold_entities": outcomes.n_gold,
        "ece": expected_calibration_error(outcomes.scores, outcomes.correct),
        "bins": BINS,
        "reliability": reliability_table(outcomes.scores, outcomes.correct),
        "thresholds": threshold_table(outcomes),
    }


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def confidence_markdown(conf: dict[str, Any], threshold_png: str | None = None,
                        reliability_png: str | None = None) -> list[str]:
    """report.md's section: the threshold table, the ECE and the reliability table (with the plots if drawn)."""
    ece = conf.get("ece")
    lines = ["", "## Entity scores", "",
             f"Scores are {conf['score']}; an entity is right when its words and type match a gold entity exactly.",
             "", "### Precision, recall and F1 by threshold (entities scored at least the threshold)", "",
             "| threshold | entities | precision | recall | F1 |", "|---:|---:|---:|---:|---:|"]
    for r in conf["thresholds"]:
        lines.append(f"| {r['threshold']:.2f} | {r['entities']} | {_pct(r['precision'])} | {_pct(r['recall'])} | "
                     f"{_pct(r['f1'])} |")
    if threshold_png:
        lines += ["", f"![precision, recall and F1 by threshold]({threshold_png})"]
    lines += ["", "### Calibration", "",
              f"Expected calibration error (entity level, {conf['bins']} equal-width bins): "
              + ("– (no entities)" if ece is None else f"**{ece:.4f}**"), "",
              "| score bin | entities | mean score | right |", "|---|---:|---:|---:|"]
    for r in conf["reliability"]:
        lines.append(f"| {r['lo']:.1f}–{r['hi']:.1f} | {r['entities']} | {_pct(r['mean_score'])} | "
                     f"{_pct(r['accuracy'])} |")
    if reliability_png:
        lines += ["", f"![reliability diagram]({reliability_png})"]
    return lines


def fit_calibration(tagger: Any, words: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], *,
                    split: str = "validation", batch_size: int = 32) -> Any:
    """A :class:`~parsner.inference.calibration.Calibrator` fitted on the tagger's RAW entity scores over
    ``words`` against ``gold`` (the validation split), its ECE before and after in ``info``; None without entities."""
    tags, word_scores = tagger.predict_words(words, batch_size=batch_size, return_scores=True)
    return fit_from_predictions(gold, tags, word_scores, split=split)


def fit_from_predictions(gold: Sequence[Sequence[str]], tags: Sequence[Sequence[str]],
                         word_scores: Sequence[Sequence[float]], *, split: str = "validation") -> Any:
    """The calibrator of predicted ``tags`` with their words' tag probabilities against ``gold`` (None without
    predicted entities)."""
    from parsner.inference.calibration import Calibrator, span_confidence

    out = entity_outcomes(gold, tags, sentence_entity_scores(tags, word_scores, span_confidence))
    if not out.scores:
        return None
    cal = Calibrator.fit(out.scores, out.correct, split=split, gold_entities=out.n_gold)
    cal.info["ece_raw"] = expected_calibration_error(out.scores, out.correct)
    cal.info["ece_fitted"] = expected_calibration_error(cal.apply(out.scores), out.correct)
    return cal


def calibrate_run(run_dir: str | Path, tagger: Any, words: Sequence[Sequence[str]],
                  gold: Sequence[Sequence[str]], **kwargs: Any) -> Any:
    """Fit on the validation split and save ``calibration.json`` into ``run_dir`` (nothing without entities)."""
    cal = fit_calibration(tagger, words, gold, **kwargs)
    if cal is not None:
        cal.save(run_dir)
    return cal
