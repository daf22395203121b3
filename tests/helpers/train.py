"""Small synthetic Persian NER datasets and tiny-model run configs for the training tests."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ZWNJ = "\u200c"
PER = [["حمید", "رحمانی"], ["مریم", "احمدی"], ["علی"], ["زهرا", "كريمي"], ["رضا", "موسوی"]]
LOC = [["تهران"], ["مسقط"], ["اصفهان"], ["خلیج", "فارس"], ["کرمان"]]
ORG = [["سازمان", "ملل"], ["وزارت", "امور", "خارجه"], ["بانک", "مرکزی"], [f"خبرگزاری{ZWNJ}ها"]]
FILL = ["دیروز", "به", "رفت", f"می{ZWNJ}شود", "گفت", "در", "سال", "1399", "۱۴۰۰", "با", "دیدار", "کرد", "و"]
TEMPLATES = [
    ("PER", "به", "LOC", "رفت"),
    ("PER", "با", "ORG", "دیدار", "کرد"),
    ("ORG", "در", "LOC", "گفت"),
    ("دیروز", "PER", "و", "PER", "در", "LOC", "بودند"),
    ("در", "سال", "1399", "ORG", "به", "LOC", "رفت"),
]
POOLS = {"PER": PER, "LOC": LOC, "ORG": ORG}
LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def make_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tokens: list[str] = []
        tags: list[str] = []
        for slot in rng.choice(TEMPLATES):
            if slot in POOLS:
                ent = rng.choice(POOLS[slot])
                tokens += ent
                tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(ent) - 1)
            else:
                tokens.append(slot)
                tags.append("O")
        if rng.random() < 0.3:
            tokens.append(rng.choice(FILL))
            tags.append("O")
        out.append((tokens, tags))
    return out


def save_dataset(path: Path, splits: dict[str, list[tuple[list[str], list[str]]]],
                 labels: list[str] = LABELS) -> Path:
    from datasets import Dataset, DatasetDict

    from parsner.data.dataset import dataset_features

    features = dataset_features(labels)
    dd = {}
    for split, rows in splits.items():
        dd[split] = Dataset.from_dict(
            {
                "id": [f"{split}-{i}" for i in range(len(rows))],
                "tokens": [t for t, _ in rows],
                "ner_tags": [[labels.index(x) for x in g] for _, g in rows],
                "source": ["synthetic"] * len(rows),
                "line": list(range(1, len(rows) + 1)),
                "doc_id": [f"d{i // 5}" for i in range(len(rows))],
                "offsets": [[] for _ in rows],
            },
            features=features,
        )
    DatasetDict(dd).save_to_disk(str(path))
    return path


def dataset_with_test(path: Path, test_tokens: list[str]) -> Path:
    """48 training and 12 validation sentences, and one test sentence (PER, PER, O, O, ORG, ORG, O, O)."""
    test = [(test_tokens, ["B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O", "O"])]
    return save_dataset(path, {"train": make_sentences(48, 1), "validation": make_sentences(12, 2), "test": test})


def small_dataset(path: Path, n_train: int = 64, n_valid: int = 16) -> Path:
    return save_dataset(path, {"train": make_sentences(n_train, 1), "validation": make_sentences(n_valid, 2)})


def tiny_config(path: Path, data: Path, **extra: Any) -> Path:
    cfg = {
        "data": str(data),
        "model": "tiny",
        "seed": 7,
        "epochs": 4,
        "learning_rate": 5e-3,
        "batch_size": 8,
        "eval_batch_size": 16,
        "warmup_ratio": 0.1,
        "max_length": 64,
        "stride": 16,
        "logging_steps": 1,
        "early_stopping_patience": 0,
        "save_total_limit": 2,
        "num_threads": 1,
        "progress": False,
        "tiny_layers": 1,
        "tiny_hidden": 32,
        "tiny_heads": 2,
        "tiny_intermediate": 64,
        "tiny_vocab_size": 400,
    }
    cfg.update(extra)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def run_cli(args: list[str], env_extra: dict[str, str] | None = None, timeout: int = 300,
            module: tuple[str, ...] = ("-m", "parsner")) -> subprocess.CompletedProcess:
    """Run parsner in a subprocess; a Python traceback on stderr fails the calling test (exit 2 is one line)."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
    env.update(env_extra or {})
    res = subprocess.run([sys.executable, *module, *args], capture_output=True, text=True, env=env,
                         timeout=timeout, check=False)
    assert_no_traceback(res.stderr, args)
    return res


def assert_no_traceback(stderr: str, args: list[str] | None = None) -> None:
    """Users get one message, never a Python traceback (crashes are bugs to fix, not to tolerate)."""
    if "Traceback (most recent call last)" in stderr:
        raise AssertionError(f"parsner {' '.join(args or [])} printed a traceback:\n{stderr[-3000:]}")


def final_metrics(run_dir: Path) -> dict[str, Any]:
    import json

    doc = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return {k: v for k, v in doc["metrics"].items() if "runtime" not in k and "per_second" not in k}
