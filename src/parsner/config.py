"""Run configs for ``parsner train``: YAML with defaults, ``--set key=value`` overrides, type checks.

A config file is a flat YAML mapping; every key is a field of :class:`RunConfig` (unknown keys are an
error that lists the valid ones). Relative paths in a config file are resolved against the current
working directory (the repository root in the docs), not against the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError


@dataclass
class RunConfig:
    """Everything that defines a training run. Defaults are the ParsBERT fine-tuning recipe."""

    # what to train on what
    data: str | None = None  # dataset directory from `parsner data build`
    model: str = "tiny"  # local dir, hub id, tiny[:L], parsbert-standin[:L]
    run_name: str | None = None  # default: the config file's stem, else "run"
    out: str | None = None  # default: models/<run_name>
    seed: int = 42
    # data
    max_train_samples: int | None = None  # first N training sentences (after the dataset's own order)
    max_eval_samples: int | None = None
    validation_fraction: float = 0.0  # carve a validation split off train when the dataset has none
    normalizer: str = "parsbert"  # parsbert | parsbert-zwnj | none
    max_length: int = 512  # sub-words per window, special tokens included
    stride: int = 128  # sub-words of overlap between windows of a long sentence
    label_all_subtokens: bool = False
    constrained_decoding: bool = True  # word tags = most probable VALID IOB2 sequence (validation + inference)
    # optimisation
    epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    lr_scheduler: str = "linear"
    group_by_length: bool = True
    sparse_embeddings: str = "auto"  # auto (on for CPU) | true | false: row-sparse AdamW on word embeddings
    precision: str = "auto"  # auto (bf16/fp16 on GPU, fp32 on CPU) | fp32 | fp16 | bf16
    num_threads: int | None = None  # torch intra-op threads on CPU (None: torch's default)
    # evaluation, selection, checkpoints
    eval_strategy: str = "epoch"  # epoch | steps | no (no checkpoints or early stopping; evaluate at the end)
    eval_steps: int | None = None
    selection_metric: str = "f1_strict"  # f1_strict (seqeval strict IOB2) | f1_default (conlleval-like)
    early_stopping_patience: int = 3  # evaluations without improvement; 0 = off
    save_total_limit: int = 2
    logging_steps: int = 50
    dataloader_workers: int = 0
    progress: bool = True
    # model options
    reinit_classifier: bool = False
    tiny_layers: int = 2
    tiny_hidden: int = 128
    tiny_heads: int = 2
    tiny_intermediate: int = 512
    tiny_vocab_size: int = 8000

    def resolved(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def name(self) -> str:
        return self.run_name or "run"

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("models") / self.name


CHOICES: dict[str, tuple[str, ...]] = {
    "normalizer": ("parsbert", "parsbert-zwnj", "none"),
    "sparse_embeddings": ("auto", "true", "false"),
    "precision": ("auto", "fp32", "fp16", "bf16"),
    "eval_strategy": ("epoch", "steps", "no"),
    "selection_metric": ("f1_strict", "f1_default"),
    "lr_scheduler": ("linear", "cosine", "constant_with_warmup", "polynomial"),
}
POSITIVE = {
    "epochs", "learning_rate", "batch_size", "eval_batch_size", "gradient_accumulation_steps", "max_length",
    "logging_steps", "tiny_layers", "tiny_hidden", "tiny_heads", "tiny_intermediate", "tiny_vocab_size",
    "max_train_samples", "max_eval_samples", "eval_steps", "num_threads", "save_total_limit",
}
NON_NEGATIVE = {"stride", "warmup_ratio", "weight_decay", "max_grad_norm", "early_stopping_patience",
                "dataloader_workers", "validation_fraction", "seed"}


def valid_keys() -> list[str]:
    return [f.name for f in fields(RunConfig)]


def _type_of(name: str) -> Any:
    hints = typing.get_type_hints(RunConfig)
    return hints[name]


def _coerce(name: str, value: Any, source: str) -> Any:
    """Check ``value`` against the field's type (int accepted for float; None only where optional)."""
    hint = _type_of(name)
    args = typing.get_args(hint)
    optional = isinstance(hint, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: {name} cannot be empty (expected {base.__name__})")
    if base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 3e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif base is str:
        if isinstance(value, bool) and name == "sparse_embeddings":
            return "true" if value else "false"
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"{source}: {name} must be {base.__name__}, got {value!r} ({type(value).__name__})")


