"""Two systems on the same test sentences: F1 of each and a paired bootstrap CI of their difference.

    python eval/compare_runs.py runs/eval-a/predictions.conll runs/eval-b/predictions.conll --names direct,pretrained

Input: the ``predictions.conll`` files ``parsner eval --out DIR`` writes (``token gold pred``), in the same
sentence order with the same gold tags. Sentences are resampled with replacement (the same draw for both
systems), so the CI is of ``F1(b) - F1(a)`` on resampled test sets; a CI that excludes 0 is a difference the
test set supports. Seqeval default (conlleval-like) and strict IOB2 modes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from parsner.evaluation.evaluate import read_predictions
from parsner.evaluation.metrics import sentence_counts


def _f1(c: np.ndarray) -> np.ndarray:
    denom = c[..., 1] + c[..., 2]
    return np.where(denom > 0, 2.0 * c[..., 0] / np.maximum(denom, 1), 0.0)


def paired(a_path: Path, b_path: Path, *, resamples: int = 2000, seed: int = 0) -> dict[str, dict[str, float]]:
    a, b = read_predictions(a_path), read_predictions(b_path)
    if a.gold != b.gold:
        raise SystemExit(f"{a_path} and {b_path} do not hold the same sentences with the same gold tags")
    rng = np.random.default_rng(seed)
    n = len(a.gold)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
    out = {}
    for mode in ("default", "strict"):
        ca, cb = sentence_counts(a.gold, a.pred, mode), sentence_counts(b.gold, b.pred, mode)
        fa, fb = float(_f1(ca.sum(0))), float(_f1(cb.sum(0)))
        diff = _f1(weights @ cb) - _f1(weights @ ca)
        low, high = np.percentile(diff, [2.5, 97.5])
        out[mode] = {"f1_a": fa, "f1_b": fb, "diff": fb - fa, "diff_low": float(low), "diff_high": float(high),
                     "p_b_not_better": float((diff <= 0).mean())}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--names", default="a,b", help="two names for the table")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    na, nb = args.names.split(",")
    res = paired(args.a, args.b, resamples=args.resamples, seed=args.seed)
    print(f"| mode | {na} F1 | {nb} F1 | {nb} - {na} | paired 95% CI | share of resamples {nb} <= {na} |")
    print("|---|---:|---:|---:|---|---:|")
    for mode, r in res.items():
        print(f"| {mode} | {100 * r['f1_a']:.2f} | {100 * r['f1_b']:.2f} | {100 * r['diff']:+.2f} | "
              f"{100 * r['diff_low']:+.2f} to {100 * r['diff_high']:+.2f} | {r['p_b_not_better']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
