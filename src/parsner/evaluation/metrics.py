"""Entity-level scores with seqeval (called directly: ``evaluate.load("seqeval")`` needs the Hub).

Two modes, both reported:

* ``default`` — conlleval-compatible (seqeval's default): an orphan ``I-X`` starts an entity.
* ``strict`` — seqeval ``mode="strict", scheme=IOB2``: only well-formed ``B-X (I-X)*`` chunks are entities,
  so an orphan ``I-X`` in a prediction is not an entity (a missed gold entity, never a hit).
  seqeval silently falls back to the default mode when ``mode="strict"`` is given *without* a scheme;
  this module always passes ``scheme=IOB2``.

Tags are normalised with :func:`parsner.labels.canonical_tag` first: seqeval reads ``B_ORG`` as type ``_ORG``
(it splits on ``-``) and warns instead of failing. Sentences without any entity are fine: precision, recall
and F1 are then 0 (seqeval's ``zero_division=0``), with no warning spam.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from parsner.labels import TagError, canonical_tag, spans_from_tags, strict_spans

MODES = ("default", "strict")


def canonical_sequences(seqs: Sequence[Sequence[str]], what: str = "tags") -> list[list[str]]:
    """Normalise every tag (``B_X`` -> ``B-X``, ``b-pers`` -> ``B-PER``).

    ValueError names the sentence and word of a tag that is not O/B-X/I-X.
    """
    out: list[list[str]] = []
    cache: dict[str, str] = {}  # a handful of distinct tags, millions of occurrences
    for i, seq in enumerate(seqs):
        if isinstance(seq, str):
            raise ValueError(f"{what}[{i}] is a string, expected a list of tags")
        row: list[str] = []
        for j, tag in enumerate(seq):
            norm = cache.get(tag)
            if norm is None:
                try:
                    norm = cache[tag] = canonical_tag(tag)
                except TagError as exc:
                    raise ValueError(f"{what}: sentence {i}, word {j}: {exc}") from exc
            row.append(norm)
        out.append(row)
    return out


def check_lengths(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    """Gold and pred must have the same sentences with the same number of words each."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} sentences but pred has {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: gold has {len(g)} tags but pred has {len(p)}")


def sentence_entities(tags: Sequence[str], mode: str) -> set[tuple[str, int, int]]:
    """The entities seqeval sees in one sentence of normalised tags, as ``(type, start, end_inclusive)``.

    The two readings are :mod:`parsner.labels`' (``spans_from_tags`` for ``default``, ``strict_spans`` for
    ``strict``); used for per-sentence counts and the bootstrap, property-tested against seqeval and
    cross-checked against seqeval's totals in :func:`score`.
    """
    if mode == "default":
        return {(t, s, e - 1) for s, e, t in spans_from_tags(tags)}
    if mode == "strict":
        return {(t, s, e - 1) for s, e, t in strict_spans(tags)}
    raise ValueError(f"unknown mode {mode!r} (expected one of {MODES})")


def _empty_avg(n_gold: int) -> dict[str, float | int]:
    return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": n_gold}


