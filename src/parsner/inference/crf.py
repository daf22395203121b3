"""The feature CRF as a Tagger backend: a run directory holding ``model.crfsuite`` tags words, not sub-words.

A CRF run (``model: crf``, :mod:`parsner.training.crf`) holds ``model.crfsuite`` (python-crfsuite's weights),
``crf.json`` (the feature settings and word-cluster table of :mod:`parsner.data.wordfeatures`), ``normalizer.json``
and ``parsner.json``. :class:`CrfRunner` is *word-level*: the Tagger hands it normalised words and gets back one tag
per word from the CRF's Viterbi path, with that tag's marginal probability as the word's score. Sentence splitting,
normalisation, offsets and spans stay the Tagger's, so entities and their offsets follow the same rules as a
network's. ``pip install 'parsner[crf]'`` installs python-crfsuite.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from parsner.errors import ModelLoadError

CRF_FILE = "model.crfsuite"
FEATURES_FILE = "crf.json"
CRF_EXTRA_HINT = "install the CRF extra: pip install 'parsner[crf]'"


def import_crfsuite() -> Any:
    try:
        import pycrfsuite
    except ImportError as exc:
        raise ModelLoadError(f"a feature-CRF model needs python-crfsuite: {CRF_EXTRA_HINT}") from exc
    return pycrfsuite


def is_crf_dir(path: str | Path) -> bool:
    return (Path(path) / CRF_FILE).is_file()


def read_feature_spec(directory: str | Path) -> Any:
    from parsner.data.wordfeatures import FeatureSpec

    path = Path(directory) / FEATURES_FILE
    try:
        return FeatureSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: missing; a CRF run needs its feature settings beside {CRF_FILE}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{path}: not valid CRF feature settings ({exc})") from None


class CrfRunner:
    """A trained feature CRF; ``tag_words(sentences)`` -> ``[(tags, scores)]``, one pair per sentence."""

    backend = "crf"
    word_level = True  # the Tagger passes words, not sub-word batches
    model = None
    device = "cpu"

    def __init__(self, directory: str | Path, labels: list[str]) -> None:
        pycrfsuite = import_crfsuite()
        self.path = Path(directory) / CRF_FILE
        self.spec = read_feature_spec(directory)
        self._tagger = pycrfsuite.Tagger()
        try:
            self._tagger.open(str(self.path))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{self.path}: python-crfsuite cannot open this model ({exc})") from None
        known = list(self._tagger.labels())
        labels = labels or sorted(known)
        if set(known) - set(labels):
            raise ModelLoadError(f"{self.path}: tags {sorted(set(known) - set(labels))} are not in parsner.json")
        self.config = SimpleNamespace(id2label=dict(enumerate(labels)), label2id={t: i for i, t in enumerate(labels)},
                                      max_position_embeddings=None, architectures=["FeatureCRF"])

    def tag_words(self, sentences: list[list[str]]) -> list[tuple[list[str], list[float]]]:
        from parsner.data.wordfeatures import sentence_features

        out: list[tuple[list[str], list[float]]] = []
        for words in sentences:
            if not words:
                out.append(([], []))
                continue
            self._tagger.set(sentence_features(words, self.spec))
            tags = list(self._tagger.tag())
            out.append((tags, [float(self._tagger.marginal(t, i)) for i, t in enumerate(tags)]))
        return out

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        raise TypeError("a feature CRF tags words: call tag_words(sentences)")


def load_crf_for_inference(path: str | Path, *, normalizer: str = "auto") -> tuple[Any, None, Any, dict[str, Any]]:
    """``(runner, None, normalizer, parsner_meta)`` of a CRF run directory (no tokenizer: it reads words)."""
    from parsner.data.normalize import choose_normalizer
    from parsner.inference.runmeta import RunMeta

    path = Path(path)
    meta = RunMeta.read(path).to_dict()
    runner = CrfRunner(path, list(meta.get("labels") or []))
    saved = path / "normalizer.json"
    norm, meta["normalizer_used"] = choose_normalizer(
        normalizer, saved=saved if saved.is_file() else None, named=meta.get("normalizer"), model=str(path))
    return runner, None, norm, meta
