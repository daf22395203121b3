"""``parsner benchmark NAME``: build -> train -> eval over seeds, beside the published numbers."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from parsner.evaluation.benchmarks import BENCHMARKS


def register(subparsers: argparse._SubParsersAction) -> None:
    names = ", ".join(f"{k} ({v.description})" for k, v in BENCHMARKS.items())
    p = subparsers.add_parser(
        "benchmark",
        help="reproduce a named benchmark (build, train, eval over seeds) beside the published numbers",
        description=(
            f"Benchmarks: {names}. Writes OUT/benchmark.md (our mean ± std over seeds, default and strict "
            "F1, beside the published rows of eval/baselines.yaml with their sources) and OUT/results.json. "
            "Stand-in models are named as such in the table."
        ),
    )
    p.add_argument("name", choices=list(BENCHMARKS), metavar="NAME", help=f"one of: {', '.join(BENCHMARKS)}")
    p.add_argument("--model", default="tiny",
                   help="model to fine-tune: local dir, hub id, 'tiny' or 'parsbert-standin[:LAYERS]' "
                        "(default: tiny, a stand-in)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (default: 3)")
    p.add_argument("--seed-start", type=int, default=1, help="first seed (default: 1)")
    p.add_argument("--out", type=Path, help="output directory (default: eval/runs/benchmark-NAME-MODEL)")
    p.add_argument("--epochs", type=float, default=None, help="training epochs (default: the config's)")
    p.add_argument("--max-train-samples", type=int, default=None, metavar="N",
                   help="train on at most N sentences (quick runs)")
    p.add_argument("--config", default=None, help="training config YAML (default: training/<corpus>.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="training config override, repeatable")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder holding the corpora (default: $PARSNER_SHARED/data)")
    p.add_argument("--batch-size", type=int, default=32, help="evaluation batch size (default: 32)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples (default: 1000)")
    p.add_argument("--resume", action="store_true", help="reuse datasets and finished runs in OUT")
    p.add_argument("--overwrite", action="store_true", help="rebuild/retrain into an existing OUT")
    p.add_argument("--eval-only", action="store_true",
                   help="score --model (a published checkpoint: hub id or directory) on the test split(s) "
                        "without training, beside its published number")
    p.add_argument("--label-map", metavar="FILE|PRESET", default=None,
                   help="with --eval-only: map the model's types onto the benchmark's")
    p.add_argument("--normalizer", default="auto", metavar="auto|parsbert|parsbert-zwnj|none|FILE",
                   help="with --eval-only: preprocessing (default auto, as for parsner eval)")
    p.add_argument("--append-results", type=Path, default=None, metavar="FILE",
                   help="also append the table to FILE (e.g. eval/RESULTS.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from parsner.workflows.benchmark import run_benchmark

    command = None
    if sys.argv[1:2] == ["benchmark"]:  # run from the shell: record the exact command line
        command = "parsner " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = run_benchmark(
        args.name,
        model=args.model,
        seeds=args.seeds,
        seed_start=args.seed_start,
        out=args.out,
        epochs=args.epochs,
        max_train_samples=args.max_train_samples,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        n_bootstrap=args.bootstrap,
        train_overrides=args.overrides,
        config=args.config,
        resume=args.resume,
        overwrite=args.overwrite,
        append_results=args.append_results,
        command=command,
        eval_only=args.eval_only,
        label_map=args.label_map,
        normalizer=args.normalizer,
    )
    print(result.markdown)
    print(f"wrote {result.out}/benchmark.md and results.json"
          + (f"; appended to {args.append_results}" if args.append_results else ""))
    return 0
