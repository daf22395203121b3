"""The stand-ins: models with random weights, for training when no real model can be downloaded.

``tiny`` / ``tiny:L``
    a small BERT (``L`` layers, default 2; hidden 128: :data:`TINY_DEFAULTS`) with random weights and a WordPiece
    vocabulary trained on the training split's (normalised) words (:func:`build_tiny_tokenizer`).
``parsbert-standin`` / ``parsbert-standin:L``
    ParsBERT v1's real tokenizer and config (``parsner.paths.parsbert_v1_tokenizer_dir()``, :func:`parsbert_dir`)
    with random weights, optionally only ``L`` layers. The real tokenizer's behaviour (ZWNJ deleted,
    ``[UNK]`` for Arabic kaf and ASCII digits) is exercised end to end; the scores are not ParsBERT's.

Public API: ``build_tiny(words, label_names, **options) -> (model, tokenizer)``, or its two halves
``build_tiny_tokenizer(words, vocab_size)`` / ``build_tiny_model(...)``; ``build_parsbert_standin(label_names,
layers)``; ``parsbert_dir()``; ``TINY_DEFAULTS`` (the training config's ``tiny_*`` defaults); ``label_maps(names)``
(the head's label fields of a config). :mod:`parsner.inference.modeling` chooses them for a spec
(:class:`parsner.inference.hub.ModelSpec`, whose ``stand_in`` is the honest description).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parsner.errors import ConfigError, ModelLoadError
from parsner.inference.runmeta import DEFAULT_MAX_LENGTH
from parsner.paths import parsbert_v1_tokenizer_dir

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
#: Sizes of the ``tiny`` stand-in, the one place they are written (the training config's defaults read them here).
TINY_DEFAULTS: dict[str, int] = {"layers": 2, "hidden": 128, "heads": 2, "intermediate": 512, "vocab_size": 8000}


def build_tiny_tokenizer(words: Any, vocab_size: int = TINY_DEFAULTS["vocab_size"]) -> Any:
    """A WordPiece tokenizer whose vocabulary is learnt from ``words`` (strings or lists of strings).

    The normaliser is only NFC + lower-casing: ZWNJ and Persian letters (آ, ئ, ...) are kept, unlike
    BERT's default normaliser (which strips ZWNJ and decomposes letters). It is wrapped in
    ``PreTrainedTokenizerFast`` so that ``save_pretrained`` writes ``tokenizer_class: TokenizersBackend``
    and the reload keeps this normaliser (``BertTokenizerFast`` would rebuild BERT's default one).

    The vocabulary is built here rather than by ``tokenizers``' ``WordPieceTrainer``, whose result
    changes from one process to the next (hash-map order breaks frequency ties), which would make
    "same seed, same data -> same model" false. Deterministically, by (-frequency, string): every
    character seen (as a word start and as a ``##`` continuation, so nothing in the training data is
    [UNK]), then whole words, then frequent 2-4 character word starts and ``##`` endings (Persian
    affixes such as ``##ها``), until ``vocab_size``.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    pre = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for item in words:
        for w in [item] if isinstance(item, str) else item:
            for piece, _ in pre.pre_tokenize_str(normalizer.normalize_str(w)):
                counts[piece] += 1

    def ranked(counter: Counter[str]) -> list[str]:
        return [k for k, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]

    chars: Counter[str] = Counter()
    affixes: Counter[str] = Counter()
    for word, n in counts.items():
        for i, ch in enumerate(word):
            chars[ch if i == 0 else "##" + ch] += n
        for k in range(2, min(4, len(word) - 1) + 1):
            affixes[word[:k]] += n
            affixes["##" + word[-k:]] += n
    vocab: dict[str, int] = {}
    for token in [*SPECIAL_TOKENS, *ranked(chars), *ranked(counts), *ranked(affixes)]:
        if len(vocab) >= max(vocab_size, len(SPECIAL_TOKENS) + len(chars)):
            break
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=DEFAULT_MAX_LENGTH,
    )


def parsbert_dir() -> Path:
    """The folder of ParsBERT v1's tokenizer and config that ``parsbert-standin`` uses (ModelLoadError if absent)."""
    d = parsbert_v1_tokenizer_dir()
    if not (d / "tokenizer.json").is_file() or not (d / "config.json").is_file():
        raise ModelLoadError(
            f"parsbert-standin needs ParsBERT v1's tokenizer and config in {d} (set PARSNER_SHARED to the "
            "shared folder), or use --model tiny"
        )
    return d


def label_maps(label_names: list[str]) -> dict[str, Any]:
    """A token-classification config's label fields (``num_labels``, ``id2label``, ``label2id``) for ``label_names``."""
    return {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }


def build_tiny_model(
    vocab_size: int,
    label_names: list[str],
    *,
    pad_token_id: int = 0,
    layers: int = TINY_DEFAULTS["layers"],
    hidden: int = TINY_DEFAULTS["hidden"],
    heads: int = TINY_DEFAULTS["heads"],
    intermediate: int = TINY_DEFAULTS["intermediate"],
    max_positions: int = DEFAULT_MAX_LENGTH,
) -> Any:
    """A randomly initialised BertForTokenClassification (seed torch before calling for reproducibility)."""
    from transformers import BertConfig, BertForTokenClassification

    if hidden % heads:
        raise ConfigError(f"tiny model: hidden size {hidden} is not a multiple of {heads} heads")
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
        **label_maps(label_names),
    )
    return BertForTokenClassification(config)


def build_tiny(words: Any, label_names: list[str], **options: int) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of the ``tiny`` stand-in: vocabulary from ``words``, random weights.

    ``options`` are those of :data:`TINY_DEFAULTS` (layers, hidden, heads, intermediate, vocab_size).
    """
    opts = {**TINY_DEFAULTS, **options}
    tokenizer = build_tiny_tokenizer(words, opts.pop("vocab_size"))
    model = build_tiny_model(len(tokenizer), label_names, pad_token_id=tokenizer.pad_token_id, **opts)
    return model, tokenizer


def build_parsbert_standin(label_names: list[str], layers: int | None = None) -> Any:
    """A token classifier with ParsBERT v1's config and random weights (only ``layers`` layers when given)."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    config = AutoConfig.from_pretrained(str(parsbert_dir()), trust_remote_code=False)
    if layers:
        config.num_hidden_layers = layers
    config.architectures = ["BertForTokenClassification"]
    for key, value in label_maps(label_names).items():
        setattr(config, key, value)
    return AutoModelForTokenClassification.from_config(config, trust_remote_code=False)
