"""The command-line side of ``parsner serve --label-studio``: its options, their checks before any model loads
(one line, exit 2), and which model a session serves (the one the last retraining swapped in, when the work
folder and ``--model`` are those of an earlier session)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from parsner.errors import ConfigError
from parsner.serving.labelstudio_backend import LabelStudioOptions
from parsner.serving.labelstudio_protocol import KEEP_MODELS, MIN_RETRAIN_INTERVAL_S


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Label Studio (live pre-annotation and retraining)")
    g.add_argument("--label-studio", action="store_true",
                   help="also serve Label Studio's ML-backend API: enter http://HOST:PORT/label-studio as the "
                        "model URL in the project's Model settings")
    g.add_argument("--train-config", type=Path, metavar="FILE",
                   help="retrain on the project's annotations with this training YAML when Label Studio asks "
                        "(Start Training); the new model replaces the served one only if it is no worse on "
                        "held-out tasks")
    g.add_argument("--retrain-every", type=int, default=0, metavar="N",
                   help="also retrain after every N new or updated annotations (default 0: only when asked)")
    g.add_argument("--work-dir", type=Path, metavar="DIR",
                   help="exports, datasets, evaluations and retrained models (default: MODEL.label-studio "
                        "beside --model)")
    g.add_argument("--label-studio-url", metavar="URL",
                   help="the Label Studio that retraining exports annotations from, e.g. http://localhost:8080 "
                        "(needed with --train-config; http or https, no user, query or fragment). Exports come "
                        "from here only, whatever host a /setup request names")
    g.add_argument("--keep-models", type=int, metavar="N",
                   help=f"retrained models kept in the work folder (default {KEEP_MODELS}); older ones are "
                        "removed after each round, never the served one nor --model")
    g.add_argument("--min-retrain-interval", type=float, metavar="SECONDS",
                   help=f"refuse (HTTP 429, with the seconds left) a retraining request sooner than this after "
                        f"the last accepted one (default {MIN_RETRAIN_INTERVAL_S:g}; 0: no limit)")


def _label_studio_url(url: str | None) -> str | None:
    if url is None:
        return None
    from parsner.serving.labelstudio_training import check_label_studio_url

    try:
        return check_label_studio_url(url)
    except ValueError as exc:
        shown = "" if "@" in url else f" {url}"  # a URL with user:password is not repeated on the terminal
        raise ConfigError(f"--label-studio-url{shown}: {exc}") from None


def _retrain_limits(args: argparse.Namespace) -> tuple[int, float]:
    keep = KEEP_MODELS if args.keep_models is None else args.keep_models
    interval = MIN_RETRAIN_INTERVAL_S if args.min_retrain_interval is None else args.min_retrain_interval
    if keep < 1:
        raise ConfigError("--keep-models must be >= 1 (the model of the last round is always kept)")
    if not math.isfinite(interval) or interval < 0:
        raise ConfigError("--min-retrain-interval must be a number of seconds >= 0")
    return keep, interval


def _retrain_flags(args: argparse.Namespace) -> list[str]:
    """The retraining options this command line sets, in the order of the help."""
    given = {"--retrain-every": bool(args.retrain_every), "--work-dir": args.work_dir is not None,
             "--keep-models": args.keep_models is not None,
             "--min-retrain-interval": args.min_retrain_interval is not None}
    return [flag for flag, on in given.items() if on]


def options_from_args(args: argparse.Namespace) -> LabelStudioOptions | None:
    """The Label Studio options, checked before any model loads (ConfigError: one line, exit 2)."""
    if not args.label_studio:
        for flag in (["--train-config"] if args.train_config else []) + _retrain_flags(args) + \
                (["--label-studio-url"] if args.label_studio_url is not None else []):
            raise ConfigError(f"{flag} needs --label-studio")
        return None
    if args.workers != 1:
        raise ConfigError("--label-studio needs --workers 1 (the annotation loop lives in one process)")
    if args.retrain_every < 0:
        raise ConfigError("--retrain-every must be >= 0")
    url = _label_studio_url(args.label_studio_url)
    if args.train_config is None:
        for flag in _retrain_flags(args):
            raise ConfigError(f"{flag} needs --train-config")
        return LabelStudioOptions(label_map=args.label_map, label_studio_url=url,
                                  min_score=getattr(args, "min_score", None) or 0.0)
    if url is None:
        raise ConfigError("--train-config needs --label-studio-url URL: the Label Studio that retraining fetches "
                          "the project's annotations from (e.g. http://localhost:8080)")
    keep, interval = _retrain_limits(args)
    if not args.train_config.is_file():
        raise ConfigError(f"--train-config {args.train_config}: no such file")
    from parsner.training.config import load_config

    load_config(args.train_config)  # a bad key or value fails now, not at the first retraining
    model = Path(args.model)
    work = args.work_dir or model.parent / f"{model.name}.label-studio"
    from parsner.serving.labelstudio_training import prepare_work_dir

    prepare_work_dir(work, model)
    return LabelStudioOptions(train_config=args.train_config.resolve(), retrain_every=args.retrain_every,
                              work_dir=work.resolve(), label_map=args.label_map, label_studio_url=url,
                              keep_models=keep, min_retrain_interval=interval,
                              min_score=getattr(args, "min_score", None) or 0.0)


def served_model(opts: LabelStudioOptions, model_dir: Path) -> tuple[Path, str | None]:
    """The model to serve: the one the last retraining swapped in (same work folder and --model), else --model."""
    if opts.work_dir is None:
        return model_dir, None
    from parsner.serving.labelstudio_training import last_swapped

    model, version, n = last_swapped(opts.work_dir, model_dir)
    if version is not None:
        print(f"parsner serve: note: serving {model} ({version}), swapped in by retraining round {n} in "
              f"{opts.work_dir}; use another --work-dir to start again from {model_dir}", file=sys.stderr)
    return model, version
