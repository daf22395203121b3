"""Which sentences to annotate next: the selection strategies of active learning (pure functions, numpy only).

A model has tagged every candidate sentence, giving each word the probability of its tag (``word_scores``: for the
feature CRF, the marginal probability of the word's Viterbi tag, as :class:`~parsner.inference.crf_tagger.CrfRunner`
returns it). :func:`select` picks ``k`` candidates by one of :data:`STRATEGIES`:

``random``
    ``k`` candidates drawn uniformly without replacement (``rng``). The baseline every other strategy has to beat:
    it is what annotating a corpus in any order costs.
``uncertainty``
    The ``k`` candidates the model is least sure of, by *least confident word*: :func:`sentence_uncertainty` =
    1 - the probability of the sentence's least certain word tag (the rule of ``parsner predict --order
    uncertainty``). One doubtful word is enough to make a sentence worth an annotator's look, so the minimum, not
    the mean, decides; a long sentence has more chances of holding a doubtful word, so this rule leans towards long
    sentences (count the words annotated, not only the sentences). Ties go to the lower index, so the choice is
    deterministic.
``diverse``
    Uncertainty, discounted for redundancy within the batch. A batch of the ``k`` most uncertain sentences is often
    the same doubt many times (one unknown name in many copies of a news template); annotating the second copy
    teaches little. Greedily, ``k`` times, the candidate of highest *gain* is taken, where gain = uncertainty x the
    share of the sentence's distinct lower-cased word types that are not yet *known*: known are ``known_words``
    (the words of the sentences already annotated) and the words of the sentences already picked for this batch.
    A sentence with no word, or whose words are all known, gains nothing; a sentence the model is sure of gains
    nothing either. Ties go to the lower index. Gains only fall as words become known, so the greedy loop is
    *lazy* (a heap of possibly stale gains; a stale top is recomputed and pushed back, and a top that is fresh is
    the true best): picking 500 of 8,000 candidates recomputes a small share of the gains per pick.

The serving layer may import this module (to order Label Studio tasks); it imports nothing of training.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

STRATEGIES = ("random", "uncertainty", "diverse")


def sentence_uncertainty(word_scores: Sequence[float]) -> float:
    """*Least confident word*: 1 - the probability of the sentence's least certain word tag (0.0 for no words)."""
    scores = list(word_scores)
    return 1.0 - float(min(scores)) if scores else 0.0


def select(strategy: str, candidates: Sequence[Any], k: int, *, word_scores: Sequence[Sequence[float]] | None = None,
           words: Sequence[Sequence[str]] | None = None, known_words: Iterable[str] | None = None,
           rng: Any = None) -> list[int]:
    """Positions (indices into ``candidates``) of the ``k`` candidates ``strategy`` picks, in the order picked.

    ``word_scores[i]`` are the tag probabilities of the words of ``candidates[i]`` (``uncertainty`` and ``diverse``),
    ``words[i]`` its words (``diverse``), ``known_words`` the words already annotated (``diverse``; lower-cased
    here), ``rng`` a ``numpy.random.Generator`` or a seed (``random``; None: a fresh unseeded generator). All
    candidates are returned when ``k`` is at least their number; none when ``k <= 0``. A ValueError names an unknown
    strategy or a missing or mis-sized input (see the module docstring for what each strategy measures)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    n = len(candidates)
    k = min(int(k), n)
    if strategy == "random":
        if k <= 0:
            return []
        import numpy as np

        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return [int(i) for i in gen.choice(n, size=k, replace=False)]
    scores = _parallel("word_scores", word_scores, n)
    if k <= 0:
        return []
    uncertain = [sentence_uncertainty(s) for s in scores]
    if strategy == "uncertainty":
        return sorted(range(n), key=lambda i: (-uncertain[i], i))[:k]
    types = [frozenset(w.lower() for w in sentence) for sentence in _parallel("words", words, n)]
    return _diverse(uncertain, types, {w.lower() for w in known_words or ()}, k)


def _parallel(name: str, values: Sequence[Any] | None, n: int) -> Sequence[Any]:
    """``values``, one per candidate, or a ValueError saying what is missing."""
    if values is None:
        raise ValueError(f"{name} is needed: one entry per candidate")
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} candidates")
    return values


def novel_share(types: frozenset[str], known: set[str]) -> float:
    """The share of ``types`` (distinct lower-cased words) not in ``known``; 0.0 for a sentence without words."""
    if not types:
        return 0.0
    return sum(1 for w in types if w not in known) / len(types)


def _diverse(uncertain: Sequence[float], types: Sequence[frozenset[str]], known: set[str], k: int) -> list[int]:
    """Lazy greedy: the heap holds (-gain, index, picks when the gain was computed); gains only fall."""
    heap = [(-u * novel_share(t, known), i, 0) for i, (u, t) in enumerate(zip(uncertain, types, strict=True))]
    heapq.heapify(heap)
    picked: list[int] = []
    while heap and len(picked) < k:
        _, i, stamp = heapq.heappop(heap)
        if stamp == len(picked):  # fresh: no other gain can beat it, ties go to the lower index
            picked.append(i)
            known.update(types[i])
        else:
            heapq.heappush(heap, (-uncertain[i] * novel_share(types[i], known), i, len(picked)))
    return picked
