"""Load models and tokenizers offline-safely; build the honest stand-ins used when nothing can be downloaded.

Model specs (``--model`` / ``model:`` in a run config):

``path/to/dir``
    a local model directory (a ParsNER run, or any HF model saved with ``save_pretrained``).
``Org/name`` (hub id)
    e.g. ``HooshvareLab/bert-fa-base-uncased``, ``HooshvareLab/bert-fa-zwnj-base``,
    ``HooshvareLab/bert-base-parsbert-uncased``, ``xlm-roberta-base``. Loaded with ``from_pretrained``;
    when offline (``HF_HUB_OFFLINE=1``) only the local HF cache is read (``local_files_only``), so a model
    that is not cached fails at once with a :class:`~parsner.errors.ModelLoadError` that says how to proceed.
``tiny`` / ``tiny:L``
    **stand-in**: a small BERT (``L`` layers, default 2; hidden 128) with random weights and a WordPiece
    vocabulary trained on the training split's (normalised) words with the ``tokenizers`` library.
``parsbert-standin`` / ``parsbert-standin:L``
    **stand-in**: ParsBERT v1's real tokenizer and config (``parsner.paths.parsbert_v1_tokenizer_dir()``)
    with random weights, optionally only ``L`` layers. The real tokenizer's behaviour (ZWNJ deleted,
    ``[UNK]`` for Arabic kaf and ASCII digits) is exercised end to end; the scores are not ParsBERT's.

Safety: ``trust_remote_code`` is never enabled, weights are loaded from safetensors only
(``use_safetensors=True``), and nothing ever falls back silently to another model.

Public API (other modules import these):

* ``parse_spec(spec) -> ModelSpec`` and ``ModelSpec.stand_in`` (``None`` or the honest description).
* ``load_tokenizer(spec, train_words=None, ...)`` — for ``tiny`` the vocabulary is trained on ``train_words``.
* ``load_model(spec, label_names, tokenizer=None, ...)`` — a token-classification model with our labels.
* ``build_tiny(words, label_names, **options) -> (model, tokenizer)``, or its two halves
  ``build_tiny_tokenizer(words, vocab_size)`` / ``build_tiny_model(...)``.
* ``existing_label_names(spec)`` — the label order of a checkpoint that already is a token classifier.
* ``load_for_inference(path_or_id, device=None) -> (model, tokenizer, normalizer, parsner_meta)``:
  the model in eval mode on ``device`` (default: CUDA if available, else CPU), its tokenizer, the
  ``PersianNormalizer`` saved with it (``None`` for a plain HF model without ``normalizer.json``) and the
  contents of ``parsner.json`` (defaults ``max_length``/``stride`` filled in for plain HF models).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError, ModelLoadError
from parsner.paths import parsbert_v1_tokenizer_dir

#: Written next to every stand-in (parsner.json, model card, logs).
STAND_IN_WARNING = "stand-in, random init, scores are NOT ParsBERT's"

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DEFAULT_MAX_LENGTH = 512
DEFAULT_STRIDE = 128

#: Defaults of the ``tiny`` stand-in (overridable through ``tiny_options``).
TINY_DEFAULTS: dict[str, int] = {
    "layers": 2,
    "hidden": 128,
    "heads": 2,
    "intermediate": 512,
    "vocab_size": 8000,
}

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "local" | "hub" | "tiny" | "parsbert-standin"
    name: str  # the path, hub id, or stand-in name as given
    layers: int | None = None  # stand-ins: number of layers (None = default)

    @property
    def stand_in(self) -> str | None:
        """The honest description of a stand-in, or None for a real model."""
        if self.kind == "tiny":
            return f"tiny BERT {STAND_IN_WARNING}; WordPiece vocabulary trained on the training split"
        if self.kind == "parsbert-standin":
            layers = f"{self.layers} layers" if self.layers else "full depth"
            return (
                f"ParsBERT v1 tokenizer/config with random weights ({layers}): {STAND_IN_WARNING}"
            )
        return None


def parse_spec(spec: str | Path) -> ModelSpec:
    """Classify a model spec; raises ModelLoadError for a path that does not exist or a malformed id."""
    text = str(spec).strip()
    if not text:
        raise ConfigError("model spec is empty (use a local path, a hub id, 'tiny' or 'parsbert-standin')")
    for stand_in in ("tiny", "parsbert-standin"):
        if text == stand_in or text.startswith(stand_in + ":"):
            layers = None
            if ":" in text:
                raw = text.split(":", 1)[1]
                if not raw.isdigit() or int(raw) < 1:
                    raise ConfigError(f"model {text!r}: after ':' comes a positive number of layers")
                layers = int(raw)
            return ModelSpec(stand_in, text, layers)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"model {text!r} is a file; give the directory that holds config.json")
        return ModelSpec("local", str(path))
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text
    if looks_like_path or not _HUB_ID_RE.match(text):
        raise ModelLoadError(f"model directory {text!r} does not exist (and it is not a hub id)")
    return ModelSpec("hub", text)


def hub_offline() -> bool:
    """True when the Hugging Face Hub must not be contacted (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - very old huggingface_hub
        return False


def _how_to_proceed(name: str) -> str:
    return (
        f"model {name!r} is not available offline (HF_HUB_OFFLINE=1 and it is not in the local Hugging Face "
        "cache). To proceed: (1) pass a local directory that holds the model (config.json, "
        "model.safetensors, tokenizer files); (2) populate the cache on a machine with internet "
        f"(`hf download {name}`) and copy ~/.cache/huggingface here; or (3) use a stand-in: "
        "--model tiny or --model parsbert-standin (random weights, scores are NOT ParsBERT's)."
    )


def _load_kwargs(spec: ModelSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": False}
    if spec.kind == "hub" and hub_offline():
        kwargs["local_files_only"] = True
    return kwargs


def _wrap_error(spec: ModelSpec, what: str, exc: Exception) -> ModelLoadError:
    if spec.kind == "hub" and hub_offline():
        return ModelLoadError(_how_to_proceed(spec.name))
    return ModelLoadError(f"cannot load the {what} of {spec.name!r}: {exc}")


# --------------------------------------------------------------------------------------------- tokenizers


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


def _cap_max_length(tokenizer: Any, config: Any | None = None) -> Any:
    """ParsBERT v1's tokenizer_config leaves model_max_length unset (1e30): cap it at the positions."""
    limit = getattr(config, "max_position_embeddings", None) or DEFAULT_MAX_LENGTH
    if getattr(tokenizer, "model_max_length", 0) > limit:
        tokenizer.model_max_length = limit
    return tokenizer


def _check_fast(tokenizer: Any, name: str) -> Any:
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{name!r} has no fast tokenizer (tokenizer.json); word alignment needs one")
    try:  # byte-level BPE tokenizers (RoBERTa, GPT-2) refuse pre-split words without add_prefix_space
        tokenizer([["x"]], is_split_into_words=True)
    except Exception as exc:
        if "add_prefix_space" in str(exc):
            raise ModelLoadError(f"{name!r}: reload the tokenizer with add_prefix_space=True") from exc
        raise
    return tokenizer


def load_tokenizer(
    spec: str | Path | ModelSpec,
    train_words: Any = None,
    *,
    tiny_options: dict[str, int] | None = None,
) -> Any:
    """The tokenizer for ``spec``; ``tiny`` trains its vocabulary on ``train_words`` (required for it)."""
    spec = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    if spec.kind == "tiny":
        if train_words is None:
            raise ConfigError("the tiny stand-in needs the training words to build its vocabulary")
        opts = {**TINY_DEFAULTS, **(tiny_options or {})}
        return build_tiny_tokenizer(train_words, opts["vocab_size"])
    from transformers import AutoConfig, AutoTokenizer

    if spec.kind == "parsbert-standin":
        source: str = str(_parsbert_dir())
        kwargs: dict[str, Any] = {"trust_remote_code": False}
    else:
        source, kwargs = spec.name, _load_kwargs(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        config = AutoConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise _wrap_error(spec, "tokenizer", exc) from exc
    return _check_fast(_cap_max_length(tokenizer, config), spec.name)


def _parsbert_dir() -> Path:
    d = parsbert_v1_tokenizer_dir()
    if not (d / "tokenizer.json").is_file() or not (d / "config.json").is_file():
        raise ModelLoadError(
            f"parsbert-standin needs ParsBERT v1's tokenizer and config in {d} (set PARSNER_SHARED to the "
            "shared folder), or use --model tiny"
        )
    return d


# --------------------------------------------------------------------------------------------- models


def _label_maps(label_names: list[str]) -> dict[str, Any]:
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
        **_label_maps(label_names),
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


def model_label_names(config: Any) -> list[str] | None:
    """The labels of an existing token-classification head, or None for a base (e.g. MLM) checkpoint."""
    archs = getattr(config, "architectures", None) or []
    if not any(a.endswith("ForTokenClassification") for a in archs):
        return None
    id2label = getattr(config, "id2label", None) or {}
    names = [id2label[i] for i in sorted(id2label)]
    if all(re.fullmatch(r"LABEL_\d+", n) for n in names):
        return None
    return names


def existing_label_names(spec: str | Path | ModelSpec) -> list[str] | None:
    """The label order of a checkpoint's token-classification head (None: stand-in or base model)."""
    spec = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    if spec.kind in ("tiny", "parsbert-standin"):
        return None
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(spec.name, **_load_kwargs(spec))
    except (OSError, ValueError) as exc:
        raise _wrap_error(spec, "config", exc) from exc
    return model_label_names(config)


def load_model(
    spec: str | Path | ModelSpec,
    label_names: list[str],
    tokenizer: Any = None,
    *,
    tiny_options: dict[str, int] | None = None,
    reinit_classifier: bool = False,
) -> Any:
    """A token-classification model whose head predicts ``label_names`` (in that order).

    Fine-tuning a checkpoint that already is a token classifier keeps its head only if it knows every
    dataset label: labels it does not know raise ConfigError (``reinit_classifier=True`` starts a new
    head instead). The head's label order is kept, so callers first read it with
    :func:`model_label_names` (``existing_label_names``) and map the dataset's label ids onto it.
    """
    spec = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    if spec.kind == "tiny":
        if tokenizer is None:
            raise ConfigError("the tiny stand-in model needs its tokenizer (vocabulary size)")
        opts = {**TINY_DEFAULTS, **(tiny_options or {})}
        if spec.layers:
            opts["layers"] = spec.layers
        return build_tiny_model(
            len(tokenizer),
            label_names,
            pad_token_id=tokenizer.pad_token_id,
            layers=opts["layers"],
            hidden=opts["hidden"],
            heads=opts["heads"],
            intermediate=opts["intermediate"],
        )
    from transformers import AutoConfig, AutoModelForTokenClassification

    if spec.kind == "parsbert-standin":
        config = AutoConfig.from_pretrained(str(_parsbert_dir()), trust_remote_code=False)
        if spec.layers:
            config.num_hidden_layers = spec.layers
        config.architectures = ["BertForTokenClassification"]
        for key, value in _label_maps(label_names).items():
            setattr(config, key, value)
        return AutoModelForTokenClassification.from_config(config, trust_remote_code=False)

    kwargs = _load_kwargs(spec)
    try:
        config = AutoConfig.from_pretrained(spec.name, **kwargs)
    except (OSError, ValueError) as exc:
        raise _wrap_error(spec, "config", exc) from exc
    existing = model_label_names(config)
    head_kwargs: dict[str, Any] = _label_maps(label_names)
    if existing is not None and not reinit_classifier:
        unknown = sorted(set(label_names) - set(existing))
        if unknown:
            raise ConfigError(
                f"the dataset has labels the model {spec.name!r} does not know: {', '.join(unknown)} "
                f"(its labels: {', '.join(existing)}). Use a base checkpoint, map the labels, or set "
                "reinit_classifier: true to train a new classification head"
            )
        if list(existing) != list(label_names):
            raise ConfigError(
                f"label order differs from the model's ({', '.join(existing)}); pass the model's label order"
            )
        head_kwargs = {}
    elif existing is not None:
        head_kwargs["ignore_mismatched_sizes"] = True
    try:
        return AutoModelForTokenClassification.from_pretrained(
            spec.name, use_safetensors=True, **head_kwargs, **kwargs
        )
    except (OSError, ValueError) as exc:
        if "safetensors" in str(exc).lower() and not (spec.kind == "hub" and hub_offline()):
            raise ModelLoadError(
                f"{spec.name!r} has no model.safetensors; ParsNER loads safetensors only (no pickle). "
                "Convert the checkpoint to safetensors first."
            ) from exc
        raise _wrap_error(spec, "weights", exc) from exc


# --------------------------------------------------------------------------------------------- inference


def _fetch_optional(spec: ModelSpec, filename: str) -> Path | None:
    """A small extra file (normalizer.json, parsner.json) of a local dir or hub repo, if present."""
    if spec.kind == "local":
        p = Path(spec.name) / filename
        return p if p.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(spec.name, filename, local_files_only=hub_offline()))
    except Exception:  # a plain HF model simply has no such file
        return None


def load_for_inference(path_or_id: str | Path, device: Any = None) -> tuple[Any, Any, Any, dict[str, Any]]:
    """``(model, tokenizer, normalizer, parsner_meta)`` of a trained run (local dir or hub id).

    ``normalizer`` is the saved ``PersianNormalizer`` (None when the model has no normalizer.json);
    ``parsner_meta`` is parsner.json with ``max_length``/``stride`` defaults filled in.
    """
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    spec = parse_spec(path_or_id)
    if spec.kind in ("tiny", "parsbert-standin"):
        raise ConfigError(f"{spec.name!r} is an untrained stand-in; give the directory of a trained run")
    kwargs = _load_kwargs(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.name, **kwargs)
        model = AutoModelForTokenClassification.from_pretrained(spec.name, use_safetensors=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise _wrap_error(spec, "model", exc) from exc
    _check_fast(_cap_max_length(tokenizer, model.config), spec.name)
    meta: dict[str, Any] = {}
    meta_path = _fetch_optional(spec, "parsner.json")
    if meta_path is not None:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.setdefault("max_length", min(int(tokenizer.model_max_length), DEFAULT_MAX_LENGTH))
    meta.setdefault("stride", DEFAULT_STRIDE)
    normalizer = None
    norm_path = _fetch_optional(spec, "normalizer.json")
    if norm_path is not None:
        from parsner.normalize import PersianNormalizer

        normalizer = PersianNormalizer.load(norm_path.parent)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    model.eval()
    return model, tokenizer, normalizer, meta
