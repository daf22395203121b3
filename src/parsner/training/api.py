"""The training stage's public function, :func:`train` (``parsner.train``): a run config (a YAML file or a
:class:`~parsner.training.config.RunConfig`) with overrides -> a run directory.

It stands on the stage's entry points (:func:`parsner.training.config.load_config`,
:func:`parsner.training.train.train`) and words their errors for a Python caller
(:func:`parsner.data.api.parameter_names`); ``parsner train`` calls it with the config its flags made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsner.data.api import parameter_names
from parsner.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from parsner.training.config import RunConfig
    from parsner.training.train import RunResult

#: ``parsner.train``'s parameters that ``parsner train`` has as flags, and those of them that are switches.
TRAIN_PARAMETERS = ("out", "resume", "overwrite")
TRAIN_SWITCHES = ("resume", "overwrite")
#: Where the config layers name their source for the command line, a Python caller passed ``overrides``.
_OVERRIDE_SOURCES = {"--set": "`overrides`", "command line": "`overrides`"}


def _override_values(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """``{key: value}`` from a mapping or from ``"key=value"`` strings (values read as YAML, as ``--set`` does)."""
    from parsner.training.config import parse_set

    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return {k: str(v) if isinstance(v, Path) else v for k, v in overrides.items()}
    if isinstance(overrides, str) or not all(isinstance(item, str) for item in overrides):
        raise ConfigError("`overrides`: give a mapping {key: value} or a list of 'key=value' strings")
    return parse_set(list(overrides))


def resolve_config(config: str | Path | RunConfig | None, overrides: Mapping[str, Any] | Sequence[str] | None = None,
                   out: str | Path | None = None) -> RunConfig:
    """The checked :class:`RunConfig`: defaults <- ``config`` (a file, or an object) <- ``overrides`` <- ``out``."""
    from parsner.training.config import RunConfig, apply, check, load_config

    with parameter_names(TRAIN_PARAMETERS, TRAIN_SWITCHES, also=_OVERRIDE_SOURCES):
        values = _override_values(overrides)
        if out is not None:
            values["out"] = str(out)
        if isinstance(config, RunConfig):
            cfg = apply(config, values, "command line")
            check(cfg, "command line")
            return cfg
        if config is not None and not isinstance(config, str | Path):
            raise ConfigError(f"`config`: give a YAML file or a RunConfig, not {type(config).__name__}")
        return load_config(config, overrides=values)


def train(
    config: str | Path | RunConfig | None,
    *,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> RunResult:
    """Train a model (what ``parsner train`` does) and write its run directory.

    The run lives in ``OUT.incomplete/`` (checkpoints, log) until it is complete, then becomes ``OUT``: a folder
    that :class:`parsner.Tagger`, :func:`parsner.evaluate` and plain ``transformers`` load.

    Args:
        config: A run config: a YAML file (e.g. ``training/sample.yaml``; the shipped recipes are found by name)
            or a :class:`~parsner.training.config.RunConfig`; ``None`` starts from the defaults.
        overrides: Config keys to change, as a mapping (``{"epochs": 1, "data": "runs/data/sample"}``; a ``None``
            value keeps the config's) or as ``"key=value"`` strings (values read as YAML).
        out: The run directory (default: the config's ``out``, else ``models/<run_name>``).
        resume: Continue an interrupted run from its last checkpoint in ``OUT.incomplete/``.
        overwrite: Replace an existing run directory that parsner wrote.

    Returns:
        The :class:`~parsner.training.train.RunResult`: the run directory (``out_dir``), the validation metrics
        of the kept checkpoint (``metrics``), and a description when the model is a stand-in (``stand_in``).

    Raises:
        ConfigError: An unknown key, a value out of bounds, or an output that may not be written.
        InputError: A dataset that cannot be trained on.
        TrainingInterrupted: Ctrl-C or SIGTERM stopped the run after saving a checkpoint (``resume=True`` continues).
    """
    from parsner.training.train import train as run

    cfg = resolve_config(config, overrides, out)
    with parameter_names(TRAIN_PARAMETERS, TRAIN_SWITCHES):
        return run(cfg, resume=resume, overwrite=overwrite)


def run_summary(result: RunResult) -> list[str]:
    """What ``parsner train`` prints about a finished run: its folder, validation F1, and a stand-in's note."""
    m = result.metrics
    lines = [f"{result.out_dir}: validation f1_strict={m.get('f1_strict', float('nan')):.4f} "
             f"f1_default={m.get('f1_default', float('nan')):.4f}"]
    if result.stand_in:
        lines.append(f"NOTE: {result.stand_in}")
    return lines
