"""The one place a model is loaded, for training or inference: from a folder, a hub id, an ONNX export or a
stand-in; offline-safe, with the honest stand-ins used when nothing can be downloaded.

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

Safety: ``trust_remote_code`` is never enabled. Weights come from ``model.safetensors`` where a model has
one; a model with only ``pytorch_model.bin`` (the 2020-era ParsBERT repositories) is read through torch's
restricted unpickler (``weights_only=True``), which builds tensors and nothing else: a pickle that needs
anything more is refused with a :class:`~parsner.errors.ModelLoadError`, nothing of it executed.
Everything ParsNER writes is safetensors. Nothing ever falls back silently to another model.

Errors say what is really wrong: "not in the cache" only when the hub id has no cached copy; otherwise
the missing piece (no weights file, no tokenizer files, an unknown architecture, a refused pickle) with
the folder it was looked for in.

Public API (other modules import these):

* ``parse_spec(spec) -> ModelSpec`` and ``ModelSpec.stand_in`` (``None`` or the honest description).
* ``load_tokenizer(spec, train_words=None, ...)`` — for ``tiny`` the vocabulary is trained on ``train_words``.
* ``load_model(spec, label_names, tokenizer=None, ...)`` — a token-classification model with our labels.
* ``build_tiny(words, label_names, **options) -> (model, tokenizer)``, or its two halves
  ``build_tiny_tokenizer(words, vocab_size)`` / ``build_tiny_model(...)``.
* ``existing_label_names(spec)`` — the label order of a checkpoint that already is a token classifier.
* ``load_for_inference(path_or_id, device=None, normalizer="auto") -> (model, tokenizer, normalizer, meta)``:
  the model in eval mode on ``device`` (default: CUDA if available, else CPU), its tokenizer, the
  ``PersianNormalizer`` saved with it (``None`` for a plain HF model without ``normalizer.json``) and the
  contents of ``parsner.json`` (defaults ``max_length``/``stride`` filled in for plain HF models).
* ``load_onnx_for_inference(dir, threads=None, normalizer="auto") -> (runner, tokenizer, normalizer, meta)``:
  a directory written by ``parsner export --onnx``, run by ONNX Runtime (:class:`parsner.inference.backends.OrtRunner`).
* ``load_for_tagger(path_or_id, backend=, device=, normalizer=, quantize=)``: one of the two above, as the
  :class:`~parsner.inference.tagger.Tagger` needs it (the one call on ``parsner predict``'s path).
* ``resolve_normalizer(spec, choice, meta)``: reads the normalizer.json/parsner.json a model ships; the choice
  itself is :func:`parsner.data.normalize.choose_normalizer`'s.
* ``TINY_DEFAULTS``: the ``tiny`` stand-in's sizes (the training config's ``tiny_*`` defaults).

Nothing here imports :mod:`parsner.training`: training imports this module, not the other way round.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The normaliser is chosen by parsner.data.normalize; its hub-id defaults, which lived here, stay importable here.
from parsner.data.normalize import (  # noqa: F401
    HUB_NORMALIZER_DEFAULTS,
    NORMALIZER_CHOICES,
    choose_normalizer,
    default_normalizer,
)
from parsner.errors import ConfigError, ModelLoadError
from parsner.inference.backends import ONNX_FILE, OrtRunner, resolve_backend

# The window defaults have one home (runmeta); used and re-exported here.
from parsner.inference.runmeta import DEFAULT_MAX_LENGTH, DEFAULT_STRIDE
from parsner.paths import parsbert_v1_tokenizer_dir

#: Written next to every stand-in (parsner.json, model card, logs).
STAND_IN_WARNING = "stand-in, random init, scores are NOT ParsBERT's"

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
#: Sizes of the ``tiny`` stand-in, the one place they are written (the training config's defaults read them here).
TINY_DEFAULTS: dict[str, int] = {"layers": 2, "hidden": 128, "heads": 2, "intermediate": 512, "vocab_size": 8000}
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "local" | "hub" | "tiny" | "parsbert-standin" | "crf" (a feature CRF, trained from words)
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
    if text == "crf":
        return ModelSpec("crf", text)
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
    where = "no local directory of that name, and " if "/" in name else ""
    return (
        f"model {name!r} is not available offline: {where}it is not in the local Hugging Face cache "
        "(HF_HUB_OFFLINE=1). To proceed: (1) pass a local directory that holds the model (config.json, "
        "model.safetensors or pytorch_model.bin, tokenizer files); (2) populate the cache on a machine with "
        f"internet (`hf download {name}`) and copy ~/.cache/huggingface here; or (3) for training only, use a "
        "stand-in: --model tiny or --model parsbert-standin (random weights, scores are NOT ParsBERT's)."
    )


def _load_kwargs(spec: ModelSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": False}
    if spec.kind == "hub" and hub_offline():
        kwargs["local_files_only"] = True
    return kwargs


#: Weight files in the order transformers prefers them (safetensors first).
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
)
#: Any one of these lets AutoTokenizer build a fast tokenizer (vocab.txt: the 2020-era BERT repositories).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "sentencepiece.bpe.model",
                   "spiece.model")


def model_dir(spec: ModelSpec) -> Path | None:
    """The folder that holds ``spec``'s files: the local directory, or the cached snapshot of a hub id.

    None when it cannot be known without the network (online and not cached). Offline, a hub id that has
    no cached ``config.json`` raises the "not available offline" ModelLoadError.
    """
    if spec.kind == "local":
        return Path(spec.name)
    if spec.kind != "hub":
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(spec.name, "config.json")
    except Exception:  # a malformed id for the hub's rules
        found = None
    if isinstance(found, str):
        return Path(found).parent
    if hub_offline():
        raise ModelLoadError(_how_to_proceed(spec.name))
    return None


def check_model_files(spec: ModelSpec, *, weights: bool = True, tokenizer: bool = True) -> Path | None:
    """Fail early, naming the folder, when a model lacks its config, weights or tokenizer files."""
    folder = model_dir(spec)
    if folder is None:
        return None
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"model {spec.name!r}: no config.json in {folder}")
    if weights and not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise ModelLoadError(f"model {spec.name!r}: no weights file in {folder} (looked for {', '.join(WEIGHT_FILES)})")
    if tokenizer and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelLoadError(
            f"model {spec.name!r}: no tokenizer files in {folder} (looked for {', '.join(TOKENIZER_FILES)})"
        )
    return folder


def _wrap_error(spec: ModelSpec, what: str, exc: BaseException) -> ModelLoadError:
    """One clear ModelLoadError for a failed ``from_pretrained``, saying what is actually wrong."""
    import pickle

    where = model_dir(spec) if spec.kind in ("local", "hub") else None
    place = f" ({where})" if where is not None and str(where) != spec.name else ""
    text = " ".join(str(exc).split())
    if isinstance(exc, pickle.UnpicklingError):
        m = re.search(r"GLOBAL (\S+)", text)
        needs = f" (it asks for {m.group(1)})" if m else ""
        return ModelLoadError(
            f"refused to load the weights of {spec.name!r}{place}: pytorch_model.bin is a pickle that needs more "
            f"than tensors{needs}. ParsNER reads pickled weights only through torch's restricted unpickler "
            "(weights_only=True), so nothing in it was run. Use a model.safetensors copy from a source you trust."
        )
    if "model_type" in text or "Unrecognized model" in text or "does not recognize this architecture" in text:
        return ModelLoadError(f"unknown architecture in the config.json of {spec.name!r}{place}: {text[:300]}")
    return ModelLoadError(f"cannot load the {what} of {spec.name!r}{place}: {text[:500]}")


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
        check_model_files(spec, weights=False)
        source, kwargs = spec.name, _load_kwargs(spec)
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
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
    """The canonical IOB2 labels of an existing token-classification head, or None for a base checkpoint.

    Labels are read by :func:`parsner.labels.model_labels` (``B_DAT``, ``B-pers``, ``B-person`` ...).
    A head in another scheme (BIOES) or with labels that are not tags cannot be kept for IOB2 data:
    ConfigError, pointing at ``reinit_classifier``.
    """
    from parsner.labels import is_unnamed, model_labels

    archs = getattr(config, "architectures", None) or []
    if not any(a.endswith("ForTokenClassification") for a in archs):
        return None
    id2label = getattr(config, "id2label", None) or {}
    if is_unnamed(id2label.values()):
        return None
    name = getattr(config, "name_or_path", "") or "the checkpoint"
    try:
        labels = model_labels(id2label, model=name)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; or set reinit_classifier: true to train a new classification head") from None
    if labels.scheme != "IOB2":
        raise ConfigError(
            f"{name}: its head uses {labels.scheme} labels ({', '.join(labels.raw[:6])}, ...); ParsNER fine-tunes "
            "IOB2 heads only: set reinit_classifier: true to train a new head on the dataset's labels"
        )
    return list(labels.tags)


def existing_label_names(spec: str | Path | ModelSpec) -> list[str] | None:
    """The canonical label order of a checkpoint's token-classification head (None: stand-in or base model)."""
    spec = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    if spec.kind in ("tiny", "parsbert-standin"):
        return None
    check_model_files(spec, tokenizer=False)
    return model_label_names(_load_config(spec))


