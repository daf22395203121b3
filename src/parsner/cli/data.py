"""``parsner data``: build a dataset from annotated files or a named corpus, and show its stats and audit.

parsner data build INPUT... --out DIR [--format F] [--label-map M] [--split-ratios 0.8,0.1,0.1]
                            [--seed N] [--splits-file F] [--strict] [--overwrite] [--license ID]
parsner data build --corpus peyma|arman|parstwiner|sample [--fold K|all] [--data-dir D] --out DIR
parsner data stats DIR          # the saved stats again
parsner data audit DIR          # duplicate and train/validation/test overlap audit of any built dataset
parsner data corpora            # the known corpora and whether their files are here
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsner.errors import ConfigError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from parsner.data.dataset import BuildReport


def register(subparsers: argparse._SubParsersAction) -> None:
    from parsner.data.corpora import corpus_names

    data = subparsers.add_parser("data", help="build datasets, show their stats and overlap audit")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(func=lambda _args: _help(data))

    b = sub.add_parser(
        "build",
        help="build a dataset (HF DatasetDict + stats, audit, card) from files or a named corpus",
        description="Build a DatasetDict from annotated files (CoNLL, JSONL, doccano, Label Studio, brat, "
        "WebAnno/INCEpTION TSV, Prodigy) or a named corpus. "
        "Splits come from a --splits-file, else from folder or file names (a folder named train, dev or test "
        "in any case, e.g. corpus/train/part1.txt; a file train.txt, train_foldK/test_foldK; then every input "
        "must name one), else from a seeded split by document.",
    )
    b.add_argument("inputs", nargs="*", metavar="INPUT", help="annotated files (omit with --corpus)")
    b.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (must not exist)")
    b.add_argument("--corpus", choices=corpus_names(), help="build a known corpus instead of INPUT files")
    b.add_argument("--fold", help="ARMAN fold: 1, 2, 3, or 'all' (the leaked union; needs --allow-leakage)")
    b.add_argument("--data-dir", type=Path, help="folder holding the corpora (default: $PARSNER_SHARED/data)")
    b.add_argument("--allow-leakage", action="store_true", help="allow builds whose test is inside train")
    b.add_argument("--from-hub", action="store_true", help="load --corpus from the HF Hub (needs network)")
    b.add_argument(
        "--format",
        help="input format (default: detected per file): conll, peyma, arman, parstwiner, tsv, jsonl, doccano, "
        "labelstudio, brat (a folder or .ann files), webanno/inception, prodigy",
    )
    b.add_argument(
        "--annotator",
        metavar="ID|first|last",
        help="Label Studio tasks with several annotations: use this annotator's (id or e-mail), or the "
        "first/last by creation time (default: stop and list them)",
    )
    b.add_argument("--label-map", help="label map preset or YAML/JSON file {old_type: new_type}")
    b.add_argument(
        "--split-ratios",
        default="0.8,0.1,0.1",
        help="train,validation,test fractions for a seeded split (default 0.8,0.1,0.1); with named inputs "
        "the validation fraction is carved from train when no dev file is given",
    )
    b.add_argument("--seed", type=int, default=42, help="seed of the document split (default 42)")
    b.add_argument("--splits-file", type=Path, help="JSON {split: [document ids]} fixing the splits")
    b.add_argument("--strict", action="store_true", help="fail on invalid IOB2 instead of repairing")
    b.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    b.add_argument("--name", help="dataset name for the card (default: the corpus or folder name)")
    b.add_argument(
        "--license",
        metavar="ID",
        help="licence of the INPUT files that are not a known corpus's: a Hub licence id (mit, cc-by-4.0, ...), "
        "research-only or academic-only (default: unknown; known corpus files keep their own licence)",
    )
    b.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    b.set_defaults(func=cmd_build)

    s = sub.add_parser("stats", help="print the stats of a built dataset")
    s.add_argument("dir", type=Path, metavar="DIR")
    s.add_argument("--json", action="store_true", help="print stats.json as JSON")
    s.set_defaults(func=cmd_stats)

    a = sub.add_parser("audit", help="duplicates and train/validation/test overlap of a built dataset")
    a.add_argument("dir", type=Path, metavar="DIR")
    a.add_argument("--json", action="store_true", help="print the audit as JSON")
    a.add_argument("--examples", type=int, default=5, help="overlapping sentences to show per pair")
    a.set_defaults(func=cmd_audit)

    c = sub.add_parser("corpora", help="list the known corpora and whether their files are here")
    c.add_argument("--data-dir", type=Path, help="folder holding the corpora (default: $PARSNER_SHARED/data)")
    c.set_defaults(func=cmd_corpora)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _print_summary(stats: dict[str, Any], audit: dict[str, Any] | None) -> None:
    from parsner.data.datastats import summary_lines

    for text in summary_lines(stats, audit):
        print(text)


def _warn(lines: list[str]) -> None:
    from parsner.data.api import warning_banner

    for w in lines:
        print(warning_banner(w), file=sys.stderr)


def _command_from_args(args: argparse.Namespace) -> str:
    """The equivalent ``parsner data build`` command line, recorded in build.json and the card."""
    parts = ["parsner", "data", "build", *map(str, args.inputs)]
    for flag in (
        "corpus",
        "fold",
        "data_dir",
        "format",
        "annotator",
        "label_map",
        "split_ratios",
        "seed",
        "splits_file",
        "name",
        "license",
    ):
        value = getattr(args, flag)
        if value is not None:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    for flag in ("allow_leakage", "from_hub", "strict", "overwrite"):
        if getattr(args, flag):
            parts.append(f"--{flag.replace('_', '-')}")
    parts += ["--out", str(args.out)]
    return " ".join(shlex.quote(p) for p in parts)


def cmd_build(args: argparse.Namespace) -> int:
    from parsner.data.api import BUILD_PARAMETERS, BUILD_SWITCHES, build_dataset, flag_names

    # The flag-level checks come first so that their messages speak of INPUT files and flags.
    if args.corpus and args.inputs:
        raise ConfigError("give either INPUT files or --corpus, not both")
    if args.corpus and args.annotator is not None:
        raise ConfigError("--annotator applies to Label Studio INPUT files, not to --corpus")
    if args.corpus and args.license is not None:
        raise ConfigError("--license applies to INPUT files; a --corpus has its own licence")
    if not args.corpus:
        if not args.inputs:
            raise ConfigError("nothing to build: give INPUT files or --corpus NAME")
        for flag, value in (
            ("--fold", args.fold),
            ("--data-dir", args.data_dir),
            ("--from-hub", args.from_hub),
        ):
            if value:
                raise ConfigError(f"{flag} only applies with --corpus")
        if len(args.inputs) == 1 and not Path(args.inputs[0]).exists():
            from parsner.data.corpora import CORPORA

            if args.inputs[0].lower() in CORPORA:
                raise ConfigError(
                    f"no file {args.inputs[0]!r}; did you mean --corpus {args.inputs[0].lower()}?"
                )
    log = (lambda _m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    with flag_names(BUILD_PARAMETERS, BUILD_SWITCHES):
        report = build_dataset(
            args.inputs, out=args.out, corpus=args.corpus, fold=args.fold, data_dir=args.data_dir,
            allow_leakage=args.allow_leakage, from_hub=args.from_hub, format=args.format, annotator=args.annotator,
            label_map=args.label_map, split_ratios=args.split_ratios, seed=args.seed, splits_file=args.splits_file,
            strict=args.strict, overwrite=args.overwrite, name=args.name, license=args.license, log=log,
            command=_command_from_args(args),
        )
    print_build(report)
    return 0


def print_build(report: BuildReport) -> None:
    """What ``parsner data build`` prints about a finished build: stats, audit, the folder, then warnings."""
    from parsner.data.api import build_summary

    for text in build_summary(report):
        print(text)
    _warn(report.warnings)


def cmd_stats(args: argparse.Namespace) -> int:
    from parsner.data.dataset import load_dataset_dir, read_json
    from parsner.data.datastats import compute_stats

    path = args.dir / "stats.json"
    if path.is_file():
        stats = read_json(path)
    else:
        stats = compute_stats(load_dataset_dir(args.dir))
        print(f"(no stats.json in {args.dir}: computed from the dataset)", file=sys.stderr)
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
        return 0
    if not isinstance(stats, dict):
        raise InputError(path, None, "is not a stats object; rebuild the dataset (or delete stats.json)")
    try:
        print(f"{stats.get('name', args.dir.name)}: {args.dir}")
        _print_summary(stats, None)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InputError(path, None, f"unexpected content ({exc!r}); rebuild the dataset "
                                     "(or delete stats.json)") from None
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from parsner.data.dataset import load_dataset_dir
    from parsner.data.datastats import format_audit, overlap_audit

    audit = overlap_audit(load_dataset_dir(args.dir), max_examples=max(0, args.examples))
    if args.json:
        print(json.dumps(audit, ensure_ascii=False, indent=2))
    else:
        print(format_audit(audit))
    _warn(audit["warnings"])
    return 0


def cmd_corpora(args: argparse.Namespace) -> int:
    from parsner.data.corpora import CORPORA, expected_files

    for name, info in CORPORA.items():
        folds = ["1", "2", "3", "all"] if info.has_folds else [None]
        hub = info.hub_id or "-"
        print(f"{name:<11} {info.pretty_name}  (licence: {info.terms.terms}; hub: {hub})")
        seen: set[Path] = set()
        for fold in folds:
            for f in expected_files(name, args.data_dir, fold):
                if f not in seen:
                    seen.add(f)
                    print(f"    {'ok     ' if f.is_file() else 'MISSING'} {f}")
    return 0
