"""Time building all of PEYMA (hooshvare split) into a dataset, phase by phase.

    .venv/bin/python eval/bench_build.py [--data-dir DIR] [--repeats N] [--json FILE]

The dataset keeps source tokens exactly, so normalisation is not part of the build; the script still times
normalising every PEYMA token with the default ParsBERT normaliser, because training and inference pay that
cost once per token. Target: the whole build well under 30 s on the 2-core development machine.
Not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="folder holding peyma/ (default: $PARSNER_SHARED/data)")
    parser.add_argument("--repeats", type=int, default=1, help="builds to time (the best is reported too)")
    parser.add_argument("--json", type=Path, help="also write the timings and the machine here")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    import datasets  # noqa: F401 - timed on purpose: the import is part of a cold build

    import_s = time.perf_counter() - t0

    from parsner.data.corpora import build_corpus, recipe
    from parsner.envinfo import bench_record, bench_summary

    rec = recipe("peyma", args.data_dir)
    print(f"PEYMA inputs: {', '.join(str(p) for p in rec.inputs)}")
    machine = bench_record()  # before the builds: the load average is the one they start under
    print(f"{bench_summary(machine)}; import datasets {import_s:.2f}s")

    runs = []
    tmp = Path(tempfile.mkdtemp(prefix="parsner-bench-"))
    try:
        for r in range(max(1, args.repeats)):
            t = time.perf_counter()
            report = build_corpus("peyma", tmp / f"run{r}", data_dir=args.data_dir, log=None)
            wall = time.perf_counter() - t
            runs.append((wall, report.timings))
            st = report.stats["total"]
            print(
                f"run {r + 1}: {wall:.2f}s wall - {st['sentences']:,} sentences, {st['tokens']:,} tokens, "
                f"{st['total_entities']:,} entities"
            )
        sentences = _tokens(tmp / "run0")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    from parsner.data.normalize import NormalizerConfig, PersianNormalizer

    n_tokens = sum(len(s) for s in sentences)
    norm = PersianNormalizer(NormalizerConfig.for_parsbert())
    t = time.perf_counter()
    for sent in sentences:
        for tok in sent:
            norm.normalize_token(tok)
    norm_s = time.perf_counter() - t

    phases = ("read", "split", "stats_audit", "to_dataset", "save", "card", "total")
    print("\nphase          " + "  ".join(f"run{r + 1:>2}" for r in range(len(runs))) + "   (seconds)")
    for p in phases:
        label = {"stats_audit": "stats+audit", "to_dataset": "to-Dataset"}.get(p, p)
        print(f"{label:<14} " + "  ".join(f"{t.get(p, 0.0):>5.2f}" for _, t in runs))
    best = min(w for w, _ in runs)
    print(
        f"\nnormalise (not part of the build; every token once, ParsBERT config): {norm_s:.2f}s "
        f"for {n_tokens:,} tokens ({n_tokens / max(norm_s, 1e-9):,.0f} tokens/s)"
    )
    verdict = "OK" if best < 30 else "TOO SLOW"
    print(f"best build wall time {best:.2f}s (target well under 30 s): {verdict}")
    if args.json:
        record = {"runs": [{"wall_s": round(w, 3), **{k: round(v, 3) for k, v in t.items()}} for w, t in runs],
                  "best_wall_s": round(best, 3), "import_datasets_s": round(import_s, 3),
                  "normalise_s": round(norm_s, 3), "tokens": n_tokens, "machine": machine}
        args.json.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0 if best < 30 else 1


def _tokens(path: Path) -> list[list[str]]:
    from parsner.data.dataset import load_dataset_dir

    dd = load_dataset_dir(path)
    return [t for split in dd for t in dd[split]["tokens"]]


if __name__ == "__main__":
    sys.exit(main())
