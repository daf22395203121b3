"""What a run keeps while it trains, and what ``--resume`` checks before it continues.

A run trains in ``<out>.incomplete/``: ``checkpoints/checkpoint-N/`` (each closed by a
:data:`CHECKPOINT_COMPLETE` marker written last, so a save cut short by a crash or a full disk is recognised),
``run_config.yaml`` and :data:`FINGERPRINT_FILE` (the dataset it trains on). ``--resume`` continues from the
newest complete checkpoint, and first refuses, naming the difference, a changed config, a rebuilt dataset or a
tokenizer that no longer matches the checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError
from parsner.training.config import RunConfig, resume_safe_keys

INCOMPLETE_SUFFIX = ".incomplete"
#: Written last into every checkpoint folder: a checkpoint without it was cut short (crash, full disk).
CHECKPOINT_COMPLETE = ".parsner-complete"
#: The dataset a run trains on (labels, inputs' sha256, content hash of the splits), checked by --resume.
FINGERPRINT_FILE = "data_fingerprint.json"


def _log(msg: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:  # one voice under DDP
        print(f"parsner train: {msg}", file=sys.stderr, flush=True)


def checkpoints(ckpt_dir: Path) -> list[Path]:
    """``checkpoint-N`` folders, newest first."""
    if not ckpt_dir.is_dir():
        return []
    found = []
    for p in ckpt_dir.iterdir():
        head, _, num = p.name.rpartition("-")
        if head == "checkpoint" and num.isdigit() and p.is_dir():
            found.append((int(num), p))
    return [p for _, p in sorted(found, reverse=True)]


def checkpoint_is_complete(path: Path) -> bool:
    if (path / CHECKPOINT_COMPLETE).is_file():
        return True
    try:  # written before the marker existed: the trainer state is the last file a checkpoint gets
        json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_checkpoint(ckpt_dir: Path) -> str | None:
    return next((str(p) for p in checkpoints(ckpt_dir) if checkpoint_is_complete(p)), None)


def drop_incomplete_checkpoints(ckpt_dir: Path) -> None:
    """Remove checkpoints whose save was cut short (they are parsner's own, inside the work folder)."""
    for p in checkpoints(ckpt_dir):
        if not checkpoint_is_complete(p):
            _log(f"--resume: skipping the incomplete checkpoint {p} (its save was interrupted); removing it")
            shutil.rmtree(p, ignore_errors=True)


def data_fingerprint(cfg: RunConfig, train: Any, valid: Any, names: list[str]) -> dict[str, Any]:
    """What --resume compares: label names, the build's input files (sha256), and the splits' content."""
    import hashlib

    splits = {}
    for split, ds in (("train", train), ("validation", valid)):
        h = hashlib.sha256()
        for toks, tags in zip(ds["tokens"], ds["ner_tags"], strict=True):
            h.update(json.dumps([toks, tags], ensure_ascii=False).encode("utf-8"))
        splits[split] = h.hexdigest()
    inputs: dict[str, str | None] = {}
    build = Path(str(cfg.data)) / "build.json"
    try:
        doc = json.loads(build.read_text(encoding="utf-8"))
        inputs = {str(i.get("path")): i.get("sha256") for i in doc.get("inputs", []) if isinstance(i, dict)}
    except (OSError, ValueError, AttributeError):
        pass
    return {"data": str(cfg.data), "labels": list(names), "inputs": inputs, "splits": splits}


def check_fingerprint(work: Path, now: dict[str, Any]) -> None:
    path = work / FINGERPRINT_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        _log(f"--resume: no {path.name} in {work} (a run started by an older parsner): dataset not verified")
        return
    changes = []
    if saved.get("labels") != now["labels"]:
        changes.append(f"labels were {', '.join(saved.get('labels') or [])}; now {', '.join(now['labels'])}")
    old_in, new_in = saved.get("inputs") or {}, now["inputs"]
    for name in sorted(set(old_in) | set(new_in)):
        if name not in new_in:
            changes.append(f"input {name} is no longer part of it")
        elif name not in old_in:
            changes.append(f"input {name} was added")
        elif old_in[name] != new_in[name]:
            changes.append(f"input {name} changed (sha256 {str(old_in[name])[:12]}… -> {str(new_in[name])[:12]}…)")
    for split, digest in now["splits"].items():
        if (saved.get("splits") or {}).get(split) != digest and not changes:
            changes.append(f"the {split} split's sentences or tags changed")
    if changes:
        raise ConfigError(
            f"--resume: the dataset {now['data']} is not the one the interrupted run in {work} was trained on: "
            f"{'; '.join(changes)}. Resume with the original dataset, or start over with --overwrite"
        )


def check_checkpoint_tokenizer(checkpoint: str, tokenizer: Any) -> None:
    ckpt = Path(checkpoint)
    if not any((ckpt / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        return
    from transformers import AutoTokenizer

    try:
        saved = AutoTokenizer.from_pretrained(str(ckpt)).get_vocab()
    except Exception as exc:  # an unreadable tokenizer is reported, not crashed on
        raise ConfigError(f"--resume: cannot read the tokenizer saved in {ckpt}: {exc}") from exc
    now = tokenizer.get_vocab()
    if saved != now:
        differ = len(set(saved.items()) ^ set(now.items()))
        raise ConfigError(
            f"--resume: the tokenizer differs from the one saved in {ckpt} ({len(saved)} vs {len(now)} tokens, "
            f"{differ} entries differ); resume with the original model and dataset, or start over with --overwrite"
        )


def check_saved_config(work: Path, cfg: RunConfig) -> None:
    import yaml

    saved_path = work / "run_config.yaml"
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    now = cfg.resolved()
    ignore = resume_safe_keys()
    diff = sorted(k for k in now if k not in ignore and saved.get(k) != now[k])
    if diff:
        raise ConfigError(
            f"--resume: the config differs from the interrupted run's ({work / 'run_config.yaml'}) in: "
            f"{', '.join(diff)}; resume with the same settings or start over with --overwrite"
        )
