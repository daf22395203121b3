"""Named benchmarks, run: build -> train -> eval over seeds (and folds), beside the published numbers.

``parsner benchmark NAME`` is thin glue over :func:`parsner.data.corpora.build_corpus`,
:func:`parsner.training.train.train` and :func:`parsner.evaluation.evaluate.evaluate_model`; the benchmarks, the
published rows (``eval/baselines.yaml``) and the table are :mod:`parsner.evaluation.benchmarks`'.

Output directory::

    data/<corpus>[-foldK]/         the built dataset(s), shared by all seeds
    runs/<fold-or-main>-seed<S>/   each training run, with eval-test/ (metrics.json, report.md, ...)
    results.json                   every run's scores, the aggregates, the published rows
    benchmark.md                   the table
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parsner.atomic import atomic_write_text
from parsner.errors import ConfigError
from parsner.evaluation.benchmarks import (
    BenchmarkDef,
    aggregate,
    get_benchmark,
    load_baselines,
    published_rows,
    render_benchmark_md,
)
from parsner.paths import REPO_ROOT, recipe, resource

log = logging.getLogger(__name__)

Log = Callable[[str], None]


@dataclass
class BenchmarkResult:
    name: str
    out: Path
    runs: list[dict[str, Any]]
    summary: dict[str, Any]
    markdown: str


def _model_slug(model: str) -> str:
    last = model.rstrip("/").split("/")[-1]
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in last) or "model"


def default_out(name: str, model: str) -> Path:
    return Path("eval") / "runs" / f"benchmark-{name}-{_model_slug(model)}"


def _stand_in(model: str) -> str | None:
    from parsner.inference.hub import parse_spec

    try:
        return parse_spec(model).stand_in
    except Exception:  # a bad spec fails later, in training, with its own message
        return None


def _build(bench: BenchmarkDef, fold: str | None, out: Path, *, data_dir: str | Path | None, resume: bool,
           overwrite: bool, log: Log) -> Path:
    from parsner.data.corpora import build_corpus

    if resume and (out / "dataset_dict.json").is_file():
        log(f"  reusing dataset {out}")
        return out
    log(f"  building {bench.corpus}{f' fold {fold}' if fold else ''} -> {out}")
    build_corpus(bench.corpus, out, data_dir=data_dir, fold=fold, overwrite=overwrite, log=log)
    return out


def _train(model: str, data: Path, out: Path, *, seed: int, epochs: float | None,
           max_train_samples: int | None, config: str | None, overrides: Sequence[str],
           overwrite: bool) -> float:
    """One training run through :func:`parsner.training.train.run_training`; returns its wall-clock seconds."""
    from parsner.training.train import run_training

    t0 = time.perf_counter()
    run_training(config=config, model=model, data=data, out=out, seed=seed, epochs=epochs,
                 max_train_samples=max_train_samples, overrides=list(overrides), overwrite=overwrite)
    return round(time.perf_counter() - t0, 1)


def _train_info(run_dir: Path) -> dict[str, Any]:
    """Training time/epochs/steps recorded in a finished run's metrics.json ({} when unreadable)."""
    try:
        doc = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    keys = {"train_runtime_s": "train_seconds", "epochs_trained": "epochs", "global_step": "steps"}
    return {new: doc[old] for old, new in keys.items() if isinstance(doc.get(old), int | float)}


def _shown_config(cfg: str) -> str:
    """A config path as a reader of the repository knows it (``training/peyma.yaml``), wherever it was found."""
    path = Path(cfg)
    for root in (resource("training").parent, REPO_ROOT):
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return cfg


def _training_config(bench: BenchmarkDef) -> str | None:
    """The first existing ``training/<candidate>.yaml`` (its data/out/run_name are overridden per run)."""
    for name in bench.configs:
        path = recipe(name)
        if path.is_file():
            return str(path)
    return None


