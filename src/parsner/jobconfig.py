"""YAML configs for the jobs beside ``parsner train`` (``pretrain``, ``distill``): any flat dataclass.

Same rules as :mod:`parsner.config`: defaults <- YAML file <- direct CLI options <- ``--set key=value``;
unknown keys are an error that lists the valid ones; values are type-checked (an int is accepted for a
float, ``None`` only where the field is optional, a string where the field is a list of strings).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from parsner.config import parse_set
from parsner.errors import ConfigError

T = TypeVar("T")


def _coerce(cls: type, name: str, value: Any, source: str) -> Any:
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    optional = isinstance(hint, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: {name} cannot be empty")
    origin = typing.get_origin(base)
    if origin is list:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list) and all(isinstance(v, str) for v in items):
            return list(items)
        raise ConfigError(f"{source}: {name} must be a list of strings, got {value!r}")
    if base is bool and isinstance(value, bool):
        return value
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base is float and not isinstance(value, bool):
        try:
            out = float(value)
        except (TypeError, ValueError):
            out = None
        if out is not None and math.isfinite(out):
            return out
    if base is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{source}: {name} must be {getattr(base, '__name__', base)}, got {value!r}")


def apply(cfg: T, updates: dict[str, Any], source: str) -> T:
    valid = [f.name for f in dataclasses.fields(cfg)]  # type: ignore[arg-type]
    unknown = sorted(set(updates) - set(valid))
    if unknown:
        raise ConfigError(f"{source}: unknown config key(s): {', '.join(unknown)}. Valid keys: {', '.join(valid)}")
    values = {k: _coerce(type(cfg), k, v, source) for k, v in updates.items()}
    return dataclasses.replace(cfg, **values)  # type: ignore[type-var]


def load(cls: type[T], path: str | Path | None, overrides: dict[str, Any] | None = None,
         sets: list[str] | None = None) -> T:
    """Defaults <- YAML file <- ``overrides`` (None values skipped) <- ``--set`` items."""
    cfg = cls()
    if path is not None:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (UnicodeDecodeError, OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{p}: cannot read the config: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: a config must be a mapping of keys to values")
        cfg = apply(cfg, raw, str(p))
    cfg = apply(cfg, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    return apply(cfg, parse_set(sets), "--set")


def check_positive(cfg: Any, names: tuple[str, ...], source: str = "config") -> None:
    for name in names:
        v = getattr(cfg, name)
        if v is not None and v <= 0:
            raise ConfigError(f"{source}: {name} must be > 0, got {v!r}")


def dump(cfg: Any) -> str:
    import yaml

    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False, allow_unicode=True)