def _check_values(cfg: RunConfig, source: str) -> None:
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{source}: {f.name} must be a finite number, got {v!r}")
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{source}: {name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}")
    for name in POSITIVE:
        v = getattr(cfg, name)
        if v is not None and v <= 0:
            raise ConfigError(f"{source}: {name} must be > 0, got {v!r}")
    for name in NON_NEGATIVE:
        v = getattr(cfg, name)
        if v is not None and v < 0:
            raise ConfigError(f"{source}: {name} must be >= 0, got {v!r}")
    if cfg.learning_rate > 1:
        mantissa, exponent = f"{cfg.learning_rate:e}".split("e")
        raise ConfigError(
            f"{source}: learning_rate {cfg.learning_rate:g} is far too large (training would diverge); "
            f"fine-tuning uses about 1e-5 to 1e-3 (did you mean {float(mantissa):g}e-{int(exponent)}?)"
        )
    if cfg.seed >= 2**32:
        raise ConfigError(f"{source}: seed must be below 2**32 ({2**32}), got {cfg.seed}")
    max_threads = max(64, 4 * (os.cpu_count() or 1))
    if cfg.num_threads is not None and cfg.num_threads > max_threads:
        raise ConfigError(f"{source}: num_threads {cfg.num_threads} is more than this machine can use "
                          f"(at most {max_threads}; it has {os.cpu_count()} CPUs)")
    if cfg.warmup_ratio >= 1 or cfg.validation_fraction >= 1:
        raise ConfigError(f"{source}: warmup_ratio and validation_fraction must be < 1")
    if cfg.stride >= cfg.max_length - 2:
        raise ConfigError(f"{source}: stride ({cfg.stride}) must be smaller than max_length - 2 ({cfg.max_length})")
    if cfg.eval_strategy == "steps" and not cfg.eval_steps:
        raise ConfigError(f"{source}: eval_strategy: steps needs eval_steps")
    if cfg.run_name is not None and (not re.fullmatch(r"[\w.-]+", cfg.run_name) or set(cfg.run_name) == {"."}):
        raise ConfigError(f"{source}: run_name may only hold letters, digits, '.', '_' and '-'")


def apply(cfg: RunConfig, updates: dict[str, Any], source: str) -> RunConfig:
    unknown = sorted(set(updates) - set(valid_keys()))
    if unknown:
        raise ConfigError(
            f"{source}: unknown config key(s): {', '.join(unknown)}. Valid keys: {', '.join(valid_keys())}"
        )
    values = {k: _coerce(k, v, source) for k, v in updates.items()}
    return dataclasses.replace(cfg, **values)


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``["epochs=2", "model=tiny"]`` -> dict; values are parsed as YAML scalars (``2`` is an int)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: cannot parse the value: {exc}") from exc
    return out


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """Defaults <- YAML file <- direct CLI options (``overrides``) <- ``--set key=value`` items."""
    cfg = RunConfig()
    if path is not None:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.start + 4]
            raise ConfigError(f"{p}: not valid UTF-8 (byte {exc.start}: {bad!r})") from None
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read the config: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: a run config must be a mapping of keys to values")
        cfg = apply(cfg, raw, str(p))
        if cfg.run_name is None:
            cfg = dataclasses.replace(cfg, run_name=p.stem)
    cfg = apply(cfg, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    cfg = apply(cfg, parse_set(sets), "--set")
    _check_values(cfg, str(path) if path else "config")
    return cfg


def dump_yaml(cfg: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.resolved(), sort_keys=False, allow_unicode=True)
