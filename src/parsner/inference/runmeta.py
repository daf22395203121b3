"""``parsner.json``: what a run directory says about how to use its model. This module is its only reader and writer.

Written by training (and by every command that makes a model directory: export, distill, pretrain), read by
inference and evaluation. Versioned like ``normalizer.json``: a file from a newer ParsNER with another
``version`` is refused rather than half-understood. Keys this version does not know are kept (in ``extra``)
and written back, so a directory passed through an older tool loses nothing.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsner.errors import ModelLoadError

FILE_NAME = "parsner.json"
#: Version written by this ParsNER. Files without a version (written before it existed) read as version 1.
VERSION = 1

#: Defaults for a model directory without parsner.json (any HF token classifier).
DEFAULT_MAX_LENGTH = 512
DEFAULT_STRIDE = 128


@dataclass
class RunMeta:
    max_length: int = DEFAULT_MAX_LENGTH  # sub-words per window, special tokens included
    stride: int = DEFAULT_STRIDE  # sub-words shared by consecutive windows of a long sentence
    constrained_decoding: bool = True  # Viterbi over valid tag sequences instead of per-word argmax
    label_scheme: str = "IOB2"
    labels: list[str] = field(default_factory=list)  # the head's labels, in id order
    label_all_subtokens: bool = False
    first_subtoken_prediction: bool = True
    normalizer: str | None = None  # the preset the run was trained with (normalizer.json holds the rules)
    base_model: str | None = None
    stand_in: bool = False  # random weights: scores are not those of a pretrained model
    stand_in_description: str | None = None
    selection_metric: str | None = None
    best_checkpoint_step: int | None = None
    parsner_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys written by other tools or versions

    @property
    def stand_in_text(self) -> str | None:
        """The honest description of a stand-in model, None for a real one."""
        if not self.stand_in:
            return None
        return self.stand_in_description or "stand-in model (random init)"

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {"version": VERSION, **data, **self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILE_NAME
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = FILE_NAME) -> RunMeta:
        version = data.get("version", 1)
        if version != VERSION:
            raise ModelLoadError(f"{source}: version {version!r} is not supported (this ParsNER reads version "
                                 f"{VERSION}); upgrade ParsNER to use this model")
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in known and value is not None:  # None: not recorded, the default stands
                values[key] = _checked(source, key, value)
        # older runs wrote the stand-in description under "stand_in" itself
        if isinstance(values.get("stand_in"), str):
            values["stand_in_description"] = values.get("stand_in_description") or values["stand_in"]
            values["stand_in"] = True
        extra = {k: v for k, v in data.items() if k not in known and k != "version"}
        return cls(**values, extra=extra)

    @classmethod
    def from_json(cls, text: str, source: str = FILE_NAME) -> RunMeta:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{source}: not a valid {FILE_NAME} ({exc})") from None
        if not isinstance(data, dict):
            raise ModelLoadError(f"{source}: not a valid {FILE_NAME} (expected a JSON object)")
        return cls.from_dict(data, source)

    @classmethod
    def read(cls, path: str | Path) -> RunMeta:
        """``parsner.json`` in ``path`` (a directory) or the file itself; a missing file gives the defaults."""
        p = Path(path)
        if p.is_dir():
            p = p / FILE_NAME
        if not p.is_file():
            return cls()
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{p}: cannot read {FILE_NAME} ({exc})") from None
        return cls.from_json(text, str(p))


#: The JSON types each key may hold (None is allowed for every key and means "not recorded").
_TYPES: dict[str, tuple[type, ...]] = {
    "max_length": (int,), "stride": (int,), "best_checkpoint_step": (int,),
    "constrained_decoding": (bool,), "label_all_subtokens": (bool,), "first_subtoken_prediction": (bool,),
    "stand_in": (bool, str), "labels": (list,),
}


def _checked(source: str, key: str, value: Any) -> Any:
    if value is None:
        return value
    expected = _TYPES.get(key, (str,))
    ok = isinstance(value, expected) and not (bool not in expected and isinstance(value, bool))
    if key == "labels" and ok:
        ok = all(isinstance(v, str) for v in value)
    if key in ("max_length", "stride") and ok:
        ok = value >= 0 and (key == "stride" or value >= 8)
    if not ok:
        raise ModelLoadError(f"{source}: {key} is {value!r}, which is not a valid value")
    return value
