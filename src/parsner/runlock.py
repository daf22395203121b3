"""A lock for a run directory, so two trainings never write (or delete) the same run.

Two files beside the run directory (not inside it: ``--overwrite`` replaces the work folder, and the lock must
outlive that): ``.<name>.flock``, held with :mod:`filelock` (an OS lock, which the kernel releases when its process
dies, however it dies), and ``.<name>.lock``, the holder's record ``{"pid", "host", "started", "argv"}`` that a
refused run names. The record also stands on its own: one naming a live process of this host, or any process of
another host (where an OS lock on a network filesystem may not be seen), refuses the run even when the OS lock is
free; one whose process is gone (same host, pid not running) is stale and taken over with a warning. Both files are
removed on release. They are separate because filelock 3 truncates its lock file when it tries to take it, which
would wipe the holder's record on every refused attempt.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from parsner.errors import ParsnerError

log = logging.getLogger(__name__)


class RunLocked(ParsnerError):
    """Another process holds the run directory."""


def lock_path(run_dir: str | Path) -> Path:
    """The holder's record."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.lock"


def os_lock_path(run_dir: str | Path) -> Path:
    """The file the OS lock is held on."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.flock"


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
        self._os_lock: FileLock | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flock = os_lock_path(self.run_dir)
        for _ in range(3):
            os_lock = FileLock(str(flock), timeout=0, thread_local=False)
            try:
                os_lock.acquire()
            except Timeout:
                raise RunLocked(self._busy(_read(self.path))) from None
            ours = False  # the lock file is ours to remove on failure (a full disk, a refusal)
            try:
                if not flock.exists():
                    continue  # the holder removed it between our open and our lock: that inode locks nothing
                ours = True
                self._check_record()
                if self._write_record():
                    self._os_lock, os_lock = os_lock, None
                    self.held = True
                    return
            finally:
                if os_lock is not None:
                    if ours:
                        flock.unlink(missing_ok=True)  # still held: a waiter that opened it finds it gone
                    os_lock.release()
        raise RunLocked(f"cannot take the lock {self.path} (it keeps reappearing); is another run starting?")

    def _write_record(self) -> bool:
        """Our record, created exclusively (False: one appeared meanwhile, from a parsner without the OS lock)."""
        doc = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "argv": sys.argv[1:]}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(doc) + "\n")
        except BaseException:
            self.path.unlink(missing_ok=True)  # a full disk must not leave a record nobody stands behind
            raise
        return True

    def _check_record(self) -> None:
        """With the OS lock held: refuse a record of a live holder, take over a stale one."""
        other = _read(self.path)
        if other is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return
            if age < 5:
                # Being written this instant by a parsner that does not take the OS lock: give it a moment.
                time.sleep(0.2)
                other = _read(self.path)
                if other is None and not self.path.exists():
                    return
            if other is None:
                self._remove_stale("unreadable")
                return
        pid, host = other.get("pid"), other.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            self._remove_stale(f"pid {pid} is not running")
            return
        raise RunLocked(self._busy(other))

    def _busy(self, other: dict | None) -> str:
        if other is None:
            where = "holder not recorded yet"
        else:
            pid, host = other.get("pid"), other.get("host")
            where = f"pid {pid}" + ("" if host == socket.gethostname() else f" on host {host}")
        return (f"{self.what} is in progress in {self.run_dir} ({where}); wait for it to finish or stop it. "
                f"If it is not running, delete {self.path}")

    def _remove_stale(self, why: str) -> None:
        log.warning("removing the stale lock %s (%s)", self.path, why)
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
            self.path.unlink(missing_ok=True)
        os_lock, self._os_lock = self._os_lock, None
        if os_lock is not None:
            # removed while still held, so that a waiter that opened it meanwhile finds it gone (acquire checks)
            os_lock_path(self.run_dir).unlink(missing_ok=True)
            os_lock.release()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
