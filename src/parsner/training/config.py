"""Run configs: flat YAML files over a dataclass whose fields carry their own rules.

A config file is a flat YAML mapping; every key is a field of the config dataclass (unknown keys are an error
that lists the valid ones). Each field is declared with :func:`option`, which holds its help text, its range
(``gt``/``ge``/``lt``), whether a resumed run may change it, and whether ``parsner train`` offers it as a flag;
its allowed values come from a ``Literal`` type. Type checks, range checks, the CLI flags and the resume rules
are all generated from those declarations, so adding a key touches one place. Relative paths are resolved
against the current working directory (the repository root in the docs), not against the file.

The same machinery serves every job's config (:class:`RunConfig` for ``train``; ``pretrain`` and ``distill``
have their own dataclasses): :func:`load`, :func:`apply`, :func:`dump_yaml`, :func:`add_flags`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from parsner.data.wordfeatures import MAX_AFFIX, MAX_NAME_WORDS, MAX_WINDOW
from parsner.errors import ConfigError
from parsner.inference.runmeta import DEFAULT_MAX_LENGTH, DEFAULT_STRIDE
from parsner.inference.standins import TINY_DEFAULTS  # the tiny stand-in's sizes
from parsner.paths import shipped_recipe_for

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Choices shared by the training jobs' configs (train, pretrain, distill).
NormalizerName = Literal["parsbert", "parsbert-zwnj", "none"]
LrScheduler = Literal["linear", "cosine", "constant_with_warmup", "polynomial"]
SelectionMetric = Literal["f1_strict", "f1_default"]

def option(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    help: str,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    resume_safe: bool = False,
    flag: bool = False,
) -> Any:
    """A config field (``default`` or ``default_factory``): ``help`` for people, ``gt``/``ge``/``lt``/``le``
    bounds, ``resume_safe`` (a resumed run may change it without changing its result), ``flag`` (``parsner
    train`` has ``--name`` for it)."""
    meta = {"help": help, "gt": gt, "ge": ge, "lt": lt, "le": le, "resume_safe": resume_safe, "flag": flag}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


@dataclass
class TinySizes:
    """The sizes of the ``tiny`` stand-in (a model spec ``tiny[:LAYERS]``), shared by every job that builds one."""

    tiny_layers: int = option(TINY_DEFAULTS["layers"], help="tiny stand-in: layers", gt=0)
    tiny_hidden: int = option(TINY_DEFAULTS["hidden"], help="tiny stand-in: hidden size", gt=0)
    tiny_heads: int = option(TINY_DEFAULTS["heads"], help="tiny stand-in: attention heads", gt=0)
    tiny_intermediate: int = option(TINY_DEFAULTS["intermediate"], help="tiny stand-in: feed-forward size", gt=0)
    tiny_vocab_size: int = option(TINY_DEFAULTS["vocab_size"], help="tiny stand-in: WordPiece vocabulary", gt=0)


@dataclass
class CrfOptions:
    """The feature CRF's settings (``model: crf``; :mod:`parsner.training.crf_fit`); other models ignore them."""

    crf_c1: float = option(0.05, help="feature CRF: L1 regularisation (drops useless features)", ge=0)
    crf_c2: float = option(0.05, help="feature CRF: L2 regularisation", ge=0)
    crf_max_iterations: int = option(150, help="feature CRF: L-BFGS iterations at most", gt=0)
    crf_window: int = option(2, help="feature CRF: neighbouring words on each side that give features", ge=0,
                             le=MAX_WINDOW)
    crf_affix: int = option(4, help="feature CRF: longest prefix and suffix feature, in characters", ge=0,
                            le=MAX_AFFIX)
    cluster_sizes: list[int] = option(
        default_factory=lambda: [32, 128, 512],
        help="feature CRF: word-cluster granularities, coarse to fine ([] for no cluster features)")
    cluster_text: list[str] = option(
        default_factory=list, help="feature CRF: unlabelled text for the word clusters besides the run's own train "
                                   "and validation words (files or built datasets); sentences holding a test "
                                   "sentence of the dataset are dropped")
    cluster_min_count: int = option(3, help="feature CRF: occurrences a word needs to get a cluster", gt=0)
    cluster_overlap_min_words: int = option(
        6, help="feature CRF: words a test sentence needs to count as found in cluster_text or gazetteer_data", gt=0)
    gazetteer_data: list[str] = option(
        default_factory=list, help="feature CRF: annotated files of OTHER corpora (any format `parsner data build` "
                                   "reads) whose entity names become gazetteer features; sentences holding a test "
                                   "sentence of the dataset are dropped")
    gazetteer_max_words: int = option(6, help="feature CRF: longest gazetteer name, in words", gt=0,
                                      le=MAX_NAME_WORDS)
    crf_train_on_validation: bool = option(
        False, help="feature CRF: train on train+validation (the CRF has no epochs to select; its validation "
                    "scores are then on seen sentences and say so)")
    crf_calibrate: bool = option(
        True, help="feature CRF: fit calibration.json (entity scores as the chance of being right) on the "
                   "validation split; with crf_train_on_validation a first CRF trained on the training split alone "
                   "is calibrated there and its map kept, which about doubles the fit time")


