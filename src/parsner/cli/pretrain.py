"""``parsner pretrain``: continue masked-LM training of a base model on unlabelled text
(:mod:`parsner.training.pretrain`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="adapt a base model to your text by masked-LM training (whole-word masking)",
        description=(
            "Continue masked-LM training of a BERT-family base (hub id, local dir, tiny[:L], parsbert-standin[:L]) "
            "on unlabelled text: plain text (one document or sentence per line), JSONL (text or tokens), annotated "
            "corpus files, or built datasets (train+validation). The result in OUT is a base model for "
            "`parsner train --model OUT`. Text that contains a test sentence of a --guard dataset (and of any "
            "dataset given as --text) is refused. Resumable like `parsner train`."
        ),
    )
    p.add_argument("--model", help="base model: local dir, hub id, 'tiny[:L]' or 'parsbert-standin[:L]'")
    p.add_argument("--text", nargs="+", metavar="FILE", help="text files, JSONL, corpus files or dataset dirs")
    p.add_argument("--out", help="output directory (default models/<config name>)")
    from parsner.training.config import add_job_options

    add_job_options(p, "training/pretrain-peyma.yaml")
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimiser steps (overrides --epochs)")
    p.add_argument("--seed", type=int)
    p.add_argument("--guard", nargs="+", metavar="DATASET",
                   help="datasets whose test split must not be in the text (a file: all its sentences)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--allow-test-overlap", action="store_true",
                   help="report text that contains test sentences instead of refusing it")
    g.add_argument("--drop-test-overlap", action="store_true",
                   help="remove the sentences that contain a test sentence (counted) and go on")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from parsner.training.pretrain import load_pretrain_config, pretrain

    overlap = "report" if args.allow_test_overlap else "drop" if args.drop_test_overlap else None
    direct = {"model": args.model, "text": args.text, "out": args.out, "epochs": args.epochs,
              "max_steps": args.max_steps, "seed": args.seed, "guard": args.guard, "test_overlap": overlap}
    cfg = load_pretrain_config(args.config, direct, args.sets)
    result = pretrain(cfg, resume=args.resume, overwrite=args.overwrite)  # a signal stop: see cli.main
    m = result.metrics
    extra = f" held-out MLM loss {m['heldout_mlm_loss']:.4f}" if "heldout_mlm_loss" in m else ""
    print(f"{result.out_dir}: {result.steps} steps{extra}; fine-tune with `parsner train --model {result.out_dir}`")
    return 0
