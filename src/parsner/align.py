"""Sub-word encoding of word-tokenised sentences, with label alignment and overlapping windows.

Public API (used by training, evaluation and inference):

``encode_words(sentences, tokenizer, labels=None, *, max_length=512, stride=128,
label_all_subtokens=False, label_names=None) -> Encoding``
    Tokenise already-split (and already normalised) words with a *fast* tokenizer
    (``is_split_into_words=True``, ``word_ids()``) and return one :class:`Window` per model input.

The way back, from per-window logits to one tag per word, is :mod:`parsner.decoding`.

Rules (the contract other modules rely on):

* **First sub-token labelling.** The first sub-token of a word carries the word's label, the other
  sub-tokens get ``-100``. ``label_all_subtokens=True`` (training only) labels continuation pieces too,
  with ``B-X`` turned into ``I-X``; decoding always reads the first sub-token.
* **Zero-sub-token words.** Some words vanish in the tokenizer (ParsBERT v1's normaliser deletes ZWNJ and
  combining marks, so a lone ``U+0654`` or a ZWNJ-only token gives no sub-word; so does an empty string).
  Such words are replaced by the tokenizer's unknown token (``[UNK]``) *before* tokenising, so each one
  still has a position, a label and a prediction. The substitution is counted in
  ``Encoding.zero_subtoken_words``; the user's words themselves are never changed.
* **No truncation.** A sentence whose sub-words do not fit in ``max_length`` (special tokens included) is
  split into overlapping windows made of whole words. Consecutive windows share about ``stride``
  sub-words of context (like the ``stride`` of HF tokenizers). Every word is *labelled* in exactly one
  window: the one where it is most central (largest distance, in sub-words, from the nearer window edge;
  ties go to the earlier window). In every other window its positions are ``-100``. So word-level
  metrics can be computed straight from the labelled positions, and decoding reads each word from the
  window where it had the most context. ``Encoding.windowed_sentences`` counts split sentences.
  A single word longer than a whole window (hundreds of sub-words) keeps its first sub-words only; it is
  still labelled and predicted, and the cut is counted in ``Encoding.cut_words``.
* Windows that label no word (possible only with a very large stride) are dropped.

Texts must be normalised (``parsner.normalize``) before they reach this module; alignment is about
words, so character offsets stay with the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parsner.errors import ConfigError

IGNORE_INDEX = -100


@dataclass
class Window:
    """One model input: a slice of one sentence with the special tokens around it."""

    sentence: int  # index of the sentence in the input of encode_words
    input_ids: list[int]
    word_ids: list[int | None]  # word index in the sentence for every position (None: special token)
    label_positions: list[int]  # positions of the first sub-token of each word this window labels
    labels: list[int] | None = None  # -100 except labelled positions (None when no labels were given)

    @property
    def labelled_words(self) -> list[int]:
        return [self.word_ids[p] for p in self.label_positions]  # type: ignore[misc]

    def features(self) -> dict[str, list[int]]:
        """The model inputs (``input_ids``, ``attention_mask``, ``labels`` if any) as plain lists."""
        out = {"input_ids": list(self.input_ids), "attention_mask": [1] * len(self.input_ids)}
        if self.labels is not None:
            out["labels"] = list(self.labels)
        return out


@dataclass
class Encoding:
    windows: list[Window] = field(default_factory=list)
    word_counts: list[int] = field(default_factory=list)  # words per input sentence
    windowed_sentences: int = 0  # sentences split over more than one window
    zero_subtoken_words: int = 0  # words replaced by the unknown token because they gave no sub-token
    cut_words: int = 0  # single words longer than a window (their tail sub-words were left out)

    def summary(self) -> dict[str, int]:
        return {
            "sentences": len(self.word_counts),
            "words": int(sum(self.word_counts)),
            "windows": len(self.windows),
            "windowed_sentences": self.windowed_sentences,
            "zero_subtoken_words": self.zero_subtoken_words,
            "cut_words": self.cut_words,
        }


def b_to_i_map(label_names: Sequence[str]) -> dict[int, int]:
    """``{id(B-X): id(I-X)}`` for the continuation pieces of ``label_all_subtokens``."""
    index = {name: i for i, name in enumerate(label_names)}
    out: dict[int, int] = {}
    for i, name in enumerate(label_names):
        if name.startswith("B-"):
            j = index.get("I-" + name[2:])
            if j is None:
                raise ConfigError(f"label {name} has no matching I-{name[2:]} in the label list")
            out[i] = j
    return out


def _unknown_token(tokenizer: Any) -> str:
    unk = getattr(tokenizer, "unk_token", None)
    if unk:
        return str(unk)
    # A tokenizer without an unknown token (rare: byte-level BPE always yields something anyway).
    return "?"


def _check_lengths(max_length: int, stride: int, n_special: int) -> int:
    budget = max_length - n_special
    if budget < 2:
        raise ConfigError(
            f"max_length={max_length} leaves no room for words next to {n_special} special tokens"
        )
    if not 0 <= stride < budget:
        raise ConfigError(
            f"stride={stride} must be >= 0 and smaller than max_length minus special tokens ({budget})"
        )
    return budget


def _window_bounds(n_sub: Sequence[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """Word ranges ``[start, end)`` of the windows of one sentence (whole words, ~stride overlap)."""
    n = len(n_sub)
    if sum(n_sub) <= budget:
        return [(0, n)]
    bounds: list[tuple[int, int]] = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and (used + n_sub[end] <= budget or end == start):
            used += n_sub[end]
            end += 1
        bounds.append((start, end))
        if end >= n:
            return bounds
        # Next start: the earliest word after `start` whose run up to `end` fits in `stride` sub-words.
        nxt, overlap = end, 0
        while nxt - 1 > start and overlap + n_sub[nxt - 1] <= stride:
            nxt -= 1
            overlap += n_sub[nxt]
        start = nxt


def _owners(n_sub: Sequence[int], bounds: Sequence[tuple[int, int]], budget: int) -> list[int]:
    """For each word, the index of the window where it is most central (ties: earlier window)."""
    if len(bounds) == 1:
        return [0] * len(n_sub)
    prefix = np.concatenate([[0], np.cumsum(np.minimum(n_sub, budget))])
    owner = [-1] * len(n_sub)
    best = [-1.0] * len(n_sub)
    for k, (s, e) in enumerate(bounds):
        lo, hi = prefix[s], prefix[e]
        for w in range(s, e):
            centre = (prefix[w] + prefix[w + 1]) / 2.0
            score = min(centre - lo, hi - centre)
            if score > best[w]:
                best[w], owner[w] = score, k
    return owner


def encode_words(
    sentences: Sequence[Sequence[str]],
    tokenizer: Any,
    labels: Sequence[Sequence[int]] | None = None,
    *,
    max_length: int = 512,
    stride: int = 128,
    label_all_subtokens: bool = False,
    label_names: Sequence[str] | None = None,
) -> Encoding:
    """Encode word lists into windows; see the module docstring for the rules.

    ``labels`` are label ids per word (same shape as ``sentences``). ``label_all_subtokens`` needs
    ``label_names`` (to map B- to I-). ``max_length`` counts special tokens.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("sub-word alignment needs a fast tokenizer (tokenizer.json); this one is slow")
    if labels is not None and len(labels) != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but {len(labels)} label sequences")
    cont: dict[int, int] = {}
    if label_all_subtokens and labels is not None:
        if label_names is None:
            raise ConfigError("label_all_subtokens needs the label names (to turn B- into I-)")
        cont = b_to_i_map(label_names)
    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    budget = _check_lengths(max_length, stride, n_special)
    unk = _unknown_token(tokenizer)

    result = Encoding(word_counts=[len(s) for s in sentences])
    words_in = [list(s) for s in sentences]
    if labels is not None:
        for i, (w, lab) in enumerate(zip(words_in, labels, strict=True)):
            if len(w) != len(lab):
                raise ValueError(f"sentence {i}: {len(w)} words but {len(lab)} labels")
    todo = [i for i, w in enumerate(words_in) if w]
    if not todo:
        return result
    enc = tokenizer([words_in[i] for i in todo], is_split_into_words=True, add_special_tokens=False)
    # Words with zero sub-tokens: substitute the unknown token and re-encode those sentences.
    redo: list[int] = []
    for j, i in enumerate(todo):
        seen = {w for w in enc.word_ids(j) if w is not None}
        if len(seen) != len(words_in[i]):
            for w in range(len(words_in[i])):
                if w not in seen:
                    words_in[i][w] = unk
                    result.zero_subtoken_words += 1
            redo.append(j)
    ids_all: list[list[int]] = [list(x) for x in enc["input_ids"]]
    wids_all: list[list[int]] = [[w for w in enc.word_ids(j)] for j in range(len(todo))]  # type: ignore[misc]
    if redo:
        retry = [words_in[todo[j]] for j in redo]
        enc2 = tokenizer(retry, is_split_into_words=True, add_special_tokens=False)
        for r, j in enumerate(redo):
            ids_all[j] = list(enc2["input_ids"][r])
            wids_all[j] = list(enc2.word_ids(r))  # type: ignore[arg-type]
            if len(set(wids_all[j])) != len(words_in[todo[j]]):  # pragma: no cover - tokenizer without unk
                raise ConfigError(f"sentence {todo[j]}: a word gives no sub-token even as {unk!r}")

    # Special tokens around a window, taken from the tokenizer itself (works for [CLS]/[SEP], <s>/</s> ...).
    probe = tokenizer([["a"]], is_split_into_words=True, add_special_tokens=True)
    probe_ids, probe_wids = list(probe["input_ids"][0]), probe.word_ids(0)
    inner = [t for t, w in enumerate(probe_wids) if w is not None]
    prefix_ids, suffix_ids = probe_ids[: inner[0]], probe_ids[inner[-1] + 1 :]

    for j, i in enumerate(todo):
        ids, wids = ids_all[j], wids_all[j]
        n_words = len(words_in[i])
        n_sub = [0] * n_words
        first_tok = [0] * n_words
        for t, w in enumerate(wids):
            if n_sub[w] == 0:
                first_tok[w] = t
            n_sub[w] += 1
        bounds = _window_bounds(n_sub, budget, stride)
        owner = _owners(n_sub, bounds, budget)
        if len(bounds) > 1:
            result.windowed_sentences += 1
        sent_labels = labels[i] if labels is not None else None
        for k, (s, e) in enumerate(bounds):
            owned = [w for w in range(s, e) if owner[w] == k]
            if not owned:
                continue
            win_ids = list(prefix_ids)
            win_wids: list[int | None] = [None] * len(prefix_ids)
            win_labels: list[int] | None = None
            if sent_labels is not None:
                win_labels = [IGNORE_INDEX] * len(prefix_ids)
            label_positions: list[int] = []
            owned_set = set(owned)
            for w in range(s, e):
                take = n_sub[w]
                if take > budget:
                    take = budget
                    if k == owner[w]:
                        result.cut_words += 1
                t0 = first_tok[w]
                for off in range(take):
                    position = len(win_ids)
                    win_ids.append(ids[t0 + off])
                    win_wids.append(w)
                    if w in owned_set and off == 0:
                        label_positions.append(position)
                    if win_labels is not None:
                        lab = IGNORE_INDEX
                        if w in owned_set:
                            gold = int(sent_labels[w])  # type: ignore[index]
                            if off == 0:
                                lab = gold
                            elif label_all_subtokens:
                                lab = cont.get(gold, gold)
                        win_labels.append(lab)
            win_ids += suffix_ids
            win_wids += [None] * len(suffix_ids)
            if win_labels is not None:
                win_labels += [IGNORE_INDEX] * len(suffix_ids)
            result.windows.append(Window(i, win_ids, win_wids, label_positions, win_labels))
    return result


# Decoding lives in parsner.decoding; these names stay importable from here.
from parsner.decoding import WordPredictions, decode_word_predictions, decode_words, viterbi_iob2  # noqa: E402

__all__ = [
    "IGNORE_INDEX", "Encoding", "Window", "WordPredictions", "b_to_i_map", "decode_word_predictions", "decode_words",
    "encode_words", "viterbi_iob2",
]
