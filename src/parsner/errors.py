"""User-facing errors.

Every problem caused by the user's input (a bad file, a bad config, a missing model) is raised as a
:class:`ParsnerError` subclass. The CLI prints its message and exits with :data:`EXIT_USER_ERROR`,
which is distinct from the exit code 1 of an unexpected crash (a traceback).
"""

from __future__ import annotations

import errno
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

#: Filesystem and environment errors that are the user's to fix (full disk, read-only folder, ...): one line.
USER_ERRNOS = {
    errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.ENOENT,
    errno.EEXIST, errno.ENAMETOOLONG, errno.EFBIG, errno.EDQUOT, errno.EMFILE, errno.ELOOP, errno.EXDEV,
    errno.ENOTEMPTY, errno.EIO,
}


class ParsnerError(Exception):
    """Base class for errors that are the user's to fix; the message says what and where."""


class InputError(ParsnerError):
    """Bad input data, located by file and line (CoNLL) or record (JSONL, 1-based line too)."""

    def __init__(self, path: str | Path | None, line: int | None, message: str) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class ConfigError(ParsnerError):
    """A run config or CLI option that cannot be used (unknown key, wrong type, bad value)."""


class ModelLoadError(ParsnerError):
    """A model or tokenizer that cannot be loaded (offline and not cached, missing files, ...)."""


def os_error_message(exc: OSError) -> str:
    """One line for an :data:`USER_ERRNOS` error: the file(s), what went wrong, and a hint for the common ones."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    what = exc.strerror or str(exc)
    hint = {errno.ENOSPC: " (free some space and run the command again)",
            errno.EROFS: " (write the output somewhere writable)",
            errno.EACCES: " (check the permissions)"}.get(exc.errno or 0, "")
    return f"{where}: {what}{hint}" if where else f"{what}{hint}"
