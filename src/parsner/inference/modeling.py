"""The one place a model is loaded, for training or inference: from a folder, a hub id, an ONNX export or a
stand-in; offline-safe, with the honest stand-ins used when nothing can be downloaded.

What a model spec names, where its files are and whether they can be read offline (safetensors first, pickles only
through the restricted unpickler, errors naming the missing piece) is :mod:`parsner.inference.hub`'s; the stand-ins
``tiny`` and ``parsbert-standin`` are built by :mod:`parsner.inference.standins`. This module loads.

Public API (other modules import these):

* ``load_tokenizer(spec, train_words=None, ...)`` — for ``tiny`` the vocabulary is trained on ``train_words``.
* ``load_model(spec, label_names, tokenizer=None, ...)`` — a token-classification model with our labels.
* ``existing_label_names(spec)`` — the label order of a checkpoint that already is a token classifier;
  ``model_label_names(config)``, ``check_head_knows(model, head, dataset_labels)``.
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
* ``quantize_dynamic_int8(model)``.

Nothing here imports :mod:`parsner.training`: training imports this module, not the other way round.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from parsner.data.normalize import choose_normalizer
from parsner.errors import ConfigError, ModelLoadError
from parsner.inference.backends import ONNX_FILE, OrtRunner, resolve_backend
from parsner.inference.hub import (
    ModelSpec,
    check_model_files,
    fetch_optional,
    from_pretrained,
    load_kwargs,
    parse_spec,
    wrap_error,
)
from parsner.inference.runmeta import DEFAULT_MAX_LENGTH, DEFAULT_STRIDE
from parsner.inference.standins import (
    TINY_DEFAULTS,
    build_parsbert_standin,
    build_tiny_model,
    build_tiny_tokenizer,
    label_maps,
    parsbert_dir,
)

# --------------------------------------------------------------------------------------------- tokenizers


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
        source: str = str(parsbert_dir())
        kwargs: dict[str, Any] = {"trust_remote_code": False}
    else:
        check_model_files(spec, weights=False)
        source, kwargs = spec.name, load_kwargs(spec)
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise wrap_error(spec, "tokenizer", exc) from exc
    return _check_fast(_cap_max_length(tokenizer, config), spec.name)


# --------------------------------------------------------------------------------------------- models


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
    if spec.kind == "parsbert-standin":
        return build_parsbert_standin(label_names, spec.layers)
    from transformers import AutoModelForTokenClassification

    check_model_files(spec, tokenizer=False)
    existing = model_label_names(_load_config(spec))
    head_kwargs: dict[str, Any] = label_maps(label_names)
    if existing is not None and not reinit_classifier:
        check_head_knows(spec.name, existing, label_names)
        if list(existing) != list(label_names):
            raise ConfigError(
                f"label order differs from the model's ({', '.join(existing)}); pass the model's label order"
            )
        head_kwargs = {}
    elif existing is not None:
        head_kwargs["ignore_mismatched_sizes"] = True
    model = from_pretrained(AutoModelForTokenClassification, spec, "weights", **head_kwargs)
    if existing is not None and not head_kwargs:  # a kept head: save it under the canonical names
        for key, value in label_maps(existing).items():
            setattr(model.config, key, value)
    return model


# --------------------------------------------------------------------------------------------- inference


def resolve_normalizer(spec: ModelSpec, choice: str = "auto", meta: dict[str, Any] | None = None) -> tuple[Any, str]:
    """``(PersianNormalizer or None, description)`` for inference with ``spec``.

    Reads what the model ships (its normalizer.json, the preset its parsner.json names) and leaves the choice to
    :func:`parsner.data.normalize.choose_normalizer` (``choice``: ``auto``, a preset name, or a normalizer.json path).
    """
    saved = fetch_optional(spec, "normalizer.json")
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
        tokenizer = AutoTokenizer.from_pretrained(spec.name, **load_kwargs(spec))
    except (OSError, ValueError, KeyError) as exc:
        raise wrap_error(spec, "tokenizer", exc) from exc
    model = from_pretrained(AutoModelForTokenClassification, spec, "model")
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
        from parsner.inference.crf_tagger import load_crf_for_inference

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
        return AutoConfig.from_pretrained(spec.name, **load_kwargs(spec))
    except (OSError, ValueError, KeyError) as exc:
        raise wrap_error(spec, "config", exc) from exc


def _read_meta(spec: ModelSpec) -> dict[str, Any]:
    """parsner.json of a run (local or hub) as a dict; {} for a model without one."""
    from parsner.inference.runmeta import RunMeta

    path = fetch_optional(spec, "parsner.json")
    if path is None:
        return {}
    return RunMeta.read(path).to_dict()
