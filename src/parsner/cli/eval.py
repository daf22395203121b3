"""``parsner eval``: score a model on a dataset split, or any system's predictions file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from parsner.cli import check_device
from parsner.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from parsner.evaluation.evaluate import EvalResult


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score a model on a dataset split, or a predictions file, with seqeval",
        description=(
            "Score entity-level precision/recall/F1 with seqeval in the default (conlleval) and strict IOB2 "
            "modes, "
            "with a bootstrap 95% CI, error analysis and a confusion matrix. Either --model and --data, or "
            "--predictions FILE with lines `token gold pred` (tab-separated when tokens contain spaces; "
            "the last two columns are gold and predicted tags; blank line between sentences)."
        ),
    )
    p.add_argument("--model", type=Path,
                   help="trained run directory (parsner train --out), any token-classification model directory, "
                        "or a hub id (e.g. HooshvareLab/bert-base-parsbert-peymaner-uncased)")
    p.add_argument("--label-map", metavar="FILE|PRESET", default=None,
                   help="map the model's types onto the data's (a preset such as arman-to-peyma, or a YAML/JSON "
                        "file of TYPE: TYPE or LABEL_N: TAG); types only one side has are listed and the "
                        "shared types scored separately")
    p.add_argument("--normalizer", default="auto", metavar="auto|parsbert|parsbert-zwnj|none|FILE",
                   help="text preprocessing before the tokenizer (default auto: the model's normalizer.json, "
                        "else parsbert for HooshvareLab ParsBERT ids, parsbert-zwnj for bert-fa-zwnj-*, else none)")
    p.add_argument("--data", type=Path, help="dataset directory (parsner data build --out)")
    p.add_argument("--split", default="test", help="dataset split to score (default: test)")
    p.add_argument("--predictions", type=Path, metavar="FILE", help="score an existing token/gold/pred file")
    p.add_argument("--out", type=Path,
                   help="output directory (default: MODEL/eval-SPLIT; eval/runs/FILE-STEM for --predictions)")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per prediction batch (default: 32)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for the F1 CI (0 disables; default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--no-plots", action="store_true",
                   help="do not write confusion.png, threshold.png and reliability.png")
    p.add_argument("--no-raw-text", action="store_true",
                   help="score the corpus's tokens only: do not also tag the sentences as raw text and score "
                        "character spans (about doubles the prediction time)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.add_argument("--quiet", action="store_true", help="do not print the report")
    p.set_defaults(func=run)


def _check_out(out: Path, args: argparse.Namespace, inputs: list[Path | None]) -> None:
    """The output rule (parsner.atomic): only an earlier evaluation is replaced, only with --overwrite."""
    from parsner.atomic import check_output_dir

    check_output_dir(out, kind="eval", overwrite=args.overwrite, inputs=inputs)


def run(args: argparse.Namespace) -> int:
    from parsner.data.api import flag_names
    from parsner.evaluation import evaluate as ev
    from parsner.evaluation.api import EVAL_PARAMETERS, EVAL_SWITCHES, check_eval_options, evaluate

    with flag_names(EVAL_PARAMETERS, EVAL_SWITCHES):
        check_eval_options(bootstrap=args.bootstrap, batch_size=args.batch_size)
    if args.predictions is not None:
        if args.model is not None or args.data is not None:
            raise ConfigError("use either --predictions FILE or --model DIR --data DIR, not both")
        out = args.out or ev.default_predictions_out(args.predictions)
        _check_out(out, args, inputs=[args.predictions])
        result = ev.evaluate_predictions_file(args.predictions, out=out, n_bootstrap=args.bootstrap, seed=args.seed,
                                              overwrite=args.overwrite, plots=not args.no_plots)
    else:
        if args.model is None or args.data is None:
            raise ConfigError("parsner eval needs --model DIR and --data DIR (or --predictions FILE)")
        if args.out is not None:
            out = args.out
        elif args.model.is_dir():
            out = args.model / f"eval-{args.split}"
        else:  # a hub id: keep its outputs out of a directory named like the id
            out = Path("eval") / "runs" / f"{str(args.model).replace('/', '--')}-{args.split}"
        # The output first, then the device: both before the Python API loads the model.
        _check_out(out, args, inputs=[args.model if args.model.exists() else None, args.data])
        check_device(args.device)
        with flag_names(EVAL_PARAMETERS, EVAL_SWITCHES):
            result = evaluate(args.model, args.data, args.split, out, batch_size=args.batch_size, device=args.device,
                              label_map=args.label_map, normalizer=args.normalizer, bootstrap=args.bootstrap,
                              seed=args.seed, plots=not args.no_plots, overwrite=args.overwrite,
                              raw_text=not args.no_raw_text)
    print_eval(result, quiet=args.quiet, plots=not args.no_plots)
    return 0


def print_eval(result: EvalResult, *, quiet: bool = False, plots: bool = True) -> None:
    """What ``parsner eval`` prints: the report (unless ``quiet``), then what it wrote."""
    from parsner.evaluation.api import eval_summary

    for text in eval_summary(result, quiet=quiet, plots=plots):
        print(text)
