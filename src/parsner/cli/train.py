"""``parsner train``: fine-tune a token classifier from a run config (see :mod:`parsner.training.train`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="fine-tune a token classifier (ParsBERT or a stand-in) on a built dataset",
        description=(
            "Train from a YAML run config (training/*.yaml) with optional overrides. The run is written "
            "to OUT (default models/<run-name>/) only when it is complete; until then it lives in "
            "OUT.incomplete/ (checkpoints, log), which --resume continues. Ctrl-C/SIGTERM save a "
            "checkpoint and stop (exit 130/143)."
        ),
    )
    from parsner.training.config import add_flags, add_job_options

    add_job_options(p, "training/sample.yaml")
    add_flags(p)  # --data, --model, --out, --seed, --epochs, ... : declared on the RunConfig fields
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from parsner.training.config import flag_values
    from parsner.training.train import run_training

    # A run stopped by a signal raises TrainingInterrupted; cli.main prints it and exits with its code.
    result = run_training(args.config, overrides=args.sets, resume=args.resume, overwrite=args.overwrite,
                          **flag_values(args))
    import os

    if int(os.environ.get("RANK", "0")) != 0:  # DDP: rank 0 reports
        return 0
    m = result.metrics
    print(f"{result.out_dir}: validation f1_strict={m.get('f1_strict', float('nan')):.4f} "
          f"f1_default={m.get('f1_default', float('nan')):.4f}")
    if result.stand_in:
        print(f"NOTE: {result.stand_in}")
    return 0
