"""``parsner distill``: a small student learns a fine-tuned teacher's tag distributions
(:mod:`parsner.training.distill`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distill",
        help="shrink a fine-tuned tagger: a small student learns the teacher's per-word tag distributions",
        description=(
            "The student learns the teacher's per-word tag distributions (KL at a temperature) plus the gold "
            "tags where there are any; --unlabelled text adds teacher-only examples. The teacher's labels and "
            "normaliser carry over. OUT is an ordinary run directory (Tagger, pipeline, parsner eval/predict). "
            "Resumable like `parsner train`."
        ),
    )
    p.add_argument("--teacher", help="the fine-tuned run directory to distil")
    p.add_argument("--student", help="tiny[:L], parsbert-standin[:L], a hub id or local base, or teacher:K "
                                     "(the teacher's first K layers)")
    p.add_argument("--data", help="dataset directory built by `parsner data build`")
    p.add_argument("--unlabelled", nargs="+", metavar="FILE",
                   help="unlabelled text (plain text, JSONL, corpus files, datasets) for teacher-only examples")
    p.add_argument("--out", help="run directory (default models/<config name>)")
    from parsner.training.config import add_job_options

    add_job_options(p, "training/distill-peyma.yaml")
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-train-samples", type=int, metavar="N", help="the first N labelled training sentences")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from parsner.training.distill import distill, load_distill_config

    direct = {"teacher": args.teacher, "student": args.student, "data": args.data, "unlabelled": args.unlabelled,
              "out": args.out, "epochs": args.epochs, "max_train_samples": args.max_train_samples,
              "seed": args.seed}
    cfg = load_distill_config(args.config, direct, args.sets)
    result = distill(cfg, resume=args.resume, overwrite=args.overwrite)  # a signal stop: see cli.main
    m = result.metrics
    print(f"{result.out_dir}: validation f1_strict={m.get('f1_strict', float('nan')):.4f} "
          f"f1_default={m.get('f1_default', float('nan')):.4f}")
    return 0
