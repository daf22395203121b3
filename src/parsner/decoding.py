"""From per-window model outputs back to exactly one tag (and probability) per word: argmax or Viterbi.

``decode_words(windows, predictions, word_counts, id2label=None, constrained=False) -> list[WordPredictions]``
turns the logits (or label ids) of the windows :func:`parsner.align.encode_words` made into one prediction per
word of every sentence, read at each word's first sub-token in the window that labels it.
``constrained=True`` decodes, per sentence, the most probable sequence that the labels' scheme allows
(:func:`viterbi_iob2` under :func:`parsner.labels.allowed_transitions`: IOB2, or BIOES for heads with ``E-``/``S-``
labels) instead of per-word argmax, so no orphan ``I-X`` is ever predicted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from parsner.labels import allowed_transitions

if TYPE_CHECKING:
    from parsner.align import Window


@dataclass
class WordPredictions:
    """Exactly one prediction per word of one sentence."""

    label_ids: list[int]
    scores: list[float]  # probability of the chosen label (1.0 when decoding label ids)
    tags: list[str] | None = None  # label names when id2label was given


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def viterbi_iob2(
    probs: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray | None = None
) -> np.ndarray:
    """The most probable label sequence (product of per-word probabilities) that the masks allow.

    Per-word softmax outputs are treated as independent emissions; only the transition constraints are
    added, so where the argmax sequence is already valid the result is the argmax sequence. ``end``
    (BIOES: a sentence may not end inside an entity) masks the last word's labels.
    """
    n_words, n_labels = probs.shape
    if n_words == 0:
        return np.zeros(0, dtype=int)
    logp = np.log(np.clip(probs, 1e-12, None))
    neg = np.where(trans, 0.0, -np.inf)  # [prev, cur]
    score = np.where(start, logp[0], -np.inf)
    back = np.zeros((n_words, n_labels), dtype=np.int64)
    for t in range(1, n_words):
        cand = score[:, None] + neg  # [prev, cur]
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], np.arange(n_labels)] + logp[t]
    if end is not None and np.isfinite(np.where(end, score, -np.inf)).any():
        score = np.where(end, score, -np.inf)
    path = np.zeros(n_words, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n_words - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def decode_words(
    windows: Sequence[Window],
    predictions: Sequence[Any],
    word_counts: Sequence[int],
    id2label: Mapping[int, str] | Sequence[str] | None = None,
    *,
    constrained: bool = False,
) -> list[WordPredictions]:
    """One label (and its probability) per word of every sentence.

    ``predictions[k]`` belongs to ``windows[k]``: either logits of shape ``(positions, n_labels)`` or label
    ids of shape ``(positions,)``; extra (padding) positions are ignored. ``word_counts`` are the words
    per sentence (``Encoding.word_counts``). Raises ``ValueError`` if a word has no prediction.

    ``constrained=True`` (logits and ``id2label`` needed) picks, per sentence, the most probable tag
    sequence that is valid in the labels' scheme (IOB2, or BIOES when ``E-``/``S-`` labels exist; see
    :func:`viterbi_iob2`) instead of each word's argmax, so no orphan ``I-X`` is ever predicted; a word's
    score is then the probability of the tag it got. Tags are returned in the labels' own scheme.
    """
    if len(predictions) != len(windows):
        raise ValueError(f"{len(windows)} windows but {len(predictions)} predictions")
    out_ids: list[list[int]] = [[-1] * n for n in word_counts]
    out_scores: list[list[float]] = [[0.0] * n for n in word_counts]
    out_probs: list[np.ndarray | None] = [None] * len(word_counts)
    for win, pred in zip(windows, predictions, strict=True):
        arr = np.asarray(pred)
        if arr.ndim == 2:
            rows = arr[win.label_positions].astype(np.float64)
            probs = _softmax(rows) if len(rows) else rows
            ids = probs.argmax(axis=-1) if len(rows) else np.zeros(0, dtype=int)
            scores = probs[np.arange(len(ids)), ids] if len(rows) else np.zeros(0)
            if constrained:
                if out_probs[win.sentence] is None:
                    out_probs[win.sentence] = np.zeros((word_counts[win.sentence], arr.shape[1]))
                sent_probs = out_probs[win.sentence]
                for r, p in enumerate(win.label_positions):
                    sent_probs[win.word_ids[p]] = probs[r]
        elif arr.ndim == 1:
            ids = arr[win.label_positions].astype(int)
            scores = np.ones(len(ids))
        else:
            raise ValueError(f"predictions must be 1-D label ids or 2-D logits, got shape {arr.shape}")
        for p, label_id, score in zip(win.label_positions, ids, scores, strict=True):
            w = win.word_ids[p]
            assert w is not None
            if out_ids[win.sentence][w] != -1:
                raise ValueError(f"sentence {win.sentence}: word {w} is labelled in two windows")
            out_ids[win.sentence][w] = int(label_id)
            out_scores[win.sentence][w] = float(score)
    names: list[str] | None = None
    if id2label is not None:
        names = [id2label[i] for i in range(len(id2label))]
    if constrained and names is not None:
        start, trans, end = allowed_transitions(names)
    results: list[WordPredictions] = []
    for s, (ids_s, sc_s) in enumerate(zip(out_ids, out_scores, strict=True)):
        if -1 in ids_s:
            raise ValueError(f"sentence {s}: word {ids_s.index(-1)} received no prediction")
        probs_s = out_probs[s]
        if constrained and names is not None and probs_s is not None:
            am = np.asarray(ids_s)
            if len(am) and start[am[0]] and end[am[-1]] and trans[am[:-1], am[1:]].all():
                path = am  # the per-word argmax is already valid, hence also the best valid path
            else:
                path = viterbi_iob2(probs_s, start, trans, end)
            ids_s = [int(i) for i in path]
            sc_s = [float(probs_s[w, i]) for w, i in enumerate(ids_s)]
        tags = [names[i] for i in ids_s] if names is not None else None
        results.append(WordPredictions(ids_s, sc_s, tags))
    return results


#: Older name, kept for callers.
decode_word_predictions = decode_words
