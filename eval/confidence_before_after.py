"""Entity scores on raw text, three ways, for each model: what calibration changed.

    python eval/confidence_before_after.py --data runs/data/peyma --split test models/peyma-cpu models/peyma-scratch

Each model tags the split's sentences as raw text (tokens joined with one space; :mod:`parsner.evaluation.rawtext`)
and its entities are scored with

* ``mean``: the mean of the entity's words' tag probabilities (the score ParsNER gave before calibration existed),
* ``product``: the raw span probability (the product; what ``calibration.json`` is fitted on),
* ``calibrated``: the product through the model's ``calibration.json``.

Per way: the expected calibration error (entity level, 10 equal-width bins), the mean score, precision, and the
entities kept at ``--min-score 0.9`` with their precision. Prints a Markdown table; ``--json FILE`` keeps the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from parsner.evaluation.evaluate import split_tags
from parsner.evaluation.rawtext import evaluate_raw_text
from parsner.inference.tagger import Tagger


def measure(model: str, tokens: list[list[str]], gold: list[list[str]]) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for way in ("mean", "product", "calibrated"):
        kwargs = {"score_reduce": way} if way == "mean" else {"calibrator": None} if way == "product" else {}
        tagger = Tagger.from_pretrained(model, device="cpu", **kwargs)
        if way == "calibrated" and tagger.calibrator is None:
            continue
        out = evaluate_raw_text(tagger, tokens, gold, n_bootstrap=0)
        conf = out["confidence"]
        at90 = next(r for r in conf["thresholds"] if r["threshold"] == 0.9)
        scored = [r for r in conf["reliability"] if r["entities"]]
        mean = sum(r["mean_score"] * r["entities"] for r in scored) / max(1, conf["entities"])
        rows[way] = {"ece": conf["ece"], "mean_score": mean, "precision": out["precision"], "f1": out["f1"],
                     "entities": conf["entities"], "kept_at_0.9": at90["entities"],
                     "precision_at_0.9": at90["precision"], "recall_at_0.9": at90["recall"]}
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    data = split_tags(args.data, args.split)
    results = {m: measure(m, data.tokens, data.gold) for m in args.models}
    print("| model | score | ECE | mean score | precision | entities | kept at 0.9 | precision at 0.9 | "
          "recall at 0.9 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for model, rows in results.items():
        for way, r in rows.items():
            print(f"| {Path(model).name} | {way} | {r['ece']:.4f} | {r['mean_score']:.3f} | "
                  f"{100 * r['precision']:.1f} | {r['entities']} | {r['kept_at_0.9']} | "
                  f"{100 * r['precision_at_0.9']:.1f} | {100 * r['recall_at_0.9']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