def _mode_scores(gold: list[list[str]], pred: list[list[str]], mode: str) -> dict[str, Any]:
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    n_gold = n_pred = n_correct = 0
    for g, p in zip(gold, pred, strict=True):
        ge, pe = sentence_entities(g, mode), sentence_entities(p, mode)
        n_gold += len(ge)
        n_pred += len(pe)
        n_correct += len(ge & pe)

    result: dict[str, Any] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_type": {}}
    if n_gold + n_pred == 0:
        # seqeval would average an empty array (NaN plus a RuntimeWarning); nothing to find, nothing found.
        for name in ("micro_avg", "macro_avg", "weighted_avg"):
            result[name] = _empty_avg(0)
    else:
        kwargs: dict[str, Any] = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zero_division=0 already decides the ill-defined cases
            report = classification_report(gold, pred, output_dict=True, zero_division=0, **kwargs)
        for key, row in report.items():
            entry = {
                "precision": float(row["precision"]),
                "recall": float(row["recall"]),
                "f1": float(row["f1-score"]),
                "support": int(row["support"]),
            }
            if key.endswith(" avg"):
                result[key.replace(" ", "_")] = entry
            else:
                result["per_type"][key] = entry
        micro = result["micro_avg"]
        result["precision"], result["recall"], result["f1"] = micro["precision"], micro["recall"], micro["f1"]
        expected_p = n_correct / n_pred if n_pred else 0.0
        if micro["support"] != n_gold or abs(micro["precision"] - expected_p) > 1e-9:  # pragma: no cover
            raise RuntimeError(f"{mode} entity counts disagree with seqeval's report (a ParsNER bug): "
                               f"support {micro['support']} vs {n_gold}, precision {micro['precision']} "
                               f"vs {expected_p}")
    result["n_gold"] = n_gold
    result["n_pred"] = n_pred
    result["n_correct"] = n_correct
    return result


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entity scores in both modes plus token accuracy and counts (the ``metrics.json`` schema).

    ``{"default": {precision, recall, f1, per_type: {TYPE: {precision, recall, f1, support}},
    micro_avg, macro_avg, weighted_avg, n_gold, n_pred, n_correct}, "strict": {same},
    "token_accuracy", "n_sentences", "n_tokens", "n_gold_entities", "n_pred_entities"}``
    (the top-level entity counts are those of the default mode).
    Raises ValueError on a length mismatch or an unknown tag.
    """
    check_lengths(gold, pred)
    g = canonical_sequences(gold, "gold")
    p = canonical_sequences(pred, "pred")
    out: dict[str, Any] = {mode: _mode_scores(g, p, mode) for mode in MODES}
    n_tokens = sum(len(s) for s in g)
    n_same = sum(a == b for gs, ps in zip(g, p, strict=True) for a, b in zip(gs, ps, strict=True))
    out["token_accuracy"] = n_same / n_tokens if n_tokens else 0.0
    out["n_sentences"] = len(g)
    out["n_tokens"] = n_tokens
    out["n_gold_entities"] = out["default"]["n_gold"]
    out["n_pred_entities"] = out["default"]["n_pred"]
    return out


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str) -> np.ndarray:
    """Per-sentence ``[correct, n_pred, n_gold]`` entity counts, shape ``(n_sentences, 3)``."""
    check_lengths(gold, pred)
    g = canonical_sequences(gold, "gold")
    p = canonical_sequences(pred, "pred")
    counts = np.zeros((len(g), 3), dtype=np.int64)
    for i, (gs, ps) in enumerate(zip(g, p, strict=True)):
        ge, pe = sentence_entities(gs, mode), sentence_entities(ps, mode)
        counts[i] = (len(ge & pe), len(pe), len(ge))
    return counts


def _f1(correct: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray) -> np.ndarray:
    denom = n_pred + n_gold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denom > 0, 2.0 * correct / np.maximum(denom, 1), 0.0)
    return f1


def bootstrap_f1_ci(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    mode: str = "default",
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Percentile bootstrap CI of micro F1, resampling sentences with replacement.

    Per-sentence counts are computed once; each resample is then a weighted sum (multinomial weights),
    done in chunks so memory stays bounded for large test sets. Deterministic for a given ``seed``.
    """
    return {**counts_f1_ci(sentence_counts(gold, pred, mode), n_resamples=n_resamples, seed=seed,
                           confidence=confidence), "mode": mode}


def counts_f1_ci(counts: np.ndarray, *, n_resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> dict[str, Any]:
    """:func:`bootstrap_f1_ci` from per-sentence ``[correct, n_pred, n_gold]`` counts (any way of counting)."""
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
    n = counts.shape[0]
    total = counts.sum(axis=0)
    point = float(_f1(total[0:1], total[1:2], total[2:3])[0])
    if n == 0:
        return {"f1": point, "low": point, "high": point, "confidence": confidence,
                "n_resamples": n_resamples, "seed": seed}
    rng = np.random.default_rng(seed)
    probs = np.full(n, 1.0 / n)
    chunk = max(1, min(n_resamples, 2_000_000 // max(n, 1)))
    f1s = np.empty(n_resamples, dtype=np.float64)
    done = 0
    while done < n_resamples:
        k = min(chunk, n_resamples - done)
        weights = rng.multinomial(n, probs, size=k)  # (k, n): how often each sentence is drawn
        sums = weights @ counts  # (k, 3)
        f1s[done:done + k] = _f1(sums[:, 0], sums[:, 1], sums[:, 2])
        done += k
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(f1s, [tail, 100.0 - tail])
    return {
        "f1": point,
        "low": float(low),
        "high": float(high),
        "std": float(f1s.std(ddof=1)) if n_resamples > 1 else 0.0,
        "confidence": confidence,
        "n_resamples": n_resamples,
        "seed": seed,
    }


def fmt_pct(x: float | None, digits: int = 2) -> str:
    """``0.9310`` -> ``93.10``; None/NaN -> ``–``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100.0 * x:.{digits}f}"
