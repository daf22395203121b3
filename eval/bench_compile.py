"""Does ``torch.compile`` speed up CPU training of the ParsBERT-shaped stand-in? (eager vs compiled, side by side)

    python eval/bench_compile.py [--json FILE]   # both modes, one after the other, same batches

Model: ParsBERT v1's real config (``$PARSNER_SHARED/tokenizers/bert-base-parsbert-uncased``) cut to 4 layers, random
weights, 15 labels; AdamW (fused) on everything but the word embeddings. Batches of 16 random sequences of lengths
24-56 (PEYMA's typical range). Prints warm-up seconds (compilation included) and sequences/s after warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LENGTHS = [24, 32, 40, 48, 56, 32, 40, 28]


def run(mode: str, layers: int, repeats: int) -> tuple[float, float]:
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification

    from parsner.paths import parsbert_v1_tokenizer_dir

    cfg = AutoConfig.from_pretrained(str(parsbert_v1_tokenizer_dir()))
    cfg.num_hidden_layers, cfg.num_labels = layers, 15
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_config(cfg).train()
    params = [p for n, p in model.named_parameters() if "word_embeddings" not in n]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    step_fn = torch.compile(model, dynamic=True) if mode == "compile" else model

    def step(length: int) -> None:
        ids = torch.randint(5, cfg.vocab_size - 1, (16, length))
        out = step_fn(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.randint(0, 15, (16, length)))
        out.loss.backward()
        opt.step()
        opt.zero_grad()

    t0 = time.perf_counter()
    for length in LENGTHS[:3]:
        step(length)
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(repeats):
        for length in LENGTHS:
            step(length)
    return warmup, 16 * repeats * len(LENGTHS) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the results and the machine here")
    args = ap.parse_args()
    import torch

    from parsner.envinfo import bench_record, bench_summary

    machine = bench_record(torch=torch.get_num_threads())
    print(bench_summary(machine), flush=True)
    rows = []
    for mode in ("eager", "compile"):
        warmup, sps = run(mode, args.layers, args.repeats)
        rows.append({"mode": mode, "warmup_s": round(warmup, 2), "sequences_per_s": round(sps, 2)})
        print(f"{mode:8s} warm-up {warmup:6.1f} s   {sps:6.2f} sequences/s", flush=True)
    if args.json:
        record = {"layers": args.layers, "repeats": args.repeats, "rows": rows, "machine": machine}
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
