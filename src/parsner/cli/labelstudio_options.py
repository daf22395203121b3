"""The command-line side of ``parsner serve --label-studio``: its options, their checks before any model loads
(one line, exit 2), and which model a session serves (the one the last retraining swapped in, when the work
folder and ``--model`` are those of an earlier session)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parsner.errors import ConfigError
from parsner.serving.labelstudio_backend import LabelStudioOptions


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


def options_from_args(args: argparse.Namespace) -> LabelStudioOptions | None:
    """The Label Studio options, checked before any model loads (ConfigError: one line, exit 2)."""
    if not args.label_studio:
        for flag, value in (("--train-config", args.train_config), ("--retrain-every", args.retrain_every),
                            ("--work-dir", args.work_dir)):
            if value:
                raise ConfigError(f"{flag} needs --label-studio")
        return None
    if args.workers != 1:
        raise ConfigError("--label-studio needs --workers 1 (the annotation loop lives in one process)")
    if args.retrain_every < 0:
        raise ConfigError("--retrain-every must be >= 0")
    if args.train_config is None:
        if args.retrain_every or args.work_dir:
            raise ConfigError(f"{'--retrain-every' if args.retrain_every else '--work-dir'} needs --train-config")
        return LabelStudioOptions(label_map=args.label_map)
    if not args.train_config.is_file():
        raise ConfigError(f"--train-config {args.train_config}: no such file")
    from parsner.training.config import load_config

    load_config(args.train_config)  # a bad key or value fails now, not at the first retraining
    model = Path(args.model)
    work = args.work_dir or model.parent / f"{model.name}.label-studio"
    from parsner.serving.labelstudio_training import prepare_work_dir

    prepare_work_dir(work, model)
    return LabelStudioOptions(train_config=args.train_config.resolve(), retrain_every=args.retrain_every,
                              work_dir=work.resolve(), label_map=args.label_map)


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
