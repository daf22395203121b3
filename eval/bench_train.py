"""Training throughput: ParsNER's trainer vs the ``run_ner.py`` recipe of transformers' examples.

Both sides train the same model (default ``parsbert-standin:4``: a 4-layer BERT-base-shaped model with
random weights, identical initial weights on both sides, and ParsBERT v1's real tokenizer and 100k
vocabulary) on the same words (the first N training sentences of a built dataset, normalised by the
same PersianNormalizer) with the same hyper-parameters (learning rate, batch size, epochs, warmup,
weight decay, gradient clipping, seed), one after the other in one process on the same machine.
Both are scored by the same word-level evaluation (seqeval strict IOB2 and default) on the
validation split. Neither side evaluates or saves checkpoints inside its timed training loop.

The recipe side is what ``run_ner.py`` does: ``tokenizer(..., is_split_into_words=True,
truncation=True)``, first-sub-word labels (``label_all_tokens=False``), ``padding=False`` with
``DataCollatorForTokenClassification`` (dynamic padding per batch), the default random sampler (no
length grouping) and the Trainer's default optimiser (``adamw_torch_fused``).

Ours is :func:`parsner.training.train.train` with ``eval_strategy: no``: length-grouped batches, a minimal
collator, row-sparse AdamW for the word embeddings and fused AdamW for the rest (see the
``parsner.training.train`` docstring).

Example (PEYMA, build the dataset first)::

    parsner data build --corpus peyma --out runs/data/peyma
    python eval/bench_train.py --data runs/data/peyma --max-train-samples 2000 --epochs 1

Sequences/s = training sentences x epochs / wall time of the training loop (Trainer ``train_runtime``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="runs/data/peyma", help="dataset dir built by `parsner data build`")
    p.add_argument("--model", default="parsbert-standin:4", help="model spec (default: parsbert-standin:4)")
    p.add_argument("--max-train-samples", type=int, default=200)
    p.add_argument("--max-eval-samples", type=int, default=None)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--out", default="eval/runs/bench_train", help="scratch folder for the two runs")
    p.add_argument("--only", choices=["ours", "recipe"], default=None, help="run one side only")
    p.add_argument("--json", default=None, help="also write the results as JSON to this file")
    return p.parse_args(argv)


def load_words(args: argparse.Namespace) -> tuple[list[list[str]], list[list[str]], list[list[str]],
                                                   list[list[str]], list[str]]:
    """(train words, train tags, valid words, valid tags, label names), normalised like training does."""
    from parsner.data.dataset import load_dataset_dir
    from parsner.data.normalize import NormalizerConfig, PersianNormalizer

    dd = load_dataset_dir(args.data)
    names = dd["train"].features["ner_tags"].feature.names
    train = dd["train"].select(range(min(args.max_train_samples, len(dd["train"]))))
    valid = dd["validation"]
    if args.max_eval_samples:
        valid = valid.select(range(min(args.max_eval_samples, len(valid))))
    norm = PersianNormalizer(NormalizerConfig.for_parsbert())

    def words(ds: Any) -> list[list[str]]:
        return [[norm.normalize_token(t) for t in s] for s in ds["tokens"]]

    def tags(ds: Any) -> list[list[str]]:
        return [[names[i] for i in s] for s in ds["ner_tags"]]

    return words(train), tags(train), words(valid), tags(valid), list(names)


def evaluate_words(model: Any, tokenizer: Any, words: list[list[str]], gold: list[list[str]],
                   label_names: list[str], max_length: int = 512, stride: int = 128) -> dict[str, float]:
    """Word-level seqeval scores (the same code for both sides)."""
    import torch

    from parsner.data.align import encode_words
    from parsner.evaluation.metrics import score
    from parsner.inference.decoding import decode_words

    model.eval()
    enc = encode_words(words, tokenizer, max_length=max_length, stride=stride)
    order = sorted(range(len(enc.windows)), key=lambda k: len(enc.windows[k].input_ids))
    preds: list[Any] = [None] * len(enc.windows)
    pad = tokenizer.pad_token_id or 0
    with torch.inference_mode():
        for b in range(0, len(order), 64):
            batch = order[b : b + 64]
            width = max(len(enc.windows[k].input_ids) for k in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, k in enumerate(batch):
                row = enc.windows[k].input_ids
                ids[r, : len(row)] = torch.tensor(row)
                mask[r, : len(row)] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits.argmax(-1).numpy()
            for r, k in enumerate(batch):
                preds[k] = logits[r]
    decoded = decode_words(enc.windows, preds, enc.word_counts, label_names)
    sc = score(gold, [d.tags for d in decoded])
    return {"f1_strict": sc["strict"]["f1"], "f1_default": sc["default"]["f1"]}


class TokenCounter:
    """Wraps a collator and counts the positions it hands the model (padding included) and real tokens."""

    def __init__(self, collate: Any, limit: int | None = None) -> None:
        self.collate = collate
        self.limit = limit  # count only the first `limit` batches (the training ones)
        self.batches = 0
        self.positions = 0
        self.tokens = 0

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        batch = self.collate(features)
        if self.limit is None or self.batches < self.limit:
            self.positions += int(batch["input_ids"].numel())
            self.tokens += int(batch["attention_mask"].sum())
        self.batches += 1
        return batch


def run_recipe(args: argparse.Namespace, data: tuple, out: Path) -> dict[str, Any]:
    """The run_ner.py recipe: plain Trainer, default collator and sampler, first-sub-word labels."""
    import transformers
    from datasets import Dataset
    from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments

    from parsner.inference import modeling

    train_words, train_tags, valid_words, valid_tags, names = data
    label2id = {n: i for i, n in enumerate(names)}
    tokenizer = modeling.load_tokenizer(args.model, train_words=train_words)
    raw = Dataset.from_dict({"tokens": train_words, "ner_tags": [[label2id[t] for t in s] for s in train_tags]})

    def tokenize_and_align_labels(examples: dict[str, Any]) -> Any:  # as in run_ner.py
        enc = tokenizer(examples["tokens"], padding=False, truncation=True, max_length=512,
                        is_split_into_words=True)
        labels = []
        for i, label in enumerate(examples["ner_tags"]):
            previous = None
            ids = []
            for w in enc.word_ids(batch_index=i):
                ids.append(-100 if w is None or w == previous else label[w])
                previous = w
            labels.append(ids)
        enc["labels"] = labels
        return enc

    train_ds = raw.map(tokenize_and_align_labels, batched=True, remove_columns=raw.column_names)
    transformers.set_seed(args.seed)
    model = modeling.load_model(args.model, names, tokenizer)
    targs = TrainingArguments(
        output_dir=str(out / "recipe"), num_train_epochs=args.epochs, learning_rate=args.learning_rate,
        per_device_train_batch_size=args.batch_size, warmup_steps=_warmup(args, len(train_ds)),
        weight_decay=args.weight_decay, seed=args.seed, eval_strategy="no", save_strategy="no",
        logging_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
    )
    counter = TokenCounter(DataCollatorForTokenClassification(tokenizer))
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, processing_class=tokenizer,
                      data_collator=counter)
    result = trainer.train()
    runtime = float(result.metrics["train_runtime"])
    scores = evaluate_words(model, tokenizer, valid_words, valid_tags, names)
    return {"train_runtime_s": runtime, "sequences_per_s": len(train_words) * args.epochs / runtime, **scores,
            "positions": counter.positions, "real_tokens": counter.tokens}


def _warmup(args: argparse.Namespace, n: int) -> int:
    return round(args.warmup_ratio * math.ceil(n / args.batch_size) * args.epochs)


def run_ours(args: argparse.Namespace, data: tuple, out: Path) -> dict[str, Any]:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    import parsner.training.train as ptrain
    from parsner.training.config import load_config
    from parsner.training.train import train

    train_words, _, valid_words, valid_tags, names = data
    counters: list[TokenCounter] = []
    original = ptrain.PadCollator

    def counting_collator(pad_id: int) -> TokenCounter:  # count what our collator hands the model
        n_batches = math.ceil(len(train_words) / args.batch_size) * math.ceil(args.epochs)
        counters.append(TokenCounter(original(pad_id), limit=n_batches))
        return counters[-1]

    ptrain.PadCollator = counting_collator  # type: ignore[assignment,misc]
    cfg = load_config(None, overrides={
        "data": args.data, "model": args.model, "out": str(out / "ours"), "seed": args.seed,
        "epochs": args.epochs, "max_train_samples": args.max_train_samples,
        "max_eval_samples": args.max_eval_samples, "learning_rate": args.learning_rate,
        "batch_size": args.batch_size, "warmup_ratio": args.warmup_ratio, "weight_decay": args.weight_decay,
        "eval_strategy": "no", "early_stopping_patience": 0, "progress": False, "logging_steps": 10**6,
        "num_threads": args.threads,
    })
    try:
        result = train(cfg, overwrite=True)
    finally:
        ptrain.PadCollator = original  # type: ignore[misc]
    runtime = result.train_seconds
    model = AutoModelForTokenClassification.from_pretrained(str(result.out_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(result.out_dir))
    scores = evaluate_words(model, tokenizer, valid_words, valid_tags, names)
    return {"train_runtime_s": runtime, "sequences_per_s": len(train_words) * args.epochs / runtime, **scores,
            "encoding": result.encoding["train"], "positions": sum(c.positions for c in counters),
            "real_tokens": sum(c.tokens for c in counters)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_words(args)
    results: dict[str, Any] = {
        "model": args.model, "data": args.data, "train_sentences": len(data[0]), "epochs": args.epochs,
        "batch_size": args.batch_size, "learning_rate": args.learning_rate, "threads": torch.get_num_threads(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if args.only in (None, "recipe"):
        results["recipe"] = run_recipe(args, data, out)
    if args.only in (None, "ours"):
        results["ours"] = run_ours(args, data, out)
    from parsner.envinfo import bench_record, bench_summary

    results["machine"] = bench_record(torch=torch.get_num_threads())
    print(bench_summary(results["machine"]))
    print(f"model {args.model}, {len(data[0])} training sentences x {args.epochs} epochs, "
          f"batch {args.batch_size}, {torch.get_num_threads()} threads")
    print(f"{'':8} {'seq/s':>8} {'train s':>8} {'F1 strict':>10} {'F1 default':>10} {'padding':>8}")
    for side in ("recipe", "ours"):
        if side in results:
            r = results[side]
            pad = 1 - r["real_tokens"] / max(1, r["positions"])
            print(f"{side:8} {r['sequences_per_s']:8.2f} {r['train_runtime_s']:8.1f} "
                  f"{100 * r['f1_strict']:10.2f} {100 * r['f1_default']:10.2f} {100 * pad:7.1f}%")
    if "recipe" in results and "ours" in results:
        ratio = results["ours"]["sequences_per_s"] / results["recipe"]["sequences_per_s"]
        results["speedup"] = ratio
        print(f"throughput ratio (ours / run_ner recipe): {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
