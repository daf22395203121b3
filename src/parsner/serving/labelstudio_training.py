"""The server's side of retraining for ``parsner serve --label-studio``: the work folder, one round at a time,
the export fetched with the project's token, the worker process (:mod:`parsner.cli.labelstudio_retrain`) and
the swap.

The work folder (``--work-dir``; a parsner-made folder, marker kind ``label-studio``) holds::

    rounds/NNNN/   request.json, export.json (the project's tasks: no token), tasks.json, splits.json,
                   data/ (the dataset), eval-current/, eval-new/, status.json, result.json, log.txt
    models/parsner-N/   the model trained in round N (kept, swapped in or not)
    current.json   the model being served and its version (replaced atomically at each swap)

The token Label Studio sends in ``/setup`` stays in this process's memory: it is used for the export request's
``Authorization`` header only, never logged, written or passed to the worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from parsner.atomic import MARKER, atomic_write_text, file_sha256, output_kind, write_marker
from parsner.errors import ConfigError
from parsner.serving.labelstudio_protocol import HOLDOUT_FRACTION, LabelingConfig

WORK_KIND = "label-studio"
EXPORT_TIMEOUT_S = 120
#: The worker process's module (``python -m``; named, not imported: it runs the training commands).
WORKER_MODULE = "parsner.cli.labelstudio_retrain"

#: Weight files whose hash names a model version, in order of preference.
WEIGHT_FILES = ("model.safetensors", "model.onnx", "pytorch_model.bin", "model.crfsuite", "config.json")


def model_fingerprint(model_dir: str | Path) -> str:
    """The first 8 hex digits of the sha256 of the model's weights (its version's short hash)."""
    for name in WEIGHT_FILES:
        path = Path(model_dir) / name
        if path.is_file():
            return file_sha256(path)[:8]
    return "00000000"


def prepare_work_dir(work_dir: Path, model_dir: Path) -> None:
    """Create the work folder, or accept one parsner made for the loop; refuse a folder of the user's files."""
    if work_dir.exists() and not work_dir.is_dir():
        raise ConfigError(f"--work-dir {work_dir} is a file; give a folder")
    holds_model = work_dir.resolve() == model_dir.resolve() or work_dir.resolve() in model_dir.resolve().parents
    if holds_model and output_kind(work_dir) != WORK_KIND:
        raise ConfigError(f"--work-dir {work_dir} holds --model {model_dir}; choose another folder")
    if model_dir.resolve() in work_dir.resolve().parents:
        raise ConfigError(f"--work-dir {work_dir} is inside --model {model_dir}; choose a folder beside it")
    if work_dir.is_dir() and any(work_dir.iterdir()) and output_kind(work_dir) != WORK_KIND:
        raise ConfigError(f"--work-dir {work_dir} exists and holds files parsner did not write there; "
                          "choose a new folder (parsner never writes into folders of your own files)")
    try:
        (work_dir / "rounds").mkdir(parents=True, exist_ok=True)
        (work_dir / "models").mkdir(exist_ok=True)
        if not (work_dir / MARKER).is_file():
            write_marker(work_dir, WORK_KIND)
    except OSError as exc:
        raise ConfigError(f"--work-dir {work_dir}: cannot create it: {exc.strerror or exc}") from None


