"""One retraining round of the Label Studio loop, in its own process (``python -m parsner.cli.labelstudio_retrain
ROUND``).

``parsner serve --label-studio`` writes ``ROUND/request.json`` (the served model and its version, the training
config, the label map, the project's labeling config) and ``ROUND/export.json`` (the project's tasks, fetched
from Label Studio; no token anywhere), then starts this. Under the work folder's run lock it:

1. keeps the config's text field and ``<Labels>`` regions (:func:`parsner.serving.labelstudio_protocol.reader_tasks`)
   and splits the annotated tasks: the held-out part (:func:`~parsner.serving.labelstudio_protocol.is_held_out`, a
   hash of the task id keyed with the work folder's secret, so a task never moves between rounds and a caller
   cannot choose which tasks judge the new model) is the ``test`` split, the rest ``train``;
2. runs ``parsner data build`` (the Label Studio reader, ``--annotator last``), ``parsner train --config
   FILE`` (a validation split is carved from train when the config sets none), and ``parsner eval`` of the
   served and the new model on the held-out tasks: the same commands a user would type, in this process;
3. decides (:func:`decide`): the new model replaces the served one only if its strict entity F1 on the
   held-out tasks, counting only the types the project's config has (what Label Studio would show), is no
   worse, above zero, and measured on at least one entity. The server swaps it in (and removes models beyond
   ``--keep-models``; never the served one).

Progress goes to ``ROUND/status.json``, the outcome to ``ROUND/result.json``, everything printed to
``ROUND/log.txt`` (the server redirects it).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from parsner.atomic import atomic_write_text
from parsner.serving.labelstudio_protocol import LabelingConfig, TypeMapper, is_held_out, reader_tasks
from parsner.serving.labelstudio_training import model_fingerprint, read_holdout_key


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


class _Tee(io.TextIOBase):
    def __init__(self, out: Any) -> None:
        self.out, self.lines = out, io.StringIO()

    def write(self, s: str) -> int:
        self.out.write(s)
        self.lines.write(s)
        return len(s)

    def flush(self) -> None:
        self.out.flush()


def run_cli(stage: str, argv: list[str]) -> None:
    """``parsner ARGV`` in this process; Failed with its last error line when it exits non-zero."""
    from parsner.cli import main

    print(f"$ parsner {' '.join(argv)}", file=sys.stderr, flush=True)
    tee = _Tee(sys.stderr)
    with contextlib.redirect_stderr(tee):
        code = main(argv)
    if code != 0:
        lines = [ln for ln in tee.lines.getvalue().splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if ln.startswith("parsner")), lines[-1] if lines else "")
        raise Failed(f"{stage} failed (exit {code}): {last}")


class Progress:
    def __init__(self, round_dir: Path) -> None:
        self.path, self.t0 = round_dir / "status.json", time.time()

    def stage(self, name: str) -> None:
        print(f"[{time.time() - self.t0:6.1f}s] {name}", file=sys.stderr, flush=True)
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


def _train_args(req: dict[str, Any], data: Path, out: Path) -> list[str]:
    from parsner.training.config import load_config

    cfg = load_config(req["train_config"], overrides={"data": str(data)})
    args = ["train", "--config", req["train_config"], "--data", str(data), "--out", str(out), "--set", "progress=false"]
    if not cfg.validation_fraction:
        args += ["--set", "validation_fraction=0.2"]
    return args


def run_round(round_dir: Path, req: dict[str, Any], progress: Progress) -> dict[str, Any]:
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
    label_map = ["--label-map", req["label_map"]] if req.get("label_map") else []
    progress.stage("building the dataset")
    run_cli("parsner data build", ["data", "build", str(round_dir / "tasks.json"), "--format", "labelstudio",
                                   "--annotator", "last", "--splits-file", str(round_dir / "splits.json"),
                                   "--out", str(data), "-q"])
    progress.stage("training")
    run_cli("parsner train", _train_args(req, data, new))
    scores = {}
    mapper = TypeMapper(cfg.labels)
    for name, model in (("current", req["current"]["model"]), ("new", str(new))):
        progress.stage(f"evaluating the {name} model on the held-out tasks")
        out = round_dir / f"eval-{name}"
        run_cli("parsner eval", ["eval", "--model", model, "--data", str(data), "--split", "test", "--out", str(out),
                                 "--bootstrap", "0", "--no-plots", "--quiet", *label_map])
        scores[name] = visible_f1(out, mapper)
    judged = (scores["current"]["f1_strict"], scores["new"]["f1_strict"], scores["current"]["gold_entities"])
    swap = decide(*judged)
    version = f"parsner-{req['round']}-{model_fingerprint(new)}"
    return {"status": "swapped" if swap else "kept", **counts, **({} if swap else {"reason": why_kept(*judged)}),
            "current": {**req["current"], **scores["current"]},
            "new": {"model": str(new), "version": version, **scores["new"]}}


def main(argv: list[str] | None = None) -> int:
    from parsner.errors import ParsnerError
    from parsner.runlock import RunLock

    round_dir = Path((sys.argv[1:] if argv is None else argv)[0])
    req = json.loads((round_dir / "request.json").read_text(encoding="utf-8"))
    progress = Progress(round_dir)
    t0 = time.time()
    try:
        with RunLock(Path(req["models_dir"]), what="a Label Studio retraining"):
            result = run_round(round_dir, req, progress)
    except (Failed, ParsnerError) as exc:
        result = {"status": "failed", "error": str(exc)}
    except Exception as exc:  # a bug: keep the traceback in the log, one line for /health
        import traceback

        traceback.print_exc()
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc} (see {round_dir / 'log.txt'})"}
    result = {"round": req["round"], "project": req.get("project"), **result, "seconds": round(time.time() - t0, 1)}
    print(f"round {req['round']}: {json.dumps(result, ensure_ascii=False)}", file=sys.stderr, flush=True)
    atomic_write_text(round_dir / "result.json", json.dumps(result, ensure_ascii=False, indent=1))
    return 0 if result["status"] != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
