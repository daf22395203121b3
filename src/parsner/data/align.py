"""Sub-word encoding of word-tokenised sentences, with label alignment and overlapping windows.

Public API (used by training, evaluation and inference):

``encode_words(sentences, tokenizer, labels=None, *, max_length=512, stride=128,
label_all_subtokens=False, label_names=None) -> Encoding``
    Tokenise already-split (and already normalised) words with a *fast* tokenizer
    (``is_split_into_words=True``, ``word_ids()``) and return one :class:`Window` per model input.

The way back, from per-window logits to one tag per word, is :mod:`parsner.inference.decoding`.

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

Texts must be normalised (``parsner.data.normalize``) before they reach this module; alignment is about
words, so character offsets stay with the caller.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
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


@dataclass(frozen=True)
class _Frame:
    """What every window shares: the special tokens around it, its sub-word budget, the labelling rule."""

    prefix_ids: list[int]
    suffix_ids: list[int]
    budget: int  # sub-words of a window, special tokens excluded
    label_all_subtokens: bool
    cont: dict[int, int]  # B-X id -> I-X id, for continuation pieces


def _continuation_map(
    labels: Sequence[Sequence[int]] | None, label_all_subtokens: bool, label_names: Sequence[str] | None
) -> dict[int, int]:
    if not (label_all_subtokens and labels is not None):
        return {}
    if label_names is None:
        raise ConfigError("label_all_subtokens needs the label names (to turn B- into I-)")
    return b_to_i_map(label_names)


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Special tokens before and after a window, taken from the tokenizer itself ([CLS]/[SEP], <s>/</s> ...)."""
    probe = tokenizer([["a"]], is_split_into_words=True, add_special_tokens=True)
    probe_ids, probe_wids = list(probe["input_ids"][0]), probe.word_ids(0)
    inner = [t for t, w in enumerate(probe_wids) if w is not None]
    return probe_ids[: inner[0]], probe_ids[inner[-1] + 1 :]


#: Words per sequence when the distinct words of a call are encoded (long enough to amortise the
#: tokenizer's per-sequence cost, short enough to stay under its length warning).
_WORDS_PER_CHUNK = 64
_PROBE_WORDS = ["a", "سلام", "a", "۱۲۳", "می\u200cشود", "a", "[UNK]", "a"]
_independent: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _words_independent(tokenizer: Any) -> bool:
    """Does this tokenizer encode each word of pre-split input on its own (as BERT's WordPiece does)?

    Then every distinct word of a call needs encoding once. Tokenizers whose output for a word depends on
    its position (a prefix marker only on the first word, say) are told apart by a probe sentence that
    repeats a word, and get every sentence encoded whole.
    """
    try:
        known = _independent.get(tokenizer)
    except TypeError:  # pragma: no cover - an object that cannot be weakly referenced: probe each call
        known = None
    if known is None:
        whole = tokenizer([_PROBE_WORDS], is_split_into_words=True, add_special_tokens=False)
        alone = tokenizer([[w] for w in _PROBE_WORDS], is_split_into_words=True, add_special_tokens=False)
        known = list(whole["input_ids"][0]) == [i for ids in alone["input_ids"] for i in ids]
        with contextlib.suppress(TypeError):
            _independent[tokenizer] = known
    return known


def _word_table(tokenizer: Any, words: list[str]) -> dict[str, list[int]]:
    """The sub-word ids of each distinct word (``[]`` for a word the tokenizer drops)."""
    table: dict[str, list[int]] = {}
    for c in range(0, len(words), _WORDS_PER_CHUNK):
        chunk = words[c : c + _WORDS_PER_CHUNK]
        enc = tokenizer([chunk], is_split_into_words=True, add_special_tokens=False)
        pieces: list[list[int]] = [[] for _ in chunk]
        for w, i in zip(enc.word_ids(0), enc["input_ids"][0], strict=True):
            if w is not None:
                pieces[w].append(i)
        table.update(zip(chunk, pieces, strict=True))
    return table


def _subword_ids(
    tokenizer: Any, words_in: list[list[str]], todo: list[int], unk: str
) -> tuple[list[list[int]], list[list[int]], int]:
    """Sub-word ids and sub-words per word for each sentence in ``todo``, and how many words gave no sub-word.

    Such words are replaced by ``unk`` in ``words_in``, so that every word keeps a position.
    """
    if not _words_independent(tokenizer):
        return _subword_ids_per_sentence(tokenizer, words_in, todo, unk)
    distinct = list(dict.fromkeys(w for i in todo for w in words_in[i]))
    table = _word_table(tokenizer, [*distinct, unk])
    if not table[unk]:  # pragma: no cover - tokenizer without unk
        raise ConfigError(f"a word gives no sub-token even as {unk!r}")
    ids_all: list[list[int]] = []
    nsub_all: list[list[int]] = []
    zero = 0
    for i in todo:
        pieces = [table[w] for w in words_in[i]]
        if not all(pieces):
            for w, p in enumerate(pieces):
                if not p:
                    words_in[i][w] = unk
                    pieces[w] = table[unk]
                    zero += 1
        ids_all.append([t for p in pieces for t in p])
        nsub_all.append([len(p) for p in pieces])
    return ids_all, nsub_all, zero


