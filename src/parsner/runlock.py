"""A lock for a run directory, so two trainings never write (or delete) the same run.

The lock is a file ``.<name>.lock`` beside the run directory (not inside it: ``--overwrite`` replaces
the work folder, and the lock must outlive that), created with ``O_EXCL`` and holding
``{"pid", "host", "started"}``. A lock whose process is gone (same host, pid not running) is stale and
taken over with a note; a lock from another host is never broken automatically.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from parsner.errors import ParsnerError


class RunLocked(ParsnerError):
    """Another process holds the run directory."""


def lock_path(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _read(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


class RunLock:
    """``with RunLock(run_dir): ...`` holds the lock for ``run_dir`` (released on exit, also on errors)."""

    def __init__(self, run_dir: str | Path, *, what: str = "a run") -> None:
        self.run_dir = Path(run_dir)
        self.path = lock_path(self.run_dir)
        self.what = what
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
               "argv": sys.argv[1:]}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._handle_existing()
                continue
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(json.dumps(doc) + "\n")
            except BaseException:
                self.path.unlink(missing_ok=True)  # a full disk must not leave a lock nobody holds
                raise
            self.held = True
            return
        raise RunLocked(f"cannot take the lock {self.path} (it keeps reappearing); is another run starting?")

    def _handle_existing(self) -> None:
        other = _read(self.path)
        if other is None:
            # Being written this instant, or left half-written by a crash: wait a little, then call it stale.
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return
            if age < 5:
                time.sleep(0.2)
                if _read(self.path) is not None or not self.path.exists():
                    return
            self._remove_stale("unreadable")
            return
        pid, host = other.get("pid"), other.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            self._remove_stale(f"pid {pid} is not running")
            return
        where = f"pid {pid}" + ("" if host == socket.gethostname() else f" on host {host}")
        raise RunLocked(
            f"{self.what} is in progress in {self.run_dir} ({where}); wait for it to finish or stop it. "
            f"If it is not running, delete {self.path}"
        )

    def _remove_stale(self, why: str) -> None:
        print(f"parsner: note: removing the stale lock {self.path} ({why})", file=sys.stderr)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        doc = _read(self.path)
        if doc is not None and doc.get("pid") == os.getpid():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
