"""A tiny model trained in seconds on synthetic Persian NER data, and its ONNX exports (ONNX/serve tests)."""

from __future__ import annotations

from pathlib import Path

from train_helpers import make_sentences, run_cli, save_dataset, tiny_config

#: Written for these tests: Persian with ZWNJ, Persian and ASCII digits, and entities the model learns.
TEXTS = [
    "حمید رحمانی به تهران رفت.",
    "مریم احمدی با سازمان ملل دیدار کرد و در سال ۱۴۰۰ به اصفهان رفت.",
    "خبرگزاری‌ها در کرمان گفت که بانک مرکزی در سال 1399 به مسقط رفت؛ علی می‌شود.",
]


def train_tiny_run(root: Path) -> Path:
    """Train the tiny stand-in on synthetic sentences (about 10 s); returns the run directory."""
    data = save_dataset(root / "data", {"train": make_sentences(96, 1), "validation": make_sentences(24, 2),
                                        "test": make_sentences(40, 3)})
    config = tiny_config(root / "run.yaml", data, epochs=8)
    out = root / "run"
    res = run_cli(["train", "--config", str(config), "--out", str(out)])
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def export(run: Path, out: Path, quantize: str | None = None) -> Path:
    from parsner.export import export_onnx

    export_onnx(run, out, quantize=quantize)
    return out
