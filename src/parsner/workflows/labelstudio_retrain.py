"""One retraining round of the Label Studio loop, run in its own process (``python -m
parsner.cli.labelstudio_worker ROUND``, which sets up the log and calls :func:`run_round_dir`).

``parsner serve --label-studio`` writes ``ROUND/request.json`` (the served model and its version, the training
config, the label map, the project's labeling config) and ``ROUND/export.json`` (the project's tasks, fetched
from Label Studio; no token anywhere), then starts this. Under the work folder's run lock it:

1. keeps the config's text field and ``<Labels>`` regions (:func:`parsner.serving.labelstudio_protocol.reader_tasks`)
   and splits the annotated tasks: the held-out part (:func:`~parsner.serving.labelstudio_protocol.is_held_out`, a
   hash of the task id keyed with the work folder's secret, so a task never moves between rounds and a caller
   cannot choose which tasks judge the new model) is the ``test`` split, the rest ``train``;
2. builds the dataset (the Label Studio reader, annotator ``last``), trains with the operator's config (a
   validation split is carved from train when the config sets none), and evaluates the served and the new model
   on the held-out tasks, in this process, through the Python API the commands call (``parsner.build_dataset``,
   ``parsner.train``, ``parsner.evaluate``), logging what those commands print;
3. decides (:func:`decide`): the new model replaces the served one only if its strict entity F1 on the
   held-out tasks, counting only the types the project's config has (what Label Studio would show), is no
   worse, above zero, and measured on at least one entity. The server swaps it in (and removes models beyond
   ``--keep-models``; never the served one).

Progress goes to ``ROUND/status.json`` (:class:`RoundStatus`), the outcome to ``ROUND/result.json``, the round's log
to ``ROUND/log.txt``: the worker process writes the log records to stderr, which the server points at that file.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from parsner.atomic import atomic_write_text
from parsner.serving.labelstudio_protocol import LabelingConfig, TypeMapper, is_held_out, reader_tasks
from parsner.serving.labelstudio_training import read_holdout_key, weights_fingerprint

log = logging.getLogger(__name__)


def decide(current_f1: float, new_f1: float, gold_entities: int) -> bool:
    """Swap when the new model is no worse on the held-out tasks (a tie swaps: it has seen more annotations).

    Never on nothing: held-out tasks without an entity (of the config's types) measure nothing, and a new model
    at F1 0 (a tie at zero included) has found nothing right, so the served model stays."""
    if not isinstance(gold_entities, int) or gold_entities <= 0:
        return False
    if not isinstance(new_f1, int | float) or math.isnan(new_f1) or new_f1 <= 0:
        return False
    if not isinstance(current_f1, int | float) or math.isnan(current_f1):
        return True
    return new_f1 >= current_f1 - 1e-9


def why_kept(current_f1: float, new_f1: float, gold_entities: int) -> str:
    """The reason :func:`decide` kept the served model, for result.json."""
    if not isinstance(gold_entities, int) or gold_entities <= 0:
        return "the held-out tasks hold no entity of the config's types: nothing to compare on"
    if not isinstance(new_f1, int | float) or math.isnan(new_f1) or new_f1 <= 0:
        return "the new model's F1 on the held-out tasks is 0"
    return "the new model is worse on the held-out tasks"


class Failed(Exception):
    """A stage failed; the message is the round's error."""


def run_stage(stage: str, call: Callable[[], Any]) -> Any:
    """One stage through the Python API, in this process; Failed with its error when it raises one that is the
    operator's to fix (what the command would have said in one line: bad input, a full disk, ...)."""
    from parsner.errors import USER_ERRNOS, ParsnerError, os_error_message

    try:
        return call()
    except ParsnerError as exc:
        raise Failed(f"{stage} failed: {exc}") from exc
    except OSError as exc:
        if exc.errno not in USER_ERRNOS:
            raise
        raise Failed(f"{stage} failed: {os_error_message(exc)}") from exc


class RoundStatus:
    """The round's current stage: a log line (seconds since the start) and ``ROUND/status.json`` for /health."""

    def __init__(self, round_dir: Path) -> None:
        self.path, self.t0 = round_dir / "status.json", time.time()

    def stage(self, name: str) -> None:
        log.info(f"[{time.time() - self.t0:6.1f}s] {name}")
        atomic_write_text(self.path, json.dumps({"stage": name, "since": time.time()}))


def split_tasks(tasks: list[dict[str, Any]], fraction: float, key: bytes) -> dict[str, list[Any]]:
    held = [t["id"] for t in tasks if is_held_out(t["id"], key, fraction)]
    chosen = set(held)
    return {"train": [t["id"] for t in tasks if t["id"] not in chosen], "test": held}


def has_regions(tasks: list[dict[str, Any]], ids: list[Any]) -> bool:
    """Whether any annotation of these tasks marks a region (without one, the held-out part measures nothing)."""
    chosen = set(ids)
    return any(ann.get("result") for t in tasks if t["id"] in chosen for ann in t["annotations"])


def visible_f1(eval_dir: Path, mapper: TypeMapper) -> dict[str, float]:
    """Entity F1 (strict and default modes) over the types the config has: what annotators would see."""
    from parsner.evaluation.evaluate import read_predictions
    from parsner.evaluation.metrics import score
    from parsner.labels import canonical_type

    data = read_predictions(eval_dir / "predictions.conll")

    def shown(tags: list[str]) -> list[str]:
        out = []
        for t in tags:
            label = mapper.target(t[2:]) if t != "O" else None
            out.append(f"{t[:2]}{canonical_type(label)}" if label is not None else "O")
        return out

    sc = score([shown(g) for g in data.gold], [shown(p) for p in data.pred])
    return {"f1_strict": float(sc["strict"]["f1"]), "f1_default": float(sc["default"]["f1"]),
            "gold_entities": int(sc.get("n_gold_entities", 0))}


def _log_lines(lines: Iterable[str]) -> None:
    for line in lines:
        log.info(line)


def _build(round_dir: Path, data: Path) -> None:
    """Build the round's dataset from its tasks and splits, and log what ``parsner data build`` prints."""
    from parsner.data.api import build_dataset, build_summary, warning_banner

    report = build_dataset(round_dir / "tasks.json", out=data, format="labelstudio", annotator="last",
                           splits_file=round_dir / "splits.json", log=lambda _line: None)
    _log_lines(build_summary(report))
    for warning in report.warnings:
        log.warning(warning_banner(warning))


def _train(req: dict[str, Any], data: Path, out: Path) -> None:
    """Train on the round's dataset with the operator's config (a validation split carved from train if it has
    none); training logs its own lines (epochs, the kept model, the stand-in's note)."""
    from parsner.training.api import resolve_config, train

    cfg = resolve_config(req["train_config"], {"data": str(data), "progress": False}, out=out)
    if not cfg.validation_fraction:
        cfg = resolve_config(cfg, {"validation_fraction": 0.2})
    train(cfg)


def _evaluate(model: str, data: Path, out: Path, label_map: str | None) -> None:
    """Score ``model`` on the held-out tasks (no bootstrap, no plots) and log what it wrote."""
    from parsner.evaluation.api import eval_summary, evaluate

    result = evaluate(model, data, "test", out, bootstrap=0, plots=False, label_map=label_map)
    _log_lines(eval_summary(result, quiet=True, plots=False))


def run_round(round_dir: Path, req: dict[str, Any], progress: RoundStatus) -> dict[str, Any]:
    cfg = LabelingConfig(**{k: (tuple(v) if k == "labels" else v) for k, v in req["config"].items()})
    progress.stage("preparing the annotations")
    export = json.loads((round_dir / "export.json").read_text(encoding="utf-8"))
    tasks, notes = reader_tasks(export if isinstance(export, list) else [], cfg)
    splits = split_tasks(tasks, req["holdout_fraction"], read_holdout_key(Path(req["holdout_key_file"])))
    counts = {"annotated_tasks": len(tasks), "train_tasks": len(splits["train"]),
              "held_out_tasks": len(splits["test"]), "left_out": dict(notes)}
    if not splits["train"] or not splits["test"]:
        return {"status": "skipped", **counts, "reason": (
            f"{len(splits['train'])} annotated task(s) to train on and {len(splits['test'])} held out: need at "
            f"least one of each (each task is held out for good with probability {req['holdout_fraction']:g})")}
    if not has_regions(tasks, splits["test"]):
        return {"status": "skipped", **counts, "reason": "the held-out tasks mark no entity: a new model could "
                "not be compared with the served one (annotate entities in more tasks)"}
    (round_dir / "tasks.json").write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    (round_dir / "splits.json").write_text(json.dumps(splits), encoding="utf-8")
    data, new = round_dir / "data", Path(req["models_dir"]) / f"parsner-{req['round']}"
    progress.stage("building the dataset")
    run_stage("parsner.build_dataset", lambda: _build(round_dir, data))
    progress.stage("training")
    run_stage("parsner.train", lambda: _train(req, data, new))
    scores = {}
    mapper = TypeMapper(cfg.labels)
    for name, model in (("current", req["current"]["model"]), ("new", str(new))):
        progress.stage(f"evaluating the {name} model on the held-out tasks")
        out = round_dir / f"eval-{name}"
        run_stage("parsner.evaluate", lambda model=model, out=out: _evaluate(model, data, out,
                                                                            req.get("label_map") or None))
        scores[name] = visible_f1(out, mapper)
    judged = (scores["current"]["f1_strict"], scores["new"]["f1_strict"], scores["current"]["gold_entities"])
    swap = decide(*judged)
    version = f"parsner-{req['round']}-{weights_fingerprint(new)}"
    return {"status": "swapped" if swap else "kept", **counts, **({} if swap else {"reason": why_kept(*judged)}),
            "current": {**req["current"], **scores["current"]},
            "new": {"model": str(new), "version": version, **scores["new"]}}


def run_round_dir(round_dir: Path) -> int:
    """One round from its folder (``request.json`` and ``export.json`` in, ``status.json``, ``result.json`` out),
    under the work folder's run lock; 0 when the round swapped or kept a model, 1 when it failed. Logs through
    this module's logger; the worker process (:mod:`parsner.cli.labelstudio_worker`) shows it."""
    from parsner.errors import ParsnerError
    from parsner.runlock import RunLock

    req = json.loads((round_dir / "request.json").read_text(encoding="utf-8"))
    progress = RoundStatus(round_dir)
    t0 = time.time()
    try:
        with RunLock(Path(req["models_dir"]), what="a Label Studio retraining"):
            result = run_round(round_dir, req, progress)
    except (Failed, ParsnerError) as exc:
        result = {"status": "failed", "error": str(exc)}
    except Exception as exc:  # a bug: keep the traceback in the log, one line for /health
        import traceback

        log.error(traceback.format_exc().rstrip("\n"))
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc} (see {round_dir / 'log.txt'})"}
    result = {"round": req["round"], "project": req.get("project"), **result, "seconds": round(time.time() - t0, 1)}
    log.info(f"round {req['round']}: {json.dumps(result, ensure_ascii=False)}")
    atomic_write_text(round_dir / "result.json", json.dumps(result, ensure_ascii=False, indent=1))
    return 0 if result["status"] != "failed" else 1
