"""``parsner active-learning``: simulate annotating a built dataset's train split by random, uncertainty or
diversity-aware choice, with the feature CRF (:mod:`parsner.workflows.active_learning`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from parsner.errors import ConfigError
from parsner.workflows.active_learning import DEFAULT_SIZES as _DEFAULT_SIZES

if TYPE_CHECKING:
    from parsner.workflows.active_learning import SimulationConfig

# the schedule's one owner is the workflow; the option shows it
DEFAULT_SIZES = ",".join(map(str, _DEFAULT_SIZES))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "active-learning",
        help="simulate active learning on a built dataset with the feature CRF: sentences annotated to reach "
             "95%% of the full-data F1, per strategy, against random",
        description=(
            "Grows a labelled set from the train split (the pool) by each strategy, retrains a plain feature CRF "
            "at each size and scores the test split. Writes OUT/points.jsonl (one line per point; a rerun with the "
            "same OUT and settings resumes), OUT/results.json, OUT/report.md and OUT/learning_curves.png. "
            "Needs python-crfsuite (pip install 'parsner[crf]')."
        ),
    )
    p.add_argument("--data", type=Path, required=True, metavar="DIR",
                   help="a dataset built by `parsner data build` with train and test splits")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output folder: new, or one made by this command with the same settings (resumed)")
    p.add_argument("--strategies", default="random,uncertainty,diverse",
                   help="comma-separated, from random, uncertainty, diverse (default: all three)")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds 1..N (default: 3)")
    p.add_argument("--seed-size", type=int, default=200, metavar="N",
                   help="random sentences every curve starts from (default: 200)")
    p.add_argument("--sizes", default=DEFAULT_SIZES, metavar="N,N,...",
                   help=f"labelled sentences at each point, increasing (default: {DEFAULT_SIZES})")
    p.add_argument("--max-iterations", type=int, default=50, metavar="N",
                   help="L-BFGS iterations at most per fit (default: 50)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="curves run in parallel processes (default: 1; crfsuite uses one core each)")
    p.add_argument("--stop-after-target", type=int, default=2, metavar="N",
                   help="a curve stops N points after it first reaches the target; 0: runs the whole schedule "
                        "(default: 2)")
    p.set_defaults(func=run)


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected whole numbers separated by commas, e.g. 200,400,800") from None


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    """The :class:`~parsner.workflows.active_learning.SimulationConfig` of the options (checked by the workflow)."""
    from parsner.workflows.active_learning import SimulationConfig

    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: give at least 1")
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    return SimulationConfig(data=args.data, strategies=strategies, seeds=tuple(range(1, args.seeds + 1)),
                            seed_size=args.seed_size, sizes=_ints(args.sizes, "--sizes"),
                            max_iterations=args.max_iterations, workers=args.workers,
                            stop_after_target=args.stop_after_target)


def run(args: argparse.Namespace) -> int:
    from parsner.inference.crf_tagger import import_crfsuite
    from parsner.workflows.active_learning import REPORT_FILE, run_simulation

    cfg = config_from_args(args)
    import_crfsuite()  # a missing extra is said before any work
    result = run_simulation(cfg, args.out)
    print(f"full-data F1 {100 * result.full_f1:.1f}, target {100 * result.target:.1f}")
    for strategy, t in result.summary["to_target"].items():
        mean = t["sentences"]["mean"]
        saving = t["saving"]["mean"]
        print(f"{strategy}: reached the target at {t['reached']}/{t['seeds']} seeds"
              + (f", {mean:,.0f} sentences on average" if mean is not None else "")
              + (f", {100 * saving:.0f}% fewer than random" if saving is not None else ""))
    print(f"wrote {result.out / REPORT_FILE}, results.json and learning_curves.png")
    return 0
