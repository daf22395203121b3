"""What ``--resume`` checks before a job continues (the work folder itself: :mod:`parsner.training.jobs`).

A training run keeps ``run_config.yaml`` and :data:`FINGERPRINT_FILE` (the dataset it trains on) in its work folder;
pre-training and distillation keep :data:`JOB_CONFIG_FILE` and :data:`JOB_FINGERPRINT_FILE`. ``--resume`` continues
from the newest complete checkpoint, and first refuses, naming the difference, a changed config, a rebuilt dataset
or a tokenizer that no longer matches the checkpoint.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError
from parsner.training.config import RunConfig, dump_yaml, resume_safe_keys

log = logging.getLogger(__name__)

#: The dataset a run trains on (labels, inputs' sha256, content hash of the splits), checked by --resume.
FINGERPRINT_FILE = "data_fingerprint.json"
#: What a pre-training or distillation work folder keeps for --resume: its config and its inputs' fingerprint.
JOB_CONFIG_FILE = "job_config.yaml"
JOB_FINGERPRINT_FILE = "fingerprint.json"


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
        log.info(f"--resume: no {path.name} in {work} (a run started by an older parsner): dataset not verified")
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


def job_work_files(cfg: Any, fingerprint: dict[str, Any]) -> dict[str, str]:
    """A pre-training or distillation work folder's config and fingerprint files, as --resume compares them: the
    config without the keys declared ``resume_safe`` (threads, progress)."""
    import yaml

    doc = yaml.safe_load(dump_yaml(cfg)) or {}
    for key in resume_safe_keys(type(cfg)):
        doc.pop(key, None)
    return {JOB_CONFIG_FILE: yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
            JOB_FINGERPRINT_FILE: json.dumps(fingerprint, indent=1)}


def check_saved_files(work: Path, files: dict[str, str]) -> None:
    """--resume of a pre-training or distillation: the work folder's saved ``files`` must equal this run's."""
    differ = [name for name, now in files.items()
              if (work / name).is_file() and not _same_document((work / name).read_text(encoding="utf-8"), now)]
    if differ:
        what = " and ".join("the config" if n.endswith("yaml") else "the input text or data" for n in differ)
        raise ConfigError(f"--resume: {what} differ(s) from the interrupted run's in {work}; resume with the "
                          "same settings and inputs, or start over with --overwrite")


def _same_document(saved: str, now: str) -> bool:
    """Equal as data (YAML is a superset of JSON): key order and layout do not matter, so a run saved by an
    earlier version that wrote its keys in another order still resumes."""
    import yaml

    if saved == now:
        return True
    try:
        return yaml.safe_load(saved) == yaml.safe_load(now)
    except yaml.YAMLError:
        return False
