"""Raw-text evaluation: a split's sentences tagged as text, as users' text is, and scored on character spans.

The token-level harness hands the model the corpus's own words. Users hand it text: the Tagger normalises it,
splits it into sentences and words by its own rules and maps every entity back to character offsets. Here each
sentence's tokens are joined with one space (how the corpus's tokens join) into a text; a gold entity becomes the
characters from its first token's start to its last token's end; the text goes through
:meth:`~parsner.inference.tagger.Tagger.tag_documents` (every entity kept, whatever ``min_score``); a predicted
entity is right when its ``(start, end, type)`` is exactly a gold one's. What the token-level scores cannot see
counts here: words the Tagger splits or joins unlike the corpus, a sentence it splits in two.

The entities' scores get the same confidence report as the token-level ones (:mod:`parsner.evaluation.calibration`),
with the calibration error of the raw scores beside it (``ece_raw``: the same entities before ``calibration.json``),
so one run shows what calibration did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parsner.labels import spans_from_tags


def join_tokens(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The tokens joined with one space, and each token's ``(start, end)`` in that text."""
    offsets: list[tuple[int, int]] = []
    pos = 0
    for tok in tokens:
        offsets.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    return " ".join(tokens), offsets


def gold_char_spans(tokens: Sequence[str], tags: Sequence[str]) -> tuple[str, set[tuple[int, int, str]]]:
    """The sentence's text (:func:`join_tokens`) and its gold entities as ``(start, end, type)`` character spans."""
    text, offsets = join_tokens(tokens)
    return text, {(offsets[s][0], offsets[e - 1][1], t) for s, e, t in spans_from_tags(list(tags))}


def _doc_entities(tagger: Any, doc: Any) -> list[tuple[tuple[int, int, str], float, float]]:
    """``((start, end, type), score, raw score)`` of every entity the Tagger found in ``doc``."""
    from parsner.inference.calibration import span_confidence

    out = []
    for ws, we, label in spans_from_tags(list(doc.tags)):
        start, end = doc.words[ws].start, doc.words[we - 1].end
        scores = doc.scores[ws:we]
        score = tagger.entity_score(scores)
        raw = span_confidence(scores) if tagger.calibrator is not None else score  # uncalibrated: the same
        out.append(((start, end, label), float(score), float(raw)))
    return out


def _per_type(found: list[tuple[set, set]]) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support per entity type."""
    types = sorted({t for gold, pred in found for *_, t in gold | pred})
    out: dict[str, dict[str, Any]] = {}
    for typ in types:
        tp = sum(len({x for x in g & p if x[2] == typ}) for g, p in found)
        n_pred = sum(1 for _, p in found for x in p if x[2] == typ)
        n_gold = sum(1 for g, _ in found for x in g if x[2] == typ)
        out[typ] = {**_prf(tp, n_pred, n_gold), "support": n_gold}
    return out


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def evaluate_raw_text(tagger: Any, tokens: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], *,
                      batch_size: int = 32, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Tag every sentence of ``tokens`` as raw text and score character spans against ``gold`` (module docstring).

    Returns what ``metrics.json`` keeps under ``raw_text``: micro ``precision``/``recall``/``f1`` with the counts,
    ``bootstrap`` (percentile CI over sentences), ``per_type``, and ``confidence`` (threshold table, ECE and
    reliability of the entities' scores, and ``ece_raw``, the ECE of their raw scores).
    """
    import numpy as np

    from parsner.evaluation.calibration import Outcomes, confidence_report, expected_calibration_error
    from parsner.evaluation.metrics import counts_f1_ci

    texts, golds = zip(*(gold_char_spans(t, g) for t, g in zip(tokens, gold, strict=True)), strict=True) \
        if tokens else ((), ())
    docs = tagger.tag_documents(list(texts), batch_size=batch_size, min_score=0.0)
    found: list[tuple[set, set]] = []
    scores: list[float] = []
    raws: list[float] = []
    correct: list[bool] = []
    for doc, gold_spans in zip(docs, golds, strict=True):
        ents = _doc_entities(tagger, doc)
        pred_spans = {span for span, _, _ in ents}
        found.append((gold_spans, pred_spans))
        for span, score, raw in ents:
            scores.append(score)
            raws.append(raw)
            correct.append(span in gold_spans)
    counts = np.array([(len(g & p), len(p), len(g)) for g, p in found], dtype=np.int64).reshape(-1, 3)
    tp, n_pred, n_gold = (int(v) for v in counts.sum(axis=0))
    out: dict[str, Any] = {"texts": len(found), "join": "tokens joined with one space",
                           **_prf(tp, n_pred, n_gold), "n_correct": tp, "n_pred": n_pred, "n_gold": n_gold,
                           "per_type": _per_type(found)}
    if n_bootstrap > 0:
        out["bootstrap"] = counts_f1_ci(counts, n_resamples=n_bootstrap, seed=seed)
    calibrated = getattr(tagger, "calibrator", None) is not None
    out["confidence"] = confidence_report(Outcomes(scores, correct, n_gold), calibrated=calibrated)
    out["confidence"]["ece_raw"] = expected_calibration_error(raws, correct)
    return out


def raw_text_markdown(metrics: dict[str, Any]) -> list[str]:
    """report.md's section: raw-text span scores beside the token-level (strict) ones, and their calibration."""
    from parsner.evaluation.metrics import fmt_pct

    raw, strict = metrics["raw_text"], metrics["strict"]
    boot = raw.get("bootstrap")
    tok_boot = (metrics.get("bootstrap") or {}).get("strict")

    def ci(b: dict[str, Any] | None) -> str:
        return f"{fmt_pct(b['low'])} – {fmt_pct(b['high'])}" if b else "–"

    conf = raw["confidence"]
    ece, ece_raw = conf.get("ece"), conf.get("ece_raw")
    lines = ["", "## Raw text (character spans)", "",
             f"The {raw['texts']:,} sentences tagged as text ({raw['join']}), as `parsner predict` tags it; an "
             "entity is right when its characters and type are exactly a gold entity's.", "",
             "| scoring | precision | recall | F1 | F1 95% CI | correct / pred / gold |",
             "|---|---:|---:|---:|---|---|",
             f"| corpus tokens, strict (IOB2) | {fmt_pct(strict['precision'])} | {fmt_pct(strict['recall'])} | "
             f"{fmt_pct(strict['f1'])} | {ci(tok_boot)} | {strict['n_correct']} / {strict['n_pred']} / "
             f"{strict['n_gold']} |",
             f"| raw text, character spans | {fmt_pct(raw['precision'])} | {fmt_pct(raw['recall'])} | "
             f"**{fmt_pct(raw['f1'])}** | {ci(boot)} | {raw['n_correct']} / {raw['n_pred']} / {raw['n_gold']} |", ""]
    if ece is not None:
        before = f"; raw scores before calibration: {ece_raw:.4f}" if conf["score"] == "calibrated" else ""
        lines.append(f"Expected calibration error of the raw-text entities' scores ({conf['score']}): "
                     f"**{ece:.4f}**{before}.")
    return lines
