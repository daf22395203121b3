"""User-facing errors.

Every problem caused by the user's input (a bad file, a bad config, a missing model) is raised as a
:class:`ParsnerError` subclass. The CLI prints its message and exits with :data:`EXIT_USER_ERROR`,
which is distinct from the exit code 1 of an unexpected crash (a traceback).
"""

from __future__ import annotations

from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


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
