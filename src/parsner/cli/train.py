"""``parsner train``: fine-tune a token classifier from a run config (see :mod:`parsner.training.train`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from parsner.training.train import RunResult


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
    import os

    from parsner.data.api import flag_names
    from parsner.training.api import TRAIN_PARAMETERS, TRAIN_SWITCHES, train
    from parsner.training.config import flag_values, load_config

    # The flags make the config (their errors name them); the Python API trains it.
    cfg = load_config(args.config, overrides=flag_values(args), sets=args.sets)
    # A run stopped by a signal raises TrainingInterrupted; cli.main prints it and exits with its code.
    with flag_names(TRAIN_PARAMETERS, TRAIN_SWITCHES):
        result = train(cfg, resume=args.resume, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) != 0:  # DDP: rank 0 reports
        return 0
    print_run(result)
    return 0


def print_run(result: RunResult) -> None:
    """What ``parsner train`` prints about a finished run: its folder, validation F1, and a stand-in's note."""
    from parsner.training.api import run_summary

    for text in run_summary(result):
        print(text)
