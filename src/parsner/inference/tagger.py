"""Inference on raw Persian text: ``Tagger.from_pretrained(dir)("متن ...")`` -> entities.

Pipeline, per text: normalise the whole text with an offset map (``parsner.data.normalize``) -> split it into
sentences and words (``parsner.data.wordtok``), each word mapped back to its span of the ORIGINAL text -> sub-word
encode the word lists (``is_split_into_words``) -> windows of at most ``max_length`` sub-tokens with overlap, so nothing
past 512 sub-tokens is lost -> logits -> one tag per word from its FIRST sub-token through ``word_ids()``
(not the HF pipeline's word-length heuristic, which breaks when the tokenizer's normaliser changes lengths)
-> IOB2 spans over words -> character offsets from the first word's start to the last word's end.
So ``entity["text"] == text[entity["start"]:entity["end"]]`` holds whatever the normaliser did.

Speed: all windows of all texts in one call are sorted by length and batched with dynamic padding under
``torch.inference_mode``; a batch holds at most ``batch_size`` windows and ``max_batch_tokens`` padded
sub-tokens (big batches of long windows were slower on CPU: cache); optional dynamic int8 quantisation of
the Linear layers (``quantize=True``). ``eval/bench_predict.py`` measures it against the HF pipeline.
torch/transformers are imported lazily so that importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, overload

from parsner import surrogates
from parsner.data.wordtok import Word
from parsner.errors import ModelLoadError
from parsner.inference.runmeta import DEFAULT_STRIDE  # windows overlap by this when parsner.json has no stride
from parsner.labels import load_label_map, model_labels, spans_from_tags, to_iob2

#: Default cap on padded sub-tokens per forward pass (see ``Tagger.max_batch_tokens``).
DEFAULT_MAX_BATCH_TOKENS = 2048


class Entity(TypedDict):
    """One entity found in a text, as the :class:`Tagger` returns it (a plain dict at run time).

    Attributes:
        text: The entity's characters, exactly ``original_text[start:end]``.
        label: Its canonical upper-case type (``PER``, ``LOC``, ...).
        start: Offset of its first character in the ORIGINAL text (code points; normalisation undone).
        end: Offset just past its last character.
        score: The entity's confidence: the probability of its span (the product of its words' tag probabilities,
            :mod:`parsner.inference.calibration`), calibrated when the model folder holds ``calibration.json``
            (``Tagger.calibrator``); ``Tagger.score_reduce`` ``"mean"``/``"min"`` give the older, uncalibrated
            readings.
    """

    text: str
    label: str
    start: int
    end: int
    score: float


@dataclass
class TaggedDoc:
    """Everything the tagger found in one text (the writers in :mod:`parsner.serving.render` use it)."""

    text: str
    words: list[Word]
    tags: list[str]
    scores: list[float]  # probability of each word's tag (first sub-token)
    sentence_word_ranges: list[tuple[int, int]]  # [start, end) word indices of each sentence
    entities: list[Entity] = field(default_factory=list)


class Tagger:
    """Tag raw Persian text with a token-classification model.

    ``tagger(text)`` -> list of :class:`Entity` dicts; ``tagger([t1, t2], batch_size=32)`` -> one list per text.
    ``tagger.predict_words([[w1, w2, ...], ...])`` -> one tag per given word (for evaluation).
    A text holding a lone surrogate (``"\\ud800"``, half of a UTF-16 pair) raises ``ValueError`` naming the
    text and the character: it is refused, not replaced (:mod:`parsner.surrogates` says why).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        normalizer: Any | None = None,
        *,
        max_length: int | None = None,
        stride: int | None = None,
        device: str | None = None,
        meta: dict[str, Any] | None = None,
        score_reduce: str = "product",
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
        constrained: bool | None = None,
        label_map: Mapping[str, str] | str | os.PathLike[str] | None = None,
        calibrator: Any | None = None,
        min_score: float = 0.0,
    ) -> None:
        from parsner.inference.backends import as_runner

        #: A word-level runner (the feature CRF, :mod:`parsner.inference.crf_tagger`) tags words itself: no tokenizer,
        #: no windows.
        self.word_level = bool(getattr(model, "word_level", False))
        if not self.word_level and not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError("the Tagger needs a fast tokenizer (tokenizer.json) for word_ids()")
        if score_reduce not in ("product", "mean", "min"):
            raise ValueError("score_reduce must be 'product', 'mean' or 'min'")
        from parsner.inference.calibration import check_min_score

        #: Entities whose (calibrated) score is below this are dropped, their words tagged O.
        self.min_score = check_min_score(min_score)
        #: The map from raw to calibrated entity scores (:class:`parsner.inference.calibration.Calibrator`), fitted
        #: on the raw ``product`` score: applied only with ``score_reduce="product"``. None: raw scores.
        self.calibrator = calibrator if score_reduce == "product" else None
        self.meta = dict(meta or {})
        #: Maps padded (input_ids, attention_mask) batches to logits: torch, or ONNX Runtime
        #: (parsner.inference.backends).
        self.runner = as_runner(model, device)
        self.device = self.runner.device
        self.model = self.runner.model  # the torch module (None with ONNX Runtime)
        model = self.runner
        self.tokenizer = tokenizer
        self.normalizer = normalizer
        self.score_reduce = score_reduce
        #: Decode the most probable *valid* IOB2 sequence per sentence (no orphan I- tags) instead of
        #: per-word argmax; False gives the plain argmax that the HF pipeline uses.
        self.constrained = bool(self.meta.get("constrained_decoding", True) if constrained is None else constrained)
        #: Cap on padded sub-tokens per forward pass: batches of long windows get fewer rows, so the
        #: activations stay cache-sized on CPU (None: only batch_size limits a batch).
        self.max_batch_tokens = max_batch_tokens
        self.model_labels = model_labels(
            model.config.id2label, _as_label_map(label_map), model=str(self.meta.get("model_name") or "the model")
        )
        self.id2label = dict(enumerate(self.model_labels.tags))
        # normalize_token is cached inside the normaliser; a word that would vanish comes back unchanged.
        self._norm = normalizer.normalize_token if normalizer is not None else _identity
        if self.word_level:
            self.max_length, self.stride = None, 0  # whole sentences, however long
        else:
            self._set_windows(model, tokenizer, max_length, stride)

    def _set_windows(self, model: Any, tokenizer: Any, max_length: int | None, stride: int | None) -> None:
        """Sub-words per window (the smallest of the asked, the model's and the tokenizer's limits) and overlap."""
        limits = [
            max_length or self.meta.get("max_length") or 512,
            getattr(model.config, "max_position_embeddings", None) or 512,
        ]
        model_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and 0 < model_max < 1_000_000:
            limits.append(model_max)
        self.max_length = int(min(limits))
        budget = self.max_length - tokenizer.num_special_tokens_to_add(pair=False)  # word sub-tokens/window
        if budget < 2:
            raise ValueError(f"max_length {self.max_length} leaves no room for words")
        stride = stride if stride is not None else self.meta.get("stride", DEFAULT_STRIDE)
        self.stride = max(0, min(int(stride), budget // 2))

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | os.PathLike[str],
        device: str | None = None,
        *,
        quantize: bool = False,
        backend: str | None = None,
        normalizer: str = "auto",
        **kwargs: Any,
    ) -> Tagger:
        """Load a ParsNER run directory (or any token-classification model dir / hub id).

        ``quantize=True`` applies dynamic int8 quantisation to the Linear layers (CPU only).
        Extra keyword arguments go to :class:`Tagger` (``max_length``, ``stride``, ``score_reduce``,
        ``max_batch_tokens``, ``label_map``: a preset, file or mapping applied to the model's labels, ``min_score``).
        The folder's ``calibration.json``, when there is one, calibrates entity scores (``calibrator=None`` here keeps
        the raw ones).
        ``normalizer``: ``auto`` (the model's normalizer.json, else the default for its hub id), a preset
        (``parsbert``, ``parsbert-zwnj``, ``none``) or a normalizer.json path. ``backend``: ``"torch"`` or
        ``"onnx"`` (default: ONNX Runtime when the directory holds ``model.onnx``, see
        :mod:`parsner.inference.backends`). Loading is :func:`parsner.inference.modeling.load_for_tagger`'s
        (safetensors preferred, pickles only through the restricted unpickler, no remote code, offline-safe).
        On a CPU where torch's default matrix kernels leave speed unused (AMD with full-width AVX-512), the
        fp32 Linear layers run through oneDNN instead (:func:`parsner.envinfo.onednn_linear_helps`; logits
        equal to rounding, ~1e-6).
        """
        from parsner.inference.modeling import load_for_tagger

        model, tokenizer, norm, meta, device = load_for_tagger(
            path_or_id, backend=backend, device=device, normalizer=normalizer, quantize=quantize
        )
        if "calibrator" not in kwargs:
            kwargs["calibrator"] = _saved_calibration(path_or_id)
        return cls(model, tokenizer, norm, device=device, meta=meta, **kwargs)

    @property
    def labels(self) -> list[str]:
        """Entity types the model can predict (canonical, after the label map), sorted (for legends)."""
        return self.model_labels.types

    # ------------------------------------------------------------------ public API

    @overload
    def __call__(self, texts: str, batch_size: int = 32) -> list[Entity]: ...

    @overload
    def __call__(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Entity]]: ...

    def __call__(self, texts: str | Sequence[str], batch_size: int = 32) -> Any:
        if isinstance(texts, str):
            return self.tag_documents([texts], batch_size=batch_size)[0].entities
        return [doc.entities for doc in self.tag_documents(list(texts), batch_size=batch_size)]

    def tag_documents(
        self, texts: Sequence[str], batch_size: int = 32, *, min_score: float | None = None
    ) -> list[TaggedDoc]:
        """Tag raw texts: per text a :class:`TaggedDoc` (words, tags, scores, entities; original offsets).

        ``min_score`` (default ``self.min_score``) drops entities scored below it; their words' tags become ``O``.
        """
        from parsner.inference.calibration import check_min_score

        floor = self.min_score if min_score is None else check_min_score(min_score)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, not str")
            _refuse_surrogate(text, f"text {i}")
        docs: list[TaggedDoc] = []
        seqs: list[list[str]] = []
        for text in texts:
            words, model_words, ranges = self._segment_normalized(text)
            docs.append(TaggedDoc(text, words, [], [], ranges))
            for s, e in ranges:
                seqs.append(model_words[s:e])
        results = self._run(seqs, batch_size)
        k = 0
        for doc in docs:
            for s, _ in doc.sentence_word_ranges:
                tags, scores = results[k]
                k += 1
                tags = list(tags)
                for ws, we, label in spans_from_tags(tags):
                    score = self.entity_score(scores[ws:we])
                    if score < floor:
                        tags[ws:we] = ["O"] * (we - ws)
                        continue
                    start, end = doc.words[s + ws].start, doc.words[s + we - 1].end
                    doc.entities.append(Entity(text=doc.text[start:end], label=label, start=start, end=end,
                                               score=score))
                doc.tags.extend(tags)
                doc.scores.extend(scores)
        return docs

    def entity_score(self, word_scores: Sequence[float]) -> float:
        """An entity's score from its words' tag probabilities: ``score_reduce``, then the calibration if any."""
        from parsner.inference.calibration import span_confidence

        if self.score_reduce == "min":
            return min(word_scores)
        if self.score_reduce == "mean":
            return sum(word_scores) / len(word_scores)
        raw = span_confidence(word_scores)
        return self.calibrator(raw) if self.calibrator is not None else raw

    def _segment_normalized(self, text: str) -> tuple[list[Word], list[str], list[tuple[int, int]]]:
        """Words of ``text`` with ORIGINAL offsets, the normalised word strings the model sees, sentence ranges.

        The whole text is normalised first and split into words there, so multi-part words that the
        normaliser joins (``می شود`` -> ``می‌شود``, as in the training data) reach the model as one word,
        exactly as at training time; each word is then mapped back to its span in the original text.
        """
        if self.normalizer is None:
            words, ranges = segment(text)
            return words, [w.text for w in words], ranges
        nt = self.normalizer.normalize(text)
        norm_words, ranges = segment(nt.text)
        if nt.text == text:  # nothing changed: the words are already the original's
            return norm_words, [w.text for w in norm_words], ranges
        spans = nt.spans_to_original([(w.start, w.end) for w in norm_words])
        words = [Word(text[a:b], a, b) for a, b in spans]
        return words, [w.text for w in norm_words], ranges

    def predict_words(
        self, sentences: Sequence[Sequence[str]], batch_size: int = 32, *, return_scores: bool = False
    ) -> Any:
        """One tag per given word of each pre-tokenised sentence (words are normalised like at training).

        Returns ``list[list[str]]``, or ``(tags, scores)`` with ``return_scores=True``.
        """
        for i, sent in enumerate(sentences):
            for j, word in enumerate(sent):
                _refuse_surrogate(word, f"sentence {i}, word {j}")
        seqs = [[self._norm(w) for w in sent] for sent in sentences]
        results = self._run(seqs, batch_size)
        tags = [r[0] for r in results]
        if return_scores:
            return tags, [r[1] for r in results]
        return tags

    # ------------------------------------------------------------------ internals

    def _run(self, sentences: list[list[str]], batch_size: int) -> list[tuple[list[str], list[float]]]:
        """Tags and scores for every (normalised) word sequence; all windows are batched together."""
        import numpy as np

        from parsner.data.align import encode_words
        from parsner.inference.decoding import decode_words

        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.word_level:
            return [(self._word_tags(tags), scores) for tags, scores in self.runner.tag_words(sentences)]
        enc = encode_words(sentences, self.tokenizer, max_length=self.max_length, stride=self.stride)
        windows = enc.windows
        # Longest first: similar lengths share a batch, so dynamic padding wastes little.
        order = sorted(range(len(windows)), key=lambda k: len(windows[k].input_ids), reverse=True)
        preds: list[Any] = [None] * len(windows)
        pad = self.tokenizer.pad_token_id or 0
        b0 = 0
        while b0 < len(order):
            width = len(windows[order[b0]].input_ids)  # the widest: windows are sorted longest first
            n = batch_size
            if self.max_batch_tokens:
                n = max(1, min(n, self.max_batch_tokens // width))
            batch = order[b0 : b0 + n]
            b0 += n
            ids = np.full((len(batch), width), pad, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for r, k in enumerate(batch):
                row = windows[k].input_ids
                ids[r, : len(row)] = row
                mask[r, : len(row)] = 1
            logits = self.runner(ids, mask)
            for r, k in enumerate(batch):
                preds[k] = logits[r]
        decoded = decode_words(windows, preds, enc.word_counts, self.id2label, constrained=self.constrained)
        return [(to_iob2(d.tags or []), d.scores) for d in decoded]


    def _word_tags(self, tags: list[str]) -> list[str]:
        """A word-level runner's tags in IOB2 (the head's scheme converted; an orphan I- begins an entity)."""
        from parsner.labels import repair_iob2

        return repair_iob2(to_iob2([self.id2label[self.runner.config.label2id[t]] for t in tags]))[0]


# ---------------------------------------------------------------------- helpers


def segment(text: str) -> tuple[list[Word], list[tuple[int, int]]]:
    """Words of ``text`` (offsets into it) and the [start, end) word ranges of its sentences (one pass)."""
    from parsner.data.wordtok import sentence_words

    words: list[Word] = []
    ranges: list[tuple[int, int]] = []
    for sent in sentence_words(text):
        ranges.append((len(words), len(words) + len(sent)))
        words.extend(sent)
    return words, ranges


def _refuse_surrogate(text: str, where: str) -> None:
    """A lone surrogate is refused, not replaced: see :mod:`parsner.surrogates` for why."""
    why = surrogates.problem(text)
    if why is not None:
        raise ValueError(f"{where}: {why}; replace it before tagging (e.g. with U+FFFD, which keeps offsets)")


def _saved_calibration(path_or_id: str | os.PathLike[str]) -> Any:
    """The calibration.json of a model folder (or hub repo), None where there is none."""
    from parsner.inference.calibration import CALIBRATION_FILE, load_calibration
    from parsner.inference.hub import fetch_optional, parse_spec

    spec = parse_spec(path_or_id)
    if spec.kind not in ("local", "hub"):
        return None
    return load_calibration(fetch_optional(spec, CALIBRATION_FILE))


def _identity(word: str) -> str:
    return word


def _as_label_map(spec: Mapping[str, str] | str | os.PathLike[str] | None) -> Mapping[str, str] | None:
    if spec is None or isinstance(spec, Mapping):
        return spec
    return load_label_map(spec)