@dataclass
class JobRuntime:
    """How a training job runs and reports, the same for train, pretrain and distill."""

    save_total_limit: int = option(2, help="checkpoints kept", gt=0)
    logging_steps: int = option(50, help="steps between log lines", gt=0)
    num_threads: int | None = option(None, help="torch intra-op threads on CPU (default: torch's)", gt=0,
                                     resume_safe=True)
    progress: bool = option(True, help="progress bars", resume_safe=True)


@dataclass
class RunConfig(JobRuntime, CrfOptions, TinySizes):
    """Everything that defines a training run. Defaults are the ParsBERT fine-tuning recipe."""

    # what to train on what
    data: str | None = option(None, help="dataset directory from `parsner data build`", flag=True)
    model: str = option("tiny", help="local dir, hub id (e.g. HooshvareLab/bert-fa-base-uncased), 'tiny[:LAYERS]', "
                                     "'parsbert-standin[:LAYERS]' (stand-ins: random weights) or 'crf' (a feature "
                                     "CRF: no download, needs parsner[crf])", flag=True)
    run_name: str | None = option(None, help="default: the config file's stem, else 'run'")
    out: str | None = option(None, help="run directory (default: models/<run_name>)", flag=True)
    seed: int = option(42, help="seed of everything random in the run", ge=0, lt=2**32, flag=True)
    # data
    max_train_samples: int | None = option(None, help="train on the first N sentences", gt=0, flag=True)
    max_eval_samples: int | None = option(None, help="validate on the first N sentences", gt=0)
    validation_fraction: float = option(0.0, help="carve a validation split off train when the dataset has none",
                                        ge=0, lt=1)
    normalizer: NormalizerName = option(
        "parsbert", help="text preprocessing, saved with the model", flag=True)
    max_length: int = option(DEFAULT_MAX_LENGTH, help="sub-words per window, special tokens included", gt=0)
    stride: int = option(DEFAULT_STRIDE, help="sub-words of overlap between windows of a long sentence", ge=0)
    label_all_subtokens: bool = option(False, help="label continuation sub-words too (I- for a B- word)")
    constrained_decoding: bool = option(True, help="word tags = most probable VALID sequence (validation and "
                                                   "inference); false: per-word argmax")
    # optimisation
    epochs: float = option(3.0, help="training epochs (fractions allowed)", gt=0, flag=True)
    learning_rate: float = option(5e-5, help="peak learning rate of AdamW", gt=0)
    batch_size: int = option(16, help="sentences (windows) per device and step", gt=0)
    eval_batch_size: int = option(64, help="windows per validation batch", gt=0, resume_safe=True)
    gradient_accumulation_steps: int = option(1, help="steps whose gradients make one update", gt=0)
    warmup_ratio: float = option(0.1, help="share of the steps with a rising learning rate", ge=0, lt=1)
    weight_decay: float = option(0.01, help="AdamW weight decay (not on biases and LayerNorm)", ge=0)
    max_grad_norm: float = option(1.0, help="gradient clipping norm (0: off)", ge=0)
    lr_scheduler: LrScheduler = option(
        "linear", help="learning-rate schedule after warm-up")
    group_by_length: bool = option(True, help="batches of similar lengths (less padding; the main CPU speed-up)")
    sparse_embeddings: bool = option(False, help="kept so that older configs still read; the row-sparse optimiser "
                                                 "it switched on was removed (it learnt slower and was not faster)")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = option(
        "auto", help="auto: bf16/fp16 on a GPU, fp32 on CPU")
    # evaluation, selection, checkpoints
    eval_strategy: Literal["epoch", "steps", "no"] = option(
        "epoch", help="when to validate and checkpoint; no: neither (validate once at the end)")
    eval_steps: int | None = option(None, help="steps between validations with eval_strategy: steps", gt=0)
    selection_metric: SelectionMetric = option(
        "f1_strict", help="validation score that picks the best checkpoint (seqeval strict IOB2 or conlleval-like)")
    early_stopping_patience: int = option(3, help="validations without improvement before stopping; 0: off", ge=0)
    dataloader_workers: int = option(0, help="data-loading worker processes", ge=0, resume_safe=True)
    # model options (the tiny stand-in's sizes come from TinySizes)
    reinit_classifier: bool = option(False, help="train a new head even if the checkpoint has one")

    def check(self, source: str) -> None:
        """Rules between fields (each field's own rules are checked by :func:`check`)."""
        if self.sparse_embeddings:
            raise ConfigError(f"{source}: sparse_embeddings: the row-sparse optimiser was removed (it learnt slower "
                              "than AdamW and was not faster); drop the key or set it to false")
        if self.learning_rate > 1:
            mantissa, exponent = f"{self.learning_rate:e}".split("e")
            raise ConfigError(
                f"{source}: learning_rate {self.learning_rate:g} is far too large (training would diverge); "
                f"fine-tuning uses about 1e-5 to 1e-3 (did you mean {float(mantissa):g}e-{int(exponent)}?)"
            )
        max_threads = max(64, 4 * (os.cpu_count() or 1))
        if self.num_threads is not None and self.num_threads > max_threads:
            raise ConfigError(f"{source}: num_threads {self.num_threads} is more than this machine can use "
                              f"(at most {max_threads}; it has {os.cpu_count()} CPUs)")
        if self.stride >= self.max_length - 2:
            raise ConfigError(f"{source}: stride ({self.stride}) must be smaller than max_length - 2 "
                              f"({self.max_length})")
        if self.eval_strategy == "steps" and not self.eval_steps:
            raise ConfigError(f"{source}: eval_strategy: steps needs eval_steps")
        if any(k < 2 for k in self.cluster_sizes):
            raise ConfigError(f"{source}: cluster_sizes must each be at least 2, got {self.cluster_sizes}")
        if self.run_name is not None and (not re.fullmatch(r"[\w.-]+", self.run_name) or set(self.run_name) == {"."}):
            raise ConfigError(f"{source}: run_name may only hold letters, digits, '.', '_' and '-'")

    @property
    def tiny_options(self) -> dict[str, int]:
        return {k: getattr(self, f"tiny_{k}") for k in TINY_DEFAULTS}

    def resolved(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def name(self) -> str:
        return self.run_name or "run"

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("models") / self.name


# ------------------------------------------------------------------------------------------ the machinery


def valid_keys(cls: type = RunConfig) -> list[str]:
    return [f.name for f in fields(cls)]


def _base_type(cls: type, name: str) -> tuple[Any, bool]:
    """The field's type without ``| None``, and whether None is allowed."""
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def choices(cls: type, name: str) -> tuple[Any, ...] | None:
    base, _ = _base_type(cls, name)
    return typing.get_args(base) if typing.get_origin(base) is Literal else None


def _coerce(cls: type, name: str, value: Any, source: str) -> Any:
    """``value`` as the field's type (an int is accepted for a float, a string for a list of strings)."""
    base, optional = _base_type(cls, name)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: {name} cannot be empty")
    allowed = choices(cls, name)
    if allowed is not None:
        if isinstance(value, str) and value in allowed:
            return value
        raise ConfigError(f"{source}: {name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    if typing.get_origin(base) is list:
        item_type = typing.get_args(base)[0]
        items = [value] if isinstance(value, item_type) and not isinstance(value, bool) else value
        if isinstance(items, list) and all(isinstance(v, item_type) and not isinstance(v, bool) for v in items):
            return list(items)
    elif base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base is float:
        if not isinstance(value, bool):
            try:  # YAML 1.1 reads 3e-5 (no dot) as a string
                out = float(value)
            except (TypeError, ValueError):
                out = None
            if out is not None and not math.isfinite(out):
                raise ConfigError(f"{source}: {name} must be a finite number, got {value!r}")
            if out is not None:
                return out
    elif base is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    what = (f"a list of {'strings' if typing.get_args(base)[0] is str else 'integers'}"
            if typing.get_origin(base) is list else getattr(base, "__name__", str(base)))
    raise ConfigError(f"{source}: {name} must be {what}, got {value!r} ({type(value).__name__})")


def check(cfg: Any, source: str) -> None:
    """Every field's bounds, then the dataclass's own cross-field ``check`` if it has one."""
    for f in fields(cfg):
        v, meta = getattr(cfg, f.name), f.metadata
        if v is None or isinstance(v, bool) or not isinstance(v, int | float):
            continue
        for key, ok, word in (("gt", v > (meta.get("gt") or 0), ">"), ("ge", v >= (meta.get("ge") or 0), ">="),
                              ("lt", v < (meta.get("lt") or 0), "<"), ("le", v <= (meta.get("le") or 0), "<=")):
            if meta.get(key) is not None and not ok:
                bound = "2**32" if meta[key] == 2**32 else f"{meta[key]:g}"
                raise ConfigError(f"{source}: {f.name} must be {word} {bound}, got {v!r}")
    if hasattr(cfg, "check"):
        cfg.check(source)


def apply(cfg: T, updates: dict[str, Any], source: str) -> T:
    valid = valid_keys(type(cfg))
    unknown = sorted(set(updates) - set(valid))
    if unknown:
        raise ConfigError(f"{source}: unknown config key(s): {', '.join(unknown)}. Valid keys: {', '.join(valid)}")
    values = {k: _coerce(type(cfg), k, v, source) for k, v in updates.items()}
    return dataclasses.replace(cfg, **values)  # type: ignore[type-var]


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


def _read_yaml(p: Path) -> dict[str, Any]:
    import yaml

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
        raise ConfigError(f"{p}: a config must be a mapping of keys to values")
    return raw


def load(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None,
         sets: list[str] | None = None) -> T:
    """Defaults <- YAML file <- direct CLI options (``overrides``, None skipped) <- ``--set key=value`` items."""
    cfg = cls()
    if path is not None:
        p = Path(path)
        shipped = shipped_recipe_for(p)
        if shipped is not None:
            log.info("%s is not here; using the recipe shipped with ParsNER (%s)", p, shipped)
            p = shipped
        cfg = apply(cfg, _read_yaml(p), str(p))
        if getattr(cfg, "run_name", "") is None:
            cfg = dataclasses.replace(cfg, run_name=p.stem)  # type: ignore[type-var]
    cfg = apply(cfg, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    cfg = apply(cfg, parse_set(sets), "--set")
    check(cfg, str(path) if path else "config")
    return cfg


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                sets: list[str] | None = None) -> RunConfig:
    """A :class:`RunConfig` (see :func:`load`)."""
    return load(RunConfig, path, overrides, sets)


def dump_yaml(cfg: Any) -> str:
    """The config as YAML, the job's own keys first, then those of the shared bases (which come first in the
    dataclass): how it runs, then the tiny stand-in's sizes."""
    import yaml

    data = dataclasses.asdict(cfg)
    shared = [f.name for base in (JobRuntime, CrfOptions, TinySizes) if isinstance(cfg, base) for f in fields(base)]
    ordered = {k: v for k, v in data.items() if k not in shared} | {k: data[k] for k in shared}
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True)


def resume_safe_keys(cls: type = RunConfig) -> set[str]:
    """Keys a resumed run may change (speed and display only)."""
    return {f.name for f in fields(cls) if f.metadata.get("resume_safe")}


def _type_cell(cls: type, name: str) -> str:
    base, optional = _base_type(cls, name)
    allowed = choices(cls, name)
    plain = base.__name__ if isinstance(base, type) else str(base)  # list[int] reads as itself
    text = " \\| ".join(f"`{c}`" for c in allowed) if allowed else plain
    return f"{text} or null" if optional else text


def _range_cell(meta: Mapping[str, Any]) -> str:
    signs = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    return ", ".join(f"{signs[k]} {meta[k]:g}" for k in signs if meta.get(k) is not None)


def _default_cell(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return f"`{f.default!r}`" if f.default is not None else "null"
    return "(required)" if f.default_factory is dataclasses.MISSING else f"`{f.default_factory()!r}`"


def config_reference(cls: type = RunConfig) -> str:
    """A Markdown table of ``cls``'s keys (type or choices, default, range, whether a resumed run may change it,
    the help text): made from the same field declarations that check a config and make the command's flags, so the
    docs cannot drift from them."""
    rows = ["| key | type | default | range | help |", "|---|---|---|---|---|"]
    for f in fields(cls):
        helptext = f.metadata.get("help", "").replace("|", "\\|")
        if f.metadata.get("flag"):
            helptext += f" (flag `--{f.name.replace('_', '-')}`)"
        if f.metadata.get("resume_safe"):
            helptext += " (may change on --resume)"
        rows.append(f"| `{f.name}` | {_type_cell(cls, f.name)} | {_default_cell(f)} | "
                    f"{_range_cell(f.metadata)} | {helptext} |")
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------------------ command line


def add_job_options(parser: argparse.ArgumentParser, example: str) -> None:
    """``--config``, ``--set``, ``--resume`` and ``--overwrite``: the options every training job shares."""
    parser.add_argument("--config", help=f"config YAML (e.g. {example})")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), e.g. --set learning_rate=3e-5")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output of this command")


def add_flags(parser: argparse.ArgumentParser, cls: type = RunConfig) -> None:
    """``--name`` for every field declared with ``flag=True``: its type, choices and help from the field."""
    for f in fields(cls):
        if not f.metadata.get("flag"):
            continue
        base, _ = _base_type(cls, f.name)
        allowed = choices(cls, f.name)
        kind = None if allowed else (base if base in (int, float) else str)
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f"cfg_{f.name}", type=kind, choices=allowed,
                            default=None, metavar=None if allowed else f.name.upper(), help=f.metadata["help"])


def flag_values(args: argparse.Namespace, cls: type = RunConfig) -> dict[str, Any]:
    """The values :func:`add_flags`' options were given (None for those not given)."""
    return {f.name: getattr(args, f"cfg_{f.name}", None) for f in fields(cls) if f.metadata.get("flag")}
