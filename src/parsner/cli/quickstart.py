"""``parsner quickstart``: the whole pipeline on the embedded sample, offline, in a few minutes.

build the sample dataset → train the ``tiny`` stand-in → evaluate with seqeval → tag a raw sentence.
Each step is the same CLI command a user would type, so the demo exercises the real code paths.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from parsner.errors import ConfigError

#: Sentence tagged at the end: Arabic ي/ك, ZWNJ and Persian digits on purpose, to show offsets survive.
DEMO_TEXT = (
    "به گزارش خبرگزاری ایسنا، وزير امور خارجه روز ۱۲ مهر ۱۴۰۳ در تهران با نماینده سازمان ملل متحد دیدار کرد "
    "و گفت بودجه طرح‌های مشترک ۲۵ درصد افزایش مي‌یابد."
)

STANDIN_NOTE = """\
NOTE: this model is the `tiny` STAND-IN — a small BERT with random initial weights and a WordPiece vocabulary
learned from the sample's training split, trained on ~130 sentences. Its scores show that every stage works; they
say nothing about ParsBERT. To fine-tune ParsBERT for real (needs the weights: Hub access or a local copy):

  parsner data build --corpus peyma --data-dir /path/to/shared/data --out runs/data/peyma
  parsner train --config training/peyma.yaml --model HooshvareLab/bert-fa-base-uncased
  parsner eval --model models/peyma --data runs/data/peyma --split test
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quickstart",
        help="run the whole pipeline on the embedded sample (tiny stand-in model)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workdir", type=Path, default=Path("runs/quickstart"),
                   help="where the dataset, model and evaluation go (default: runs/quickstart)")
    p.add_argument("--epochs", type=float, default=None, help="override the sample config's epochs")
    p.add_argument("--keep", action="store_true", help="reuse an existing dataset/model in --workdir")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the dataset, model and evaluation of an earlier quickstart in --workdir")
    p.set_defaults(func=run)


def _step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def _check_outputs(args: argparse.Namespace, data_dir: Path, model_dir: Path, eval_dir: Path) -> None:
    """All three outputs, before the first step: replaced only with --overwrite, only if parsner made them."""
    from parsner.atomic import check_output_dir

    if args.workdir.exists() and not args.workdir.is_dir():
        raise ConfigError(f"--workdir {args.workdir} is a file, not a folder")
    for path, kind, reused in ((data_dir, "dataset", args.keep), (model_dir, "run", args.keep),
                               (eval_dir, "eval", False)):
        if reused and path.exists():
            continue
        try:
            check_output_dir(path, kind=kind, overwrite=args.overwrite, option="--workdir")
        except ConfigError as exc:
            hint = "" if args.overwrite else " (--keep reuses the dataset and model; --overwrite replaces them)"
            raise ConfigError(f"{exc}{hint}") from None


def run(args: argparse.Namespace) -> int:
    from parsner.cli.data import print_build
    from parsner.cli.eval import print_eval
    from parsner.cli.train import print_run
    from parsner.data.api import BUILD_PARAMETERS, BUILD_SWITCHES, build_dataset, flag_names
    from parsner.evaluation.api import EVAL_PARAMETERS, EVAL_SWITCHES, evaluate
    from parsner.paths import recipe
    from parsner.training.api import TRAIN_PARAMETERS, TRAIN_SWITCHES, train

    work: Path = args.workdir
    data_dir, model_dir, eval_dir = work / "data", work / "model", work / "eval"
    _check_outputs(args, data_dir, model_dir, eval_dir)

    # Each step is the Python API a command calls, printed as that command prints it; errors name flags.
    _step("1/4 build the embedded sample dataset")
    if not (args.keep and data_dir.exists()):
        with flag_names(BUILD_PARAMETERS, BUILD_SWITCHES):
            report = build_dataset(corpus="sample", out=data_dir, overwrite=args.overwrite)  # progress: logging
        print_build(report)

    _step("2/4 train the tiny stand-in model (random init; NOT ParsBERT)")
    if not (args.keep and (model_dir / "config.json").exists()):
        overrides = {"data": str(data_dir), "epochs": args.epochs}  # epochs None: the recipe's
        with flag_names(TRAIN_PARAMETERS, TRAIN_SWITCHES):
            print_run(train(recipe("sample"), overrides=overrides, out=model_dir, overwrite=args.overwrite))

    _step("3/4 evaluate on the sample's test split (seqeval)")
    with flag_names(EVAL_PARAMETERS, EVAL_SWITCHES):
        print_eval(evaluate(model_dir, data_dir, "test", eval_dir, overwrite=args.overwrite))

    _step("4/4 tag raw text (offsets index the original string)")
    from parsner.inference.tagger import Tagger

    tagger = Tagger.from_pretrained(str(model_dir))
    print(DEMO_TEXT)
    for ent in tagger(DEMO_TEXT):
        assert DEMO_TEXT[ent["start"]:ent["end"]] == ent["text"]
        print(json.dumps(ent, ensure_ascii=False))

    print()
    print(STANDIN_NOTE)
    print(f"dataset: {data_dir}\nmodel:   {model_dir}\nreport:  {eval_dir / 'report.md'}")
    sys.stdout.flush()
    return 0
