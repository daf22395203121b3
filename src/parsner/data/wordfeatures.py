"""Word features for the feature CRF (``model: crf``): one string-valued feature dict per normalised word.

The same function serves training and inference, so a run tags with exactly the features it was trained on;
the settings and the word-cluster table are saved in the run directory (``crf.json``).

Per word: the word itself, its shape (letter classes, runs collapsed: ``a`` Persian/Arabic letter, ``L`` other
letter, ``0`` digit of any script, ``z`` ZWNJ, punctuation as itself), prefixes and suffixes up to
``affix`` characters (Persian marks case, number and possession with suffixes: ``ها``, ``های``, ``ی``), the parts of a
ZWNJ-joined word, and its word clusters (learnt from unlabelled text; words too rare to cluster get ``none``).
Neighbours within ``window`` words contribute their word, shape and clusters; the nearest ones their affixes too;
word bigrams with both neighbours tie a word to its context. Features of a neighbour carry its offset as a prefix.
With a gazetteer (names from other annotated corpora, :mod:`parsner.training.gazetteer`), every run of words that
is a name marks its first word ``gB:TYPE`` and the rest ``gI:TYPE``, and a word that occurs in some name of a type
gets ``gw:TYPE`` (surnames and first names recombine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

ZWNJ = "\u200c"

#: Bounds of the settings, shared by training's config (``crf_window``, ``crf_affix``, ``gazetteer_max_words``)
#: and by the check of a saved ``crf.json``: a run holds only what training could have written.
MAX_WINDOW = 5
MAX_AFFIX = 8
MAX_NAME_WORDS = 20
SPEC_KEYS = ("window", "affix", "clusters", "gazetteer")


class FeatureSpecError(ValueError):
    """Saved feature settings that :func:`sentence_features` must not run with; ``key`` names the culprit."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"key {key!r}: {message}")


@dataclass(frozen=True)
class FeatureSpec:
    """What :func:`sentence_features` computes; saved with a CRF run."""

    window: int = 2  # neighbours on each side that contribute features
    affix: int = 4  # longest prefix/suffix, in characters
    #: word -> its cluster ids, coarse to fine (empty: no cluster features)
    clusters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: "space-separated name words" -> the entity types it had in its sources (empty: no gazetteer features)
    gazetteer: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["clusters"] = {w: list(c) for w, c in self.clusters.items()}
        out["gazetteer"] = {n: list(t) for n, t in self.gazetteer.items()}
        return out

    @classmethod
    def from_dict(cls, data: Any) -> FeatureSpec:
        """The settings saved by :meth:`to_dict`, checked (:class:`FeatureSpecError` naming the key): nothing is
        coerced, since a coerced value (``"4_1"`` read as the ids ``4``, ``_``, ``1``) silently changes the features."""
        if not isinstance(data, Mapping):
            raise FeatureSpecError("(top level)", f"expected an object with {', '.join(SPEC_KEYS)}")
        for key in SPEC_KEYS:
            if key not in data:
                raise FeatureSpecError(key, "missing")
        unknown = sorted(set(data) - set(SPEC_KEYS))
        if unknown:  # a key of a newer parsner would change the features without this one knowing
            raise FeatureSpecError(str(unknown[0]), f"unknown (this parsner reads {', '.join(SPEC_KEYS)})")
        return cls(window=_bounded(data, "window", MAX_WINDOW), affix=_bounded(data, "affix", MAX_AFFIX),
                   clusters=_cluster_table(data["clusters"]), gazetteer=_name_table(data["gazetteer"]))

    @cached_property
    def name_index(self) -> tuple[int, dict[str, list[str]]]:
        """(words in the longest gazetteer name, word -> the sorted types of the names it occurs in)."""
        longest, words = 0, {}
        for name, types in self.gazetteer.items():
            parts = name.split(" ")
            longest = max(longest, len(parts))
            for w in parts:
                words.setdefault(w, set()).update(types)
        # sorted, so every process emits features in one order (crfsuite numbers them as it meets them)
        return longest, {w: sorted(ts) for w, ts in words.items()}


def _bounded(data: Mapping[str, Any], key: str, most: int) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise FeatureSpecError(key, f"{value!r:.40} is not a whole number from 0 to {most}")
    return value