def _subword_ids_per_sentence(
    tokenizer: Any, words_in: list[list[str]], todo: list[int], unk: str
) -> tuple[list[list[int]], list[list[int]], int]:
    """:func:`_subword_ids` for tokenizers where a word's pieces depend on its place: whole sentences."""
    enc = tokenizer([words_in[i] for i in todo], is_split_into_words=True, add_special_tokens=False)
    redo: list[int] = []
    zero = 0
    for j, i in enumerate(todo):
        seen = {w for w in enc.word_ids(j) if w is not None}
        if len(seen) != len(words_in[i]):
            for w in range(len(words_in[i])):
                if w not in seen:
                    words_in[i][w] = unk
                    zero += 1
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
    nsub_all = []
    for j, i in enumerate(todo):
        n_sub = [0] * len(words_in[i])
        for w in wids_all[j]:
            n_sub[w] += 1
        nsub_all.append(n_sub)
    return ids_all, nsub_all, zero


def _window_labels(w: int, off: int, owned: bool, sent_labels: Sequence[int], frame: _Frame) -> int:
    """The label of sub-word ``off`` of word ``w``: only words this window owns are labelled."""
    if not owned:
        return IGNORE_INDEX
    gold = int(sent_labels[w])
    if off == 0:
        return gold
    if frame.label_all_subtokens:
        return frame.cont.get(gold, gold)
    return IGNORE_INDEX


def _assemble_window(
    sentence: int,
    k: int,
    span: tuple[int, int],
    ids: Sequence[int],
    pieces: tuple[list[int], list[int]],
    owner: Sequence[int],
    sent_labels: Sequence[int] | None,
    frame: _Frame,
) -> tuple[Window | None, int]:
    """Window ``k`` (words ``span``) of one sentence, and the words it had to cut; None if it labels no word."""
    s, e = span
    n_sub, first_tok = pieces
    if k not in owner[s:e]:
        return None, 0
    win_ids = list(frame.prefix_ids)
    win_wids: list[int | None] = [None] * len(frame.prefix_ids)
    win_labels = [IGNORE_INDEX] * len(frame.prefix_ids) if sent_labels is not None else None
    label_positions: list[int] = []
    cut = 0
    for w in range(s, e):
        take, owned = n_sub[w], owner[w] == k
        if take > frame.budget:
            take = frame.budget
            cut += owned
        if owned:
            label_positions.append(len(win_ids))
        win_ids += ids[first_tok[w] : first_tok[w] + take]
        win_wids += [w] * take
        if win_labels is not None:
            win_labels += [_window_labels(w, off, owned, sent_labels, frame) for off in range(take)]  # type: ignore[arg-type]
    win_ids += frame.suffix_ids
    win_wids += [None] * len(frame.suffix_ids)
    if win_labels is not None:
        win_labels += [IGNORE_INDEX] * len(frame.suffix_ids)
    return Window(sentence, win_ids, win_wids, label_positions, win_labels), cut


def _encode_sentence(
    sentence: int,
    ids: Sequence[int],
    n_sub: list[int],
    sent_labels: Sequence[int] | None,
    frame: _Frame,
    stride: int,
) -> tuple[list[Window], bool, int]:
    """The windows of one sentence, whether it needed more than one, and the words cut to fit a window."""
    pieces = (n_sub, list(itertools.accumulate(n_sub, initial=0))[:-1])  # sub-words, first sub-word
    bounds = _window_bounds(pieces[0], frame.budget, stride)
    owner = _owners(pieces[0], bounds, frame.budget)
    windows: list[Window] = []
    cut = 0
    for k, span in enumerate(bounds):
        win, n_cut = _assemble_window(sentence, k, span, ids, pieces, owner, sent_labels, frame)
        cut += n_cut
        if win is not None:
            windows.append(win)
    return windows, len(bounds) > 1, cut


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
    cont = _continuation_map(labels, label_all_subtokens, label_names)
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
    ids_all, nsub_all, result.zero_subtoken_words = _subword_ids(tokenizer, words_in, todo, unk)
    frame = _Frame(*_special_tokens(tokenizer), budget, label_all_subtokens, cont)
    for j, i in enumerate(todo):
        sent_labels = labels[i] if labels is not None else None
        windows, windowed, cut = _encode_sentence(
            i, ids_all[j], nsub_all[j], sent_labels, frame, stride
        )
        result.windows += windows
        result.windowed_sentences += windowed
        result.cut_words += cut
    return result


__all__ = ["IGNORE_INDEX", "Encoding", "Window", "b_to_i_map", "encode_words"]
