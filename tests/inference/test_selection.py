"""The active-learning selection strategies (parsner.inference.selection): pure functions, no model."""

from __future__ import annotations

import numpy as np
import pytest

from parsner.inference.selection import STRATEGIES, select, sentence_uncertainty


def test_sentence_uncertainty_is_one_minus_the_least_confident_word() -> None:
    assert sentence_uncertainty([0.99, 0.6, 0.95]) == pytest.approx(0.4)
    assert sentence_uncertainty([]) == 0.0
    assert sentence_uncertainty([1.0]) == 0.0


def test_uncertainty_picks_the_least_confident_sentences_ties_by_index() -> None:
    scores = [[0.99, 0.98], [0.5, 0.99], [0.9], [0.5], [], [0.7, 0.99, 0.99]]
    assert select("uncertainty", scores, 3, word_scores=scores) == [1, 3, 5]
    # sentence 2's only word (0.9) is surer than sentence 5's least sure one (0.7): it comes 4th
    assert select("uncertainty", scores, 4, word_scores=scores)[-1] == 2


def test_diverse_prefers_novel_words_over_a_copy_of_a_picked_sentence() -> None:
    words = [["علی", "به", "تهران", "رفت"], ["علی", "به", "تهران", "رفت"], ["مریم", "در", "مشهد", "ماند"]]
    scores = [[0.4, 0.9, 0.9, 0.9], [0.4, 0.9, 0.9, 0.9], [0.5, 0.9, 0.9, 0.9]]
    # by uncertainty alone the two copies come first
    assert select("uncertainty", words, 2, word_scores=scores) == [0, 1]
    # diverse: the copy's words are all known once sentence 0 is picked, so its gain falls to 0
    assert select("diverse", words, 2, word_scores=scores, words=words) == [0, 2]
    # words already annotated count as known too: sentence 0's novelty is gone before any pick
    assert select("diverse", words, 1, word_scores=scores, words=words, known_words=["علی", "به", "تهران"]) == [2]


def test_diverse_lower_cases_words_and_breaks_ties_by_index() -> None:
    words = [["Tehran", "Iran"], ["tehran", "IRAN"], ["Kabul"]]
    scores = [[0.5, 0.5], [0.5, 0.5], [0.5]]
    assert select("diverse", words, 3, word_scores=scores, words=words) == [0, 2, 1]


def test_diverse_matches_a_plain_greedy_on_random_inputs() -> None:
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(60)]
    words = [list(rng.choice(vocab, size=int(rng.integers(1, 8)))) for _ in range(200)]
    scores = [list(rng.uniform(0.3, 1.0, size=len(w))) for w in words]
    got = select("diverse", words, 40, word_scores=scores, words=words, known_words=vocab[:5])

    def gain(i: int, known: set[str]) -> tuple[float, int]:
        types = set(words[i])
        return -sentence_uncertainty(scores[i]) * len(types - known) / len(types), i

    known, picked = set(vocab[:5]), []
    for _ in range(40):  # the definition, recomputing every gain at every step
        best = min(gain(i, known) for i in range(len(words)) if i not in picked)[1]
        picked.append(best)
        known |= set(words[best])
    assert got == picked


def test_random_is_reproducible_with_a_seed_and_draws_without_replacement() -> None:
    a = select("random", range(100), 10, rng=7)
    assert a == select("random", range(100), 10, rng=np.random.default_rng(7))
    assert len(set(a)) == 10 and all(0 <= i < 100 for i in a)
    assert a != select("random", range(100), 10, rng=8)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_k_beyond_the_candidates_returns_all_and_nothing_returns_nothing(strategy: str) -> None:
    words = [["a", "b"], ["c"], ["a"]]
    scores = [[0.9, 0.8], [0.6], [0.99]]
    kw = {"word_scores": scores, "words": words, "rng": 1}
    assert sorted(select(strategy, words, 10, **kw)) == [0, 1, 2]
    assert select(strategy, words, 0, **kw) == []
    assert select(strategy, [], 3, word_scores=[], words=[], rng=1) == []


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="unknown selection strategy 'best'"):
        select("best", [1], 1)
    with pytest.raises(ValueError, match="word_scores is needed"):
        select("uncertainty", [1, 2], 1)
    with pytest.raises(ValueError, match="words has 1 entries for 2 candidates"):
        select("diverse", [1, 2], 1, word_scores=[[0.5], [0.5]], words=[["a"]])