@dataclass(frozen=True)
class _Plan:
    """A benchmark run's settings, as its per-fold steps need them."""

    bench: BenchmarkDef
    model: str
    out_dir: Path
    seeds: range
    epochs: float | None
    max_train_samples: int | None
    config: str | None  # training config (None with eval_only)
    train_overrides: Sequence[str]
    data_dir: str | Path | None
    batch_size: int
    n_bootstrap: int
    resume: bool
    overwrite: bool
    eval_only: bool
    label_map: str | None
    normalizer: str


def _out_dir(name: str, model: str, out: str | Path | None, *, resume: bool, overwrite: bool) -> Path:
    """The output folder, created; an existing non-empty one only with ``resume`` or ``overwrite``."""
    out_dir = Path(out) if out is not None else default_out(name, model)
    if out_dir.exists() and any(out_dir.iterdir()) and not (resume or overwrite):
        raise ConfigError(f"{out_dir} already exists; pass --resume to reuse finished steps or --overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _default_command(name: str, model: str, *, eval_only: bool, seeds: int, epochs: float | None,
                     max_train_samples: int | None) -> str:
    return (f"parsner benchmark {name} --model {model}"
            + (" --eval-only" if eval_only else f" --seeds {seeds}")
            + (f" --epochs {epochs:g}" if epochs is not None else "")
            + (f" --max-train-samples {max_train_samples}" if max_train_samples else ""))


def _setup_notes(plan: _Plan) -> list[str]:
    """Table notes on how the runs were set up (sample cap, epochs, eval-only caveats, hyperparameters)."""
    notes: list[str] = []
    if plan.max_train_samples:
        notes.append(f"Training used at most {plan.max_train_samples} training sentences (--max-train-samples).")
    if plan.epochs is not None:
        notes.append(f"Epochs: {plan.epochs:g} (--epochs).")
    if plan.eval_only:
        notes += _eval_only_notes(plan.bench, plan.label_map)
    if plan.config:
        cfg = plan.config
        shown = _shown_config(cfg)
        extra = f" with overrides {', '.join(plan.train_overrides)}" if plan.train_overrides else ""
        notes.append(f"Hyperparameters from `{shown}`{extra}.")
    return notes


def _train_and_score(plan: _Plan, data: Path, fold: str | None, seed: int, log: Log) -> dict[str, Any]:
    """One seed on one fold: train (unless ``resume`` finds it done), evaluate on test, record the scores."""
    run_name = f"{f'fold{fold}' if fold else 'main'}-seed{seed}"
    run_dir = plan.out_dir / "runs" / run_name
    eval_dir = run_dir / "eval-test"
    record: dict[str, Any] = {"run": run_name, "fold": fold, "seed": seed}
    if plan.resume and (eval_dir / "metrics.json").is_file():
        log(f"  reusing {eval_dir}")
        metrics = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
        record.update(_train_info(run_dir))
        return _record_scores(record, metrics, eval_dir, log)
    log(f"  training {run_name} ...")
    if not (plan.resume and (run_dir / "config.json").is_file()):
        record["wall_seconds"] = _train(plan.model, data, run_dir, seed=seed, epochs=plan.epochs,
                                        max_train_samples=plan.max_train_samples, config=plan.config,
                                        overrides=plan.train_overrides, overwrite=plan.overwrite)
    record.update(_train_info(run_dir))
    log(f"  evaluating {run_name} on test ...")
    from parsner.evaluation.evaluate import evaluate_model

    res = evaluate_model(run_dir, data, "test", out=eval_dir, batch_size=plan.batch_size,
                         n_bootstrap=plan.n_bootstrap, seed=seed, overwrite=True)
    return _record_scores(record, res.metrics, eval_dir, log)


