"""From per-window model outputs back to exactly one tag (and probability) per word: argmax or Viterbi.

``decode_words(windows, predictions, word_counts, id2label=None, constrained=False) -> list[WordPredictions]``
turns the logits (or label ids) of the windows :func:`parsner.data.align.encode_words` made into one prediction per
word of every sentence, read at each word's first sub-token in the window that labels it.
``constrained=True`` decodes, per sentence, the most probable sequence that the labels' scheme allows
(:func:`viterbi_iob2` under :func:`parsner.labels.allowed_transitions`: IOB2, or BIOES for heads with ``E-``/``S-``
labels) instead of per-word argmax, so no orphan ``I-X`` is ever predicted.

Speed: the words of all sentences are gathered into one array, so softmax, argmax and the validity check run
once for the whole call, and the sentences whose argmax is invalid go through Viterbi together
(:func:`viterbi_many`, vectorised over sentences of similar length). The Tagger decodes every call this way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from parsner.labels import allowed_transitions

if TYPE_CHECKING:
    from parsner.data.align import Window

#: Words (sentences x longest sentence) one vectorised Viterbi pass holds: bounds its back-pointer array.
VITERBI_CHUNK_WORDS = 65_536


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
    if len(probs) == 0:
        return np.zeros(0, dtype=np.int64)
    return viterbi_many([probs], start, trans, end)[0]


def viterbi_many(
    probs: Sequence[np.ndarray], start: np.ndarray, trans: np.ndarray, end: np.ndarray | None = None
) -> list[np.ndarray]:
    """:func:`viterbi_iob2` of many non-empty sentences, vectorised over sentences of similar length."""
    order = sorted(range(len(probs)), key=lambda i: len(probs[i]), reverse=True)
    paths: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(probs)
    i = 0
    while i < len(order):
        longest = len(probs[order[i]])  # sorted longest first: the chunk's padded width
        # A chunk ends where sentences get shorter than half its width (less padding to step through).
        j = i + 1
        while j < len(order) and (j - i + 1) * longest <= VITERBI_CHUNK_WORDS and 2 * len(probs[order[j]]) > longest:
            j += 1
        group, i = order[i:j], j
        logp = np.zeros((len(group), longest, len(start)))
        for r, k in enumerate(group):
            logp[r, : len(probs[k])] = np.log(np.clip(probs[k], 1e-12, None))
        lengths = np.array([len(probs[k]) for k in group])
        for r, path in enumerate(_viterbi_padded(logp, lengths, start, trans, end)):
            paths[group[r]] = path
    return paths


def _viterbi_padded(
    logp: np.ndarray, lengths: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray | None
) -> list[np.ndarray]:
    """Viterbi over ``logp[b, :lengths[b]]`` for every row b at once (a row's score freezes past its end)."""
    n_rows, width, n_labels = logp.shape
    neg = np.where(trans, 0.0, -np.inf)  # [prev, cur]
    score = np.where(start, logp[:, 0], -np.inf)  # [row, label]
    back = np.zeros((n_rows, width, n_labels), dtype=np.int64)
    for t in range(1, width):
        cand = score[:, :, None] + neg  # [row, prev, cur]
        back[:, t] = cand.argmax(axis=1)
        best = np.take_along_axis(cand, back[:, t, None, :], axis=1)[:, 0, :] + logp[:, t]
        score = np.where((lengths > t)[:, None], best, score)
    if end is not None:
        ended = np.where(end, score, -np.inf)
        score = np.where(np.isfinite(ended).any(axis=1)[:, None], ended, score)
    rows = np.arange(n_rows)
    last = lengths - 1
    path = np.zeros((n_rows, width), dtype=np.int64)
    path[rows, last] = score.argmax(axis=1)
    for t in range(width - 1, 0, -1):
        path[:, t - 1] = np.where(last >= t, back[rows, t, path[:, t]], path[:, t - 1])
    return [path[r, : lengths[r]] for r in range(n_rows)]


def _gather(
    windows: Sequence[Window], predictions: Sequence[Any], word_counts: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Every word's row of its labelling window (logits or a label id), in sentence-then-word order.

    Returns ``(rows, offsets)``: ``rows[offsets[s] + w]`` is word ``w`` of sentence ``s``.
    """
    if len(predictions) != len(windows):
        raise ValueError(f"{len(windows)} windows but {len(predictions)} predictions")
    offsets = np.concatenate([[0], np.cumsum(word_counts, dtype=np.int64)])
    where: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    ndim = None
    for win, pred in zip(windows, predictions, strict=True):
        arr = np.asarray(pred)
        if arr.ndim not in (1, 2) or (ndim is not None and arr.ndim != ndim):
            raise ValueError(f"predictions must be all 1-D label ids or all 2-D logits, got shape {arr.shape}")
        ndim = arr.ndim
        rows.append(arr[win.label_positions])
        where.append(offsets[win.sentence] + np.fromiter((win.word_ids[p] for p in win.label_positions), np.int64))
    n = int(offsets[-1])
    idx = np.concatenate(where) if where else np.zeros(0, dtype=np.int64)
    hits = np.bincount(idx, minlength=n)
    for count, problem in ((2, "is labelled in two windows"), (0, "received no prediction")):
        bad = np.flatnonzero(hits >= 2) if count == 2 else np.flatnonzero(hits == 0)
        if len(bad):
            s = int(np.searchsorted(offsets, bad[0], side="right") - 1)
            raise ValueError(f"sentence {s}: word {int(bad[0] - offsets[s])} {problem}")
    if not rows:
        return np.zeros((0,)), offsets
    out = np.empty((n, *rows[0].shape[1:]), dtype=np.float64 if ndim == 2 else np.int64)
    out[idx] = np.concatenate(rows)
    return out, offsets


def _invalid_sentences(ids: np.ndarray, offsets: np.ndarray, start: np.ndarray, trans: np.ndarray,
                       end: np.ndarray) -> list[int]:
    """Sentences whose per-word argmax breaks the scheme (a bad start, transition or end)."""
    bad = np.zeros(len(ids), dtype=bool)  # marks the word where a violation shows
    if len(ids) > 1:
        bad[1:] = ~trans[ids[:-1], ids[1:]]
    first, last = offsets[:-1], offsets[1:] - 1
    nonempty = offsets[1:] > offsets[:-1]
    bad[first[nonempty]] = ~start[ids[first[nonempty]]]  # the first word has no predecessor in its sentence
    bad[last[nonempty]] |= ~end[ids[last[nonempty]]]
    words = np.flatnonzero(bad)
    return sorted({int(s) for s in np.searchsorted(offsets, words, side="right") - 1})


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
    rows, offsets = _gather(windows, predictions, word_counts)
    if rows.ndim == 2:
        probs = _softmax(rows)
        ids = probs.argmax(axis=-1)
        scores = probs[np.arange(len(ids)), ids]
    else:
        probs, ids, scores = None, rows.astype(np.int64), np.ones(len(rows))
    names = [id2label[i] for i in range(len(id2label))] if id2label is not None else None
    if constrained and names is not None and probs is not None:
        start, trans, end = allowed_transitions(names)
        bad = _invalid_sentences(ids, offsets, start, trans, end)
        sentence_probs = [probs[offsets[s] : offsets[s + 1]] for s in bad]
        for s, sp, path in zip(bad, sentence_probs, viterbi_many(sentence_probs, start, trans, end), strict=True):
            a = offsets[s]
            ids[a : a + len(path)] = path
            scores[a : a + len(path)] = sp[np.arange(len(path)), path]
    id_list, score_list = ids.tolist(), scores.tolist()
    results: list[WordPredictions] = []
    for s in range(len(word_counts)):
        a, b = int(offsets[s]), int(offsets[s + 1])
        sent_ids = id_list[a:b]
        tags = [names[i] for i in sent_ids] if names is not None else None
        results.append(WordPredictions(sent_ids, score_list[a:b], tags))
    return results


#: Older name, kept for callers.
decode_word_predictions = decode_words