def _strings(key: str, owner: str, values: Any) -> list[str]:
    """A JSON array of non-empty strings (a lone string would be read as its characters)."""
    if not isinstance(values, list) or not values:
        raise FeatureSpecError(key, f"{owner!r:.60}: expected a non-empty list of strings, not {values!r:.40}")
    for v in values:
        if not isinstance(v, str) or not v:
            raise FeatureSpecError(key, f"{owner!r:.60}: {v!r:.40} is not a non-empty string")
    return list(values)


def _cluster_table(table: Any) -> dict[str, list[str]]:
    """word -> cluster ids, one id per granularity: every word has as many (what build_clusters writes)."""
    if not isinstance(table, dict):
        raise FeatureSpecError("clusters", f"expected an object (word -> cluster ids), not {table!r:.40}")
    out: dict[str, list[str]] = {}
    levels = None
    for word, ids in table.items():
        out[word] = _strings("clusters", word, ids)
        if levels is None:
            levels = len(ids)
        elif len(ids) != levels:
            raise FeatureSpecError("clusters", f"{word!r:.60} has {len(ids)} cluster ids, other words {levels}")
    return out


def _name_table(table: Any) -> dict[str, list[str]]:
    """"space-separated name words" -> entity types, names of 1 to MAX_NAME_WORDS words."""
    if not isinstance(table, dict):
        raise FeatureSpecError("gazetteer", f"expected an object (name -> entity types), not {table!r:.40}")
    out: dict[str, list[str]] = {}
    for name, types in table.items():
        if not name or not 1 <= len(name.split(" ")) <= MAX_NAME_WORDS:
            raise FeatureSpecError("gazetteer", f"{name!r:.60} is not a name of 1 to {MAX_NAME_WORDS} words")
        out[name] = _strings("gazetteer", name, types)
    return out


def shape(word: str) -> str:
    """Letter classes of ``word``, runs collapsed: ``"۱۳۹۸"`` -> ``0``, ``"می‌شود"`` -> ``aza``, ``"G8"`` -> ``L0``."""
    out: list[str] = []
    for ch in word:
        if ch.isdigit():
            c = "0"
        elif "\u0600" <= ch <= "\u06ff" or "\ufb50" <= ch <= "\ufeff":
            c = "a"
        elif ch.isalpha():
            c = "L"
        elif ch == ZWNJ:
            c = "z"
        else:
            c = ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def _word(word: str, prefix: str, spec: FeatureSpec, affixes: bool, out: dict[str, str]) -> None:
    out[prefix + "w"] = word
    out[prefix + "sh"] = shape(word)
    if affixes:
        for k in range(1, spec.affix + 1):
            if len(word) > k:
                out[f"{prefix}p{k}"] = word[:k]
                out[f"{prefix}s{k}"] = word[-k:]
        if ZWNJ in word:
            parts = word.split(ZWNJ)
            out[prefix + "z0"] = parts[0]
            out[prefix + "z1"] = parts[-1]
    if spec.clusters:
        ids = spec.clusters.get(word)
        if ids is None:
            out[prefix + "c"] = "none"
        else:
            for k, c in enumerate(ids):
                out[f"{prefix}c{k}"] = c


def sentence_features(words: Sequence[str], spec: FeatureSpec) -> list[dict[str, str]]:
    """One feature dict per word of a sentence (words already normalised as at training)."""
    n = len(words)
    feats: list[dict[str, str]] = []
    for i, word in enumerate(words):
        f: dict[str, str] = {"bias": ""}
        _word(word, "", spec, True, f)
        for off in range(-spec.window, spec.window + 1):
            j = i + off
            if off == 0:
                continue
            if 0 <= j < n:
                _word(words[j], f"{off}:", spec, abs(off) == 1, f)
            else:
                f[f"{off}:pad"] = ""
        if i > 0:
            f["bg-"] = words[i - 1] + "|" + word
        if i < n - 1:
            f["bg+"] = word + "|" + words[i + 1]
        feats.append(f)
    if spec.gazetteer:
        _gazetteer(words, spec, feats)
    return feats


def _gazetteer(words: Sequence[str], spec: FeatureSpec, feats: list[dict[str, str]]) -> None:
    longest, name_words = spec.name_index
    for i, word in enumerate(words):
        for t in name_words.get(word, ()):
            feats[i]["gw:" + t] = ""
        for n in range(1, min(longest, len(words) - i) + 1):
            for t in spec.gazetteer.get(" ".join(words[i : i + n]), ()):
                feats[i]["gB:" + t] = ""
                for j in range(i + 1, i + n):
                    feats[j]["gI:" + t] = ""
