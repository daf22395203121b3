"""The server's side of retraining for ``parsner serve --label-studio``: the work folder, one round at a time,
the export fetched with the project's token, the worker process (:mod:`parsner.cli.labelstudio_worker`, running
:mod:`parsner.workflows.labelstudio_retrain`) and the swap.

The work folder (``--work-dir``; a parsner-made folder, marker kind ``label-studio``) holds::

    rounds/NNNN/   request.json, export.json (the project's tasks: no token), tasks.json, splits.json,
                   data/ (the dataset), eval-current/, eval-new/, status.json, result.json, log.txt
    models/parsner-N/   the model trained in round N (the newest ``--keep-models`` are kept, and always the served one)
    current.json   the model being served and its version (replaced atomically at each swap)
    holdout.key    the secret (mode 0600) keying the held-out split, made once: tasks never change sides

Trust: the export comes only from the Label Studio the operator named (``--label-studio-url``), never from a
host a caller names; the URL's path is the configured one plus ``/api/projects/ID/export`` (ID a positive
integer), redirects are refused (one would carry the token elsewhere), and a failed export says only that it
failed: the network's answer (which would map the caller's network) goes to the round's ``log.txt``. The token
Label Studio sends in ``/setup`` stays in this process's memory: it is used for the export request's
``Authorization`` header only, never logged, written or passed to the worker. Rounds are at least
``--min-retrain-interval`` seconds apart (a request sooner is refused with the seconds left).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from parsner.atomic import MARKER, atomic_write_text, file_sha256, output_kind, write_marker
from parsner.errors import ConfigError
from parsner.serving.labelstudio_protocol import HOLDOUT_FRACTION, KEEP_MODELS, LabelingConfig, project_id

log = logging.getLogger(__name__)

WORK_KIND = "label-studio"
EXPORT_TIMEOUT_S = 120
HOLDOUT_KEY_FILE = "holdout.key"
_MODEL_NAME = re.compile(r"parsner-([0-9]+)(\.incomplete)?")
_URL_PATH = re.compile(r"(/[A-Za-z0-9._~%-]+)*/?")
#: The worker process's module (``python -m``; named, not imported: it runs the training commands).
WORKER_MODULE = "parsner.cli.labelstudio_worker"

#: Weight files whose hash names a model version, in order of preference.
WEIGHT_FILES = ("model.safetensors", "model.onnx", "pytorch_model.bin", "model.crfsuite", "config.json")


def weights_fingerprint(model_dir: str | Path) -> str:
    """The first 8 hex digits of the sha256 of the model's weights (its version's short hash)."""
    for name in WEIGHT_FILES:
        path = Path(model_dir) / name
        if path.is_file():
            return file_sha256(path)[:8]
    return "00000000"


def check_label_studio_url(url: str) -> str:
    """The Label Studio base URL exports are fetched from, without a trailing slash; ValueError says what is wrong.

    Only http(s), a host, an optional port and a plain path: no user:password (it would travel in clear and
    in logs), no query or fragment (the export's own path and query are appended to this one)."""
    if not isinstance(url, str) or not url or any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        raise ValueError("give a URL such as http://localhost:8080 (no spaces or backslashes)")
    if not url.isascii():
        raise ValueError("give the URL in ASCII (a host name in punycode, a path %-encoded)")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("only http:// and https:// URLs are fetched")
    if "@" in parts.netloc:
        raise ValueError("no user name or password in the URL: the export authenticates with the project's token")
    if "?" in url or "#" in url:
        raise ValueError("no query (?) or fragment (#): give Label Studio's base URL only")
    try:
        parts.port  # noqa: B018  (raises for a port that is not a number in range)
    except ValueError:
        raise ValueError("the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("no host name")
    if not _URL_PATH.fullmatch(parts.path) or {".", ".."} & set(parts.path.split("/")):
        raise ValueError(f"the path {parts.path!r} is not a plain folder path")
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def export_url(base: str, project: Any) -> str:
    """The export URL of ``project``: the configured base, the fixed path, the project id (a positive integer)."""
    pid = project_id(project)
    if pid is None or pid != str(project):
        raise ValueError(f"project id {str(project)[:40]!r} is not a positive integer")
    return f"{check_label_studio_url(base)}/api/projects/{pid}/export?exportType=JSON"


def same_label_studio(base: str, hostname: str) -> bool:
    """Whether ``hostname`` (what /setup says) names the configured Label Studio (scheme, host, port, path)."""
    try:
        return check_label_studio_url(hostname).lower() == check_label_studio_url(base).lower()
    except ValueError:
        return False


def holdout_key(work_dir: Path) -> bytes:
    """The work folder's held-out key: read, or made once (mode 0600) when missing."""
    path = work_dir / HOLDOUT_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        return read_holdout_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return read_holdout_key(path)


def read_holdout_key(path: Path) -> bytes:
    """The key in ``path`` (64 hex digits); ConfigError when the file is not one parsner wrote."""
    try:
        text = path.read_text(encoding="ascii").strip()
        if path.is_symlink() or not re.fullmatch(r"[0-9a-f]{64}", text):
            raise ValueError
    except (OSError, ValueError):
        raise ConfigError(f"{path}: not a held-out key parsner wrote; move it away to start a new held-out split "
                          "(the tasks then change sides once)") from None
    return bytes.fromhex(text)


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
        holdout_key(work_dir)
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
    return f"parsner-{round_no}-{weights_fingerprint(model_dir)}"


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


class ExportFailed(Exception):
    """The export could not be fetched. ``str()`` is what callers see; ``detail`` goes to the round's log only."""

    def __init__(self, public: str, detail: str) -> None:
        super().__init__(public)
        self.detail = detail


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would resend the token to wherever the answer points: refused (urllib then raises HTTPError)."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def fetch_export(base: str, project: str, token: str) -> list[Any]:
    """The project's annotated tasks (Label Studio's JSON export from ``base``), with ``Authorization: Token``."""
    from parsner.data.strictjson import loads

    url = export_url(base, project)
    req = urllib.request.Request(url, headers={"Authorization": f"Token {token}", "Accept": "application/json"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=EXPORT_TIMEOUT_S) as resp:
            doc = loads(resp.read())
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise ExportFailed("redirect refused", f"GET {url} answered HTTP {exc.code} to "
                               f"{str(exc.headers.get('Location'))[:200]!r}; redirects are not followed") from None
        hint = ": the token from /setup was refused (does the organisation allow legacy API tokens?)" \
            if exc.code in (401, 403) else ""
        raise ExportFailed(f"Label Studio answered HTTP {exc.code}{hint}", f"GET {url} answered HTTP {exc.code}") \
            from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ExportFailed("", f"GET {url} failed: {getattr(exc, 'reason', exc)}") from None
    if not isinstance(doc, list):
        raise ExportFailed("the answer is not a list of tasks", f"GET {url}: a JSON {type(doc).__name__}")
    return doc


def prune_models(models_dir: Path, keep: int, protect: list[Path]) -> list[Path]:
    """Delete the retrained models beyond the newest ``keep`` and the work folders of failed trainings, and
    return what went. Only ``models/parsner-N`` folders parsner marked as its runs (``parsner-N.incomplete``:
    its training work folders) are candidates; a protected path (the served model, the base ``--model``)
    and anything holding one stays."""
    safe = {p.resolve() for p in protect}
    finished, unfinished = [], []
    for path in models_dir.iterdir() if models_dir.is_dir() else []:
        m = _MODEL_NAME.fullmatch(path.name)
        if m is None or path.is_symlink() or not path.is_dir():
            continue
        kind = output_kind(path)
        if m.group(2) and kind == "run-work":
            unfinished.append(path)
        elif not m.group(2) and kind == "run":
            finished.append((int(m.group(1)), path))
    finished.sort(reverse=True)
    gone = unfinished + [p for _n, p in finished[keep:]]
    removed = []
    for path in gone:
        real = path.resolve()
        if any(real == s or real in s.parents for s in safe):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


class RetryLater(Exception):
    """A round was asked for sooner than ``--min-retrain-interval`` after the last one."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(1, int(seconds + 0.999))
        super().__init__(f"the last retraining was asked for less than the minimum interval ago; retry in "
                         f"{self.seconds} s (serve --min-retrain-interval)")


class Retrainer:
    """One retraining round at a time, in a background thread that waits on the worker process."""

    def __init__(self, work_dir: Path, train_config: Path, label_map: str | None, swap: Any, current: Any, *,
                 label_studio_url: str | None = None, keep_models: int = KEEP_MODELS,
                 min_interval: float = 0.0, protect: tuple[Path, ...] = ()) -> None:
        self.work_dir, self.train_config, self.label_map = work_dir, train_config, label_map
        self.label_studio_url = label_studio_url
        self.keep_models, self.min_interval, self.protect = keep_models, min_interval, protect
        self._swap, self._current = swap, current  # callables from the backend
        self._lock = threading.Lock()
        self._queue: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._busy = False
        self._last_request: float | None = None  # monotonic time of the last accepted request
        self._proc: subprocess.Popen | None = None
        self.state: dict[str, Any] = {"state": "idle", "round": None, "stage": None, "started": None,
                                      "pending": False, "last": None}
        self.rounds = max((int(p.name) for p in (work_dir / "rounds").glob("[0-9]*") if p.name.isdigit()), default=0)
        holdout_key(work_dir)  # made now (a work folder from before the key existed gets one before any round)

    def request(self, job: dict[str, Any]) -> str:
        """Start a round for ``job`` (project, config, token or tasks); queue it when one runs (the newest
        request replaces a queued one). RetryLater when the last accepted request is under the interval old."""
        with self._lock:
            now = time.monotonic()
            if self._last_request is not None and now - self._last_request < self.min_interval:
                raise RetryLater(self.min_interval - (now - self._last_request))
            self._last_request = now
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
                tasks = self._export(round_dir, job)
            result = self._run_worker(n, round_dir, job, tasks)
        except Exception as exc:  # one line for /health; the worker's own errors come from result.json
            result = {"round": n, "project": job.get("project"), "status": "failed", "error": str(exc)}
            if round_dir.is_dir():
                atomic_write_text(round_dir / "result.json", json.dumps(result, ensure_ascii=False))
        self._prune(round_dir)
        return result

    def _export(self, round_dir: Path, job: dict[str, Any]) -> list[Any]:
        """The export from the configured Label Studio; a failure's detail goes to the round's log only."""
        token = job.pop("token", None)
        if not self.label_studio_url:
            raise RuntimeError("retraining from Label Studio's export needs serve --label-studio-url URL")
        try:
            return fetch_export(self.label_studio_url, job["project"], token or "")
        except (ExportFailed, ValueError) as exc:
            detail = getattr(exc, "detail", str(exc))
            with open(round_dir / "log.txt", "a", encoding="utf-8") as fh:
                fh.write(f"fetching the export of project {job['project']}: {detail}\n")
            public = str(exc) if isinstance(exc, ExportFailed) else ""
            where = round_dir.relative_to(self.work_dir) / "log.txt"
            raise RuntimeError(f"the export could not be fetched{': ' + public if public else ''} "
                               f"(see {where})") from None

    def _prune(self, round_dir: Path) -> None:
        """Old models go once a round ends (the served one, the base model and the last round's stay)."""
        served, _version = self._current() if self._current is not None else (None, None)
        protect = [*self.protect, *([Path(served)] if served is not None else [])]
        try:
            gone = prune_models(self.work_dir / "models", self.keep_models, protect)
        except OSError as exc:
            gone = []
            log.warning("could not remove old retrained models: %s", exc)
        if gone and round_dir.is_dir():
            with open(round_dir / "log.txt", "a", encoding="utf-8") as fh:
                fh.write(f"removed old models (--keep-models {self.keep_models}): "
                          f"{', '.join(p.name for p in gone)}\n")

    def _run_worker(self, n: int, round_dir: Path, job: dict[str, Any], tasks: list[Any]) -> dict[str, Any]:
        cfg: LabelingConfig = job["config"]
        model, version = self._current()
        (round_dir / "export.json").write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
        request = {"round": n, "project": job.get("project"), "train_config": str(self.train_config),
                   "label_map": self.label_map, "config": cfg.to_dict(), "holdout_fraction": HOLDOUT_FRACTION,
                   "holdout_key_file": str(self.work_dir / HOLDOUT_KEY_FILE),
                   "models_dir": str(self.work_dir / "models"),
                   "current": {"model": str(Path(model).resolve()), "version": version}}
        atomic_write_text(round_dir / "request.json", json.dumps(request, ensure_ascii=False, indent=1))
        self.state["stage"] = "starting the retraining process"
        with open(round_dir / "log.txt", "a", encoding="utf-8") as fh:
            self._proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(round_dir)],
                                          stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
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