def _run_fold(plan: _Plan, fold: str | None, log: Log) -> list[dict[str, Any]]:
    """Build the fold's dataset (shared by its seeds), then score the checkpoint or train each seed."""
    bench = plan.bench
    data_name = bench.corpus + (f"-fold{fold}" if fold else "")
    data = _build(bench, fold, plan.out_dir / "data" / data_name, data_dir=plan.data_dir, resume=plan.resume,
                  overwrite=plan.overwrite, log=log)
    if plan.eval_only:
        return [_score_checkpoint(plan.model, data, plan.out_dir, fold, batch_size=plan.batch_size,
                                  n_bootstrap=plan.n_bootstrap, label_map=plan.label_map,
                                  normalizer=plan.normalizer, resume=plan.resume, log=log)]
    return [_train_and_score(plan, data, fold, seed, log) for seed in plan.seeds]


def _write_results(plan: _Plan, name: str, runs: list[dict[str, Any]], baselines: dict[str, Any], *,
                   stand_in: str | None, command: str, notes: list[str],
                   append_results: str | Path | None) -> BenchmarkResult:
    """benchmark.md and results.json (and the section appended to ``append_results``)."""
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    md = render_benchmark_md(name, runs, baselines, model=plan.model, stand_in=stand_in, command=command,
                             when=when, notes=notes, eval_only=plan.eval_only)
    summary = aggregate(runs)
    results = {
        "benchmark": name,
        "description": plan.bench.description,
        "model": plan.model,
        "stand_in": stand_in,
        "command": command,
        "date": when,
        "eval_only": plan.eval_only,
        "seeds": [] if plan.eval_only else list(plan.seeds),
        "folds": list(plan.bench.folds),
        "runs": runs,
        "summary": summary,
        "published": published_rows(baselines, name),
    }
    atomic_write_text(plan.out_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(plan.out_dir / "benchmark.md", md)
    if append_results is not None:
        append_results_md(append_results, md)
    return BenchmarkResult(name=name, out=plan.out_dir, runs=runs, summary=summary, markdown=md)


def run_benchmark(
    name: str,
    *,
    model: str = "tiny",
    seeds: int = 3,
    seed_start: int = 1,
    out: str | Path | None = None,
    epochs: float | None = None,
    max_train_samples: int | None = None,
    data_dir: str | Path | None = None,
    batch_size: int = 32,
    n_bootstrap: int = 1000,
    train_overrides: Sequence[str] = (),
    config: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    append_results: str | Path | None = None,
    command: str | None = None,
    log: Log | None = log.info,  # the module's log (the parameter shadows it)
    eval_only: bool = False,
    label_map: str | None = None,
    normalizer: str = "auto",
) -> BenchmarkResult:
    """Run ``name`` for ``seeds`` seeds (x folds): build, train, evaluate on test; write the table.

    ``eval_only``: ``model`` is a finished token classifier (a hub id such as
    ``HooshvareLab/bert-base-parsbert-peymaner-uncased`` or a directory); it is scored on each fold's test
    split as it is, beside its own published number, with ``label_map``/``normalizer`` as in ``parsner eval``.
    """
    log = log or (lambda _m: None)
    bench = get_benchmark(name)
    if seeds < 1:
        raise ConfigError("--seeds must be >= 1")
    if eval_only and _stand_in(model):
        raise ConfigError(f"--eval-only scores a trained model; {model!r} is an untrained stand-in")
    baselines = load_baselines()
    out_dir = _out_dir(name, model, out, resume=resume, overwrite=overwrite)
    cfg = config if config is not None else _training_config(bench)
    stand_in = _stand_in(model)
    command = command or _default_command(name, model, eval_only=eval_only, seeds=seeds, epochs=epochs,
                                          max_train_samples=max_train_samples)
    log(f"benchmark {name}: model {model}{' (STAND-IN)' if stand_in else ''}, {seeds} seed(s), "
        f"folds {', '.join(f or '-' for f in bench.folds)} -> {out_dir}")
    plan = _Plan(bench=bench, model=model, out_dir=out_dir, seeds=range(seed_start, seed_start + seeds),
                 epochs=epochs, max_train_samples=max_train_samples, config=None if eval_only else cfg,
                 train_overrides=train_overrides, data_dir=data_dir, batch_size=batch_size,
                 n_bootstrap=n_bootstrap, resume=resume, overwrite=overwrite, eval_only=eval_only,
                 label_map=label_map, normalizer=normalizer)
    notes = _setup_notes(plan)
    runs = [record for fold in bench.folds for record in _run_fold(plan, fold, log)]
    if eval_only:
        notes += _shared_type_notes(runs)
    return _write_results(plan, name, runs, baselines, stand_in=stand_in, command=command, notes=notes,
                          append_results=append_results)


def _record_scores(record: dict[str, Any], metrics: dict[str, Any], eval_dir: Path, log: Log) -> dict[str, Any]:
    for mode in ("default", "strict"):
        record[mode] = {k: metrics[mode][k] for k in ("precision", "recall", "f1")}
    boot = metrics.get("bootstrap", {}).get("default")
    if boot:
        record["ci_default"] = [boot["low"], boot["high"]]
    shared = metrics.get("shared_types")
    if shared:
        record["shared_types"] = {"types": shared["types"],
                                  **{mode: {"f1": shared[mode]["f1"]} for mode in ("default", "strict")}}
    record["eval_dir"] = str(eval_dir)
    log(f"  {record['run']}: F1 default {100 * record['default']['f1']:.2f}, "
        f"strict {100 * record['strict']['f1']:.2f}")
    return record


def _score_checkpoint(model: str, data: Path, out_dir: Path, fold: str | None, *, batch_size: int,
                      n_bootstrap: int, label_map: str | None, normalizer: str, resume: bool,
                      log: Log) -> dict[str, Any]:
    """``--eval-only``: the model as it is, on one fold's test split."""
    from parsner.evaluation.evaluate import evaluate_model

    run_name = f"fold{fold}" if fold else "main"
    eval_dir = out_dir / "runs" / run_name / "eval-test"
    record: dict[str, Any] = {"run": run_name, "fold": fold, "seed": None}
    if resume and (eval_dir / "metrics.json").is_file():
        log(f"  reusing {eval_dir}")
        metrics = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
    else:
        log(f"  scoring {model} on {data.name}/test (no training) ...")
        metrics = evaluate_model(model, data, "test", out=eval_dir, batch_size=batch_size, n_bootstrap=n_bootstrap,
                                 overwrite=True, label_map=label_map, normalizer=normalizer).metrics
    record["normalizer"] = metrics.get("source", {}).get("normalizer")
    return _record_scores(record, metrics, eval_dir, log)


def _eval_only_notes(bench: BenchmarkDef, label_map: str | None) -> list[str]:
    notes = ["--eval-only: the checkpoint is scored as published, not retrained; its labels are read in any "
             "convention (`B_DAT`, `B-pers`, `B-person`, BIOES) and scored as canonical IOB2 types."]
    if label_map:
        notes.append(f"The model's types were mapped with `--label-map {label_map}`.")
    if bench.corpus == "arman":
        notes.append("⚠ The published ARMAN checkpoints were trained on the union of all three folds, so every "
                     "test_foldK sentence was in their training data: their score here is leaked as well, not a "
                     "clean fold result. Only a checkpoint trained on train_foldK alone gives a clean number.")
    return notes


def _shared_type_notes(runs: Sequence[dict[str, Any]]) -> list[str]:
    notes = []
    for r in runs:
        shared = r.get("shared_types")
        if shared:
            notes.append(f"{r['run']}: the model's and the data's types differ; over the shared types only "
                         f"({', '.join(shared['types'])}) F1 is {100 * shared['default']['f1']:.2f} default / "
                         f"{100 * shared['strict']['f1']:.2f} strict (the table counts all types).")
        if r.get("normalizer"):
            notes.append(f"{r['run']}: normaliser {r['normalizer']}.")
    return notes


def append_results_md(path: str | Path, section: str) -> None:
    """Append a benchmark section to a results file (created with a title when absent)."""
    p = Path(path)
    existing = p.read_text(encoding="utf-8") if p.is_file() else "# ParsNER results\n"
    atomic_write_text(p, existing.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n")
