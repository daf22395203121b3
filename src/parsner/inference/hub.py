"""Where a model is and whether it can be read, offline included: model specs, the Hub, a model's files.

Model specs (``--model`` / ``model:`` in a run config), classified by :func:`parse_spec`:

``path/to/dir``
    a local model directory (a ParsNER run, or any HF model saved with ``save_pretrained``).
``Org/name`` (hub id)
    e.g. ``HooshvareLab/bert-fa-base-uncased``, ``HooshvareLab/bert-fa-zwnj-base``,
    ``HooshvareLab/bert-base-parsbert-uncased``, ``xlm-roberta-base``. Loaded with ``from_pretrained``;
    when offline (``HF_HUB_OFFLINE=1``) only the local HF cache is read (``local_files_only``), so a model
    that is not cached fails at once with a :class:`~parsner.errors.ModelLoadError` that says how to proceed.
``tiny`` / ``tiny:L``, ``parsbert-standin`` / ``parsbert-standin:L``
    the **stand-ins** (random weights), built by :mod:`parsner.inference.standins`.
``crf``
    a feature CRF, trained from words (:mod:`parsner.training.crf_fit`).

Safety: ``trust_remote_code`` is never enabled. Weights come from ``model.safetensors`` where a model has
one; a model with only ``pytorch_model.bin`` (the 2020-era ParsBERT repositories) is read through torch's
restricted unpickler (``weights_only=True``), which builds tensors and nothing else: a pickle that needs
anything more is refused with a :class:`~parsner.errors.ModelLoadError`, nothing of it executed.
Everything ParsNER writes is safetensors. Nothing ever falls back silently to another model.

Errors say what is really wrong: "not in the cache" only when the hub id has no cached copy; otherwise
the missing piece (no weights file, no tokenizer files, an unknown architecture, a refused pickle) with
the folder it was looked for in.

Public API: ``parse_spec(spec) -> ModelSpec`` (``.stand_in``: ``None`` or the honest description),
``hub_offline()``, ``model_dir(spec)``, ``check_model_files(spec)``, ``load_kwargs(spec)``, ``wrap_error(spec, what,
exc)``, ``from_pretrained(cls, spec, what)``, ``fetch_optional(spec, filename)``. It imports no other module of
:mod:`parsner.inference`: :mod:`parsner.inference.modeling` (loading) and :mod:`parsner.inference.standins` import it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError, ModelLoadError

#: Written next to every stand-in (parsner.json, model card, logs).
STAND_IN_WARNING = "stand-in, random init, scores are NOT ParsBERT's"
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


def load_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """``from_pretrained``'s keywords for ``spec``: never remote code; a hub id read from the cache alone offline."""
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


def wrap_error(spec: ModelSpec, what: str, exc: BaseException) -> ModelLoadError:
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


def from_pretrained(cls: Any, spec: ModelSpec, what: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` with safetensors preferred, pickles only through the restricted unpickler."""
    import pickle

    folder = model_dir(spec)
    if folder is not None and (folder / "model.safetensors").is_file():
        kwargs["use_safetensors"] = True
    try:
        return cls.from_pretrained(spec.name, weights_only=True, **kwargs, **load_kwargs(spec))
    except (OSError, ValueError, KeyError, pickle.UnpicklingError, RuntimeError) as exc:
        raise wrap_error(spec, what, exc) from exc
    except Exception as exc:  # safetensors' own error type for a truncated or corrupt file
        if type(exc).__name__ == "SafetensorError":
            raise wrap_error(spec, what, exc) from exc
        raise


def fetch_optional(spec: ModelSpec, filename: str) -> Path | None:
    """A small extra file (normalizer.json, parsner.json) of a local dir or hub repo, if present."""
    if spec.kind == "local":
        p = Path(spec.name) / filename
        return p if p.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(spec.name, filename, local_files_only=hub_offline()))
    except Exception:  # a plain HF model simply has no such file
        return None