def check_head_knows(model: str, head: list[str], dataset_labels: list[str]) -> None:
    """A checkpoint's head is kept only if it has every label of the dataset."""
    unknown = sorted(set(dataset_labels) - set(head))
    if unknown:
        raise ConfigError(
            f"the dataset has labels the model {model!r} does not know: {', '.join(unknown)} (its labels: "
            f"{', '.join(head)}); set reinit_classifier: true to train a new classification head, or map the "
            "labels when building the dataset"
        )


def _from_pretrained(cls: Any, spec: ModelSpec, what: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` with safetensors preferred, pickles only through the restricted unpickler."""
    import pickle

    folder = model_dir(spec)
    if folder is not None and (folder / "model.safetensors").is_file():
        kwargs["use_safetensors"] = True
    try:
        return cls.from_pretrained(spec.name, weights_only=True, **kwargs, **_load_kwargs(spec))
    except (OSError, ValueError, KeyError, pickle.UnpicklingError, RuntimeError) as exc:
        raise _wrap_error(spec, what, exc) from exc
    except Exception as exc:  # safetensors' own error type for a truncated or corrupt file
        if type(exc).__name__ == "SafetensorError":
            raise _wrap_error(spec, what, exc) from exc
        raise


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

    check_model_files(spec, tokenizer=False)
    existing = model_label_names(_load_config(spec))
    head_kwargs: dict[str, Any] = _label_maps(label_names)
    if existing is not None and not reinit_classifier:
        check_head_knows(spec.name, existing, label_names)
        if list(existing) != list(label_names):
            raise ConfigError(
                f"label order differs from the model's ({', '.join(existing)}); pass the model's label order"
            )
        head_kwargs = {}
    elif existing is not None:
        head_kwargs["ignore_mismatched_sizes"] = True
    model = _from_pretrained(AutoModelForTokenClassification, spec, "weights", **head_kwargs)
    if existing is not None and not head_kwargs:  # a kept head: save it under the canonical names
        for key, value in _label_maps(existing).items():
            setattr(model.config, key, value)
    return model


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


def resolve_normalizer(spec: ModelSpec, choice: str = "auto", meta: dict[str, Any] | None = None) -> tuple[Any, str]:
    """``(PersianNormalizer or None, description)`` for inference with ``spec``.

    Reads what the model ships (its normalizer.json, the preset its parsner.json names) and leaves the choice to
    :func:`parsner.data.normalize.choose_normalizer` (``choice``: ``auto``, a preset name, or a normalizer.json path).
    """
    saved = _fetch_optional(spec, "normalizer.json")
    return choose_normalizer(choice, saved=saved, named=(meta or {}).get("normalizer"), model=spec.name)


def load_for_inference(
    path_or_id: str | Path, device: Any = None, *, normalizer: str = "auto"
) -> tuple[Any, Any, Any, dict[str, Any]]:
    """``(model, tokenizer, normalizer, parsner_meta)`` of a trained run, or any token classifier (dir or hub id).

    ``normalizer`` is chosen by :func:`resolve_normalizer`; ``parsner_meta`` is parsner.json with
    ``max_length``/``stride`` defaults filled in and ``normalizer_used`` saying which normaliser applies.
    """
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    spec = parse_spec(path_or_id)
    if spec.kind in ("tiny", "parsbert-standin"):
        raise ConfigError(f"{spec.name!r} is an untrained stand-in; give the directory of a trained run")
    check_model_files(spec)
    meta = _read_meta(spec)
    _load_config(spec)  # an unknown architecture is named before the tokenizer's less helpful errors
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.name, **_load_kwargs(spec))
    except (OSError, ValueError, KeyError) as exc:
        raise _wrap_error(spec, "tokenizer", exc) from exc
    model = _from_pretrained(AutoModelForTokenClassification, spec, "model")
    norm, norm_desc = resolve_normalizer(spec, normalizer, meta)
    _check_fast(_cap_max_length(tokenizer, model.config), spec.name)
    meta.setdefault("max_length", min(int(tokenizer.model_max_length), DEFAULT_MAX_LENGTH))
    meta.setdefault("stride", DEFAULT_STRIDE)
    meta["normalizer_used"] = norm_desc
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    model.eval()
    return model, tokenizer, norm, meta


def load_onnx_for_inference(
    path: str | os.PathLike[str], threads: int | None = None, *, normalizer: str = "auto"
) -> tuple[Any, Any, Any, dict]:
    """``(runner, tokenizer, normalizer, parsner_meta)`` of an exported directory (``parsner export``).

    ``normalizer`` is chosen as for torch models (:func:`resolve_normalizer`). torch is not imported.
    """
    import json

    from transformers import AutoConfig, AutoTokenizer

    path = Path(path)
    try:
        config = AutoConfig.from_pretrained(str(path), trust_remote_code=False, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the config/tokenizer of {path}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{path} has no fast tokenizer (tokenizer.json); word alignment needs one")
    limit = getattr(config, "max_position_embeddings", None) or 512
    if getattr(tokenizer, "model_max_length", 0) > limit:
        tokenizer.model_max_length = limit
    meta: dict[str, Any] = {}
    if (path / "parsner.json").is_file():
        meta = json.loads((path / "parsner.json").read_text(encoding="utf-8"))
    meta.setdefault("max_length", min(int(tokenizer.model_max_length), 512))
    meta.setdefault("stride", 128)
    norm, meta["normalizer_used"] = resolve_normalizer(parse_spec(str(path)), normalizer, meta)
    return OrtRunner(path / ONNX_FILE, config, threads=threads), tokenizer, norm, meta


def quantize_dynamic_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of every ``nn.Linear`` (weights int8, activations quantised on the fly)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao (not a dependency); it still works here.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model.to("cpu"), {torch.nn.Linear}, dtype=torch.qint8)


def load_for_tagger(
    path_or_id: str | os.PathLike[str], *, backend: str | None = None, device: str | None = None,
    normalizer: str = "auto", quantize: bool = False,
) -> tuple[Any, Any, Any, dict[str, Any], str | None]:
    """``(model or runner, tokenizer, normalizer, parsner_meta, device)``: what a Tagger runs, loaded in one place.

    ``backend`` ``"onnx"``/``"torch"``/None (ONNX Runtime when the directory holds ``model.onnx``, see
    :func:`parsner.inference.backends.resolve_backend`): an ONNX export through :func:`load_onnx_for_inference`,
    anything else through :func:`load_for_inference`, then int8 on the CPU with ``quantize``. ``meta["model_name"]``
    defaults to ``path_or_id``.
    """
    chosen = resolve_backend(path_or_id, backend)
    if chosen == "crf":  # a feature CRF run: word-level, no tokenizer
        if quantize:
            raise ConfigError("a feature CRF has no layers to quantise; drop --quantize")
        from parsner.inference.crf import load_crf_for_inference

        runner, tokenizer, norm, meta = load_crf_for_inference(path_or_id, normalizer=normalizer)
        meta.setdefault("model_name", str(path_or_id))
        return runner, tokenizer, norm, meta, "cpu"
    if chosen == "onnx":  # a directory written by `parsner export --onnx`
        if quantize:
            raise ConfigError("an ONNX model is quantised when exported: parsner export DIR --onnx --quantize int8")
        runner, tokenizer, norm, meta = load_onnx_for_inference(path_or_id, normalizer=normalizer)
        meta.setdefault("model_name", str(path_or_id))
        return runner, tokenizer, norm, meta, device
    model, tokenizer, norm, meta = load_for_inference(str(path_or_id), device=device, normalizer=normalizer)
    meta.setdefault("model_name", str(path_or_id))
    if quantize:
        model, device = quantize_dynamic_int8(model), "cpu"
    from parsner.inference.backends import TorchRunner

    # The model was loaded here, so nobody else holds it: its Linear layers may move to oneDNN.
    return TorchRunner(model, device, fast_linear=True), tokenizer, norm, meta, device


def _load_config(spec: ModelSpec) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(spec.name, **_load_kwargs(spec))
    except (OSError, ValueError, KeyError) as exc:
        raise _wrap_error(spec, "config", exc) from exc


def _read_meta(spec: ModelSpec) -> dict[str, Any]:
    """parsner.json of a run (local or hub) as a dict; {} for a model without one."""
    from parsner.inference.runmeta import RunMeta

    path = _fetch_optional(spec, "parsner.json")
    if path is None:
        return {}
    return RunMeta.read(path).to_dict()