def last_swapped(work_dir: Path, model_dir: Path) -> tuple[Path, str | None, int]:
    """``(model to serve, its version or None, its round)``: the last swapped-in model of an earlier session of
    this work folder when it was started from the same ``--model``, else ``--model`` itself."""
    try:
        cur = json.loads((work_dir / "current.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return model_dir, None, 0
    if not isinstance(cur, dict) or cur.get("base_model") != str(model_dir.resolve()) \
            or not Path(str(cur.get("model"))).is_dir():
        return model_dir, None, 0
    return Path(cur["model"]), str(cur.get("version")), int(cur.get("round", 0))


def initial_version(model_dir: Path, round_no: int = 0) -> str:
    return f"parsner-{round_no}-{model_fingerprint(model_dir)}"


def past_versions(work_dir: Path | None) -> list[str]:
    """Versions served by earlier rounds in this work folder (the one each round started from, and the one it
    swapped in), oldest first."""
    out: list[str] = []
    for result in sorted(work_dir.glob("rounds/*/result.json")) if work_dir else []:
        try:
            doc = json.loads(result.read_text(encoding="utf-8"))
            served = [doc["current"]["version"]] + ([doc["new"]["version"]] if doc["status"] == "swapped" else [])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out.extend(str(v) for v in served if v and str(v) not in out)
    return out


def fetch_export(hostname: str, project: str, token: str) -> list[Any]:
    """The project's annotated tasks (Label Studio's JSON export), with ``Authorization: Token``."""
    url = f"{hostname.rstrip('/')}/api/projects/{project}/export?exportType=JSON"
    req = urllib.request.Request(url, headers={"Authorization": f"Token {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=EXPORT_TIMEOUT_S) as resp:
            doc = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        hint = " (the token from /setup was refused: does the organisation allow legacy API tokens?)" \
            if exc.code in (401, 403) else ""
        raise RuntimeError(f"exporting project {project} from {hostname} answered HTTP {exc.code}{hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RuntimeError(f"exporting project {project} from {hostname} failed: {reason}") from None
    if not isinstance(doc, list):
        raise RuntimeError(f"exporting project {project} from {hostname}: expected a list of tasks")
    return doc


class Retrainer:
    """One retraining round at a time, in a background thread that waits on the worker process."""

    def __init__(self, work_dir: Path, train_config: Path, label_map: str | None,
                 swap: Any, current: Any) -> None:
        self.work_dir, self.train_config, self.label_map = work_dir, train_config, label_map
        self._swap, self._current = swap, current  # callables from the backend
        self._lock = threading.Lock()
        self._queue: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._busy = False
        self._proc: subprocess.Popen | None = None
        self.state: dict[str, Any] = {"state": "idle", "round": None, "stage": None, "started": None,
                                      "pending": False, "last": None}
        self.rounds = max((int(p.name) for p in (work_dir / "rounds").glob("[0-9]*") if p.name.isdigit()), default=0)

    def request(self, job: dict[str, Any]) -> str:
        """Start a round for ``job`` (project, config, hostname, token or tasks); queue it when one runs."""
        with self._lock:
            if self._busy:
                self._queue = job
                self.state["pending"] = True
                return "queued"
            self._busy = True
            self._thread = threading.Thread(target=self._loop, args=(job,), name="parsner-retrain", daemon=True)
            self.state.update(state="running", stage="starting", started=time.time())
            self._thread.start()
            return "started"

    def status(self) -> dict[str, Any]:
        out = dict(self.state)
        if out["state"] == "running" and out["round"] is not None:
            try:
                out.update(json.loads((self._round_dir(out["round"]) / "status.json").read_text(encoding="utf-8")))
            except (OSError, ValueError):
                pass
        return out

    def stop(self) -> None:
        """SIGTERM the worker (training saves a checkpoint and stops)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _round_dir(self, n: int) -> Path:
        return self.work_dir / "rounds" / f"{n:04d}"

    def _loop(self, job: dict[str, Any]) -> None:
        """Rounds until none is queued; ``_busy`` drops under the lock, so no request is ever left queued."""
        try:
            while True:
                result = self._round(job)
                with self._lock:
                    queued, self._queue = self._queue, None
                    self.state.update(last=result, pending=False, stage=None,
                                      state="running" if queued is not None else "idle")
                    if queued is None:
                        self._busy = False
                        return
                    job = queued
        finally:
            with self._lock:
                if self._busy:  # only after an error outside a round: leave a usable state
                    self._busy, self._queue = False, None
                    self.state.update(state="idle", stage=None, pending=False)

    def _round(self, job: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.rounds += 1
            n = self.rounds
        self.state.update(round=n, stage="fetching the export", started=time.time())
        round_dir = self._round_dir(n)
        try:
            round_dir.mkdir(parents=True)
            tasks = job.get("tasks")
            if tasks is None:
                tasks = fetch_export(job["hostname"], job["project"], job.pop("token"))
            return self._run_worker(n, round_dir, job, tasks)
        except Exception as exc:  # one line for /health; the worker's own errors come from result.json
            result = {"round": n, "project": job.get("project"), "status": "failed", "error": str(exc)}
            if round_dir.is_dir():
                atomic_write_text(round_dir / "result.json", json.dumps(result, ensure_ascii=False))
            return result

    def _run_worker(self, n: int, round_dir: Path, job: dict[str, Any], tasks: list[Any]) -> dict[str, Any]:
        cfg: LabelingConfig = job["config"]
        model, version = self._current()
        (round_dir / "export.json").write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
        request = {"round": n, "project": job.get("project"), "train_config": str(self.train_config),
                   "label_map": self.label_map, "config": cfg.to_dict(), "holdout_fraction": HOLDOUT_FRACTION,
                   "models_dir": str(self.work_dir / "models"),
                   "current": {"model": str(Path(model).resolve()), "version": version}}
        atomic_write_text(round_dir / "request.json", json.dumps(request, ensure_ascii=False, indent=1))
        self.state["stage"] = "starting the retraining process"
        with open(round_dir / "log.txt", "w", encoding="utf-8") as log:
            self._proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(round_dir)],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
            code = self._proc.wait()
        try:
            result = json.loads((round_dir / "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = {"round": n, "status": "failed",
                      "error": f"the retraining process exited with code {code}; see {round_dir / 'log.txt'}"}
        if result.get("status") == "swapped":
            self.state["stage"] = "loading the new model"
            try:
                self._swap(Path(result["new"]["model"]), result["new"]["version"], n)
            except Exception as exc:
                result.update(status="failed", error=f"the new model did not load, the old one stays: {exc}")
        return result

    def write_current(self, model: Path, version: str, n: int, base_model: Path) -> None:
        doc = {"model": str(model.resolve()), "version": version, "round": n, "base_model": str(base_model.resolve()),
               "swapped_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_write_text(self.work_dir / "current.json", json.dumps(doc, ensure_ascii=False, indent=1))
