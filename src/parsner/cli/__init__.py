"""The ``parsner`` command line: one sub-command per pipeline step.

Each command lives in ``parsner.cli.<name>`` and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` (a callable taking the parsed args and returning an exit code).
User errors (:class:`~parsner.errors.ParsnerError`, and filesystem errors such as a full disk or a
read-only folder) print one clear message and exit with code 2; Ctrl-C exits with 130, SIGTERM with 143
(after temporary outputs are cleaned up); anything else is a crash with a traceback (exit code 1).

Logging is configured here and nowhere else. Library modules log through ``logging.getLogger(__name__)`` (all
under ``parsner.``), with messages that carry no ``parsner COMMAND:`` prefix and no ``warning:`` label: while a
command runs, :func:`main` puts one handler on the ``parsner`` logger that writes to stderr and adds them, so the
lines read as they always have: ``parsner train: MSG`` (info and debug, named after the running command),
``parsner: warning: MSG``, ``parsner: error: MSG``. ``parsner -q`` shows warnings and errors only (and hides the
progress lines of commands that draw them), ``parsner -v`` adds debug lines. The handler and level are removed
again when the command returns, so a program that calls :func:`main` keeps its own logging set-up.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import platform
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from parsner import surrogates
from parsner._version import __version__
from parsner.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, USER_ERRNOS, ConfigError, ParsnerError, os_error_message

#: Command modules, in the order of the pipeline.
COMMAND_MODULES = (
    "data", "pretrain", "train", "distill", "eval", "predict", "export", "serve", "benchmark", "active_learning",
    "quickstart", "env",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parsner",
        description="Persian named-entity recognition: build datasets, fine-tune ParsBERT, evaluate, predict.",
    )
    parser.add_argument("--version", action="version", version=f"parsner {__version__}")
    # dests of their own: a command's own -q (data build, predict, eval) would overwrite a shared `quiet`
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", dest="log_quiet", action="store_true",
                       help="warnings and errors only: no progress or info lines on stderr")
    noise.add_argument("-v", "--verbose", dest="log_verbose", action="store_true", help="also debug lines on stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"parsner.cli.{name}").register(subparsers)
    return parser


# ------------------------------------------------------------------------------------------------ logging

#: The command each nested :func:`main` call is running (quickstart and the retraining worker call it again).
_COMMANDS: list[str] = []


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (tests and callers swap it while a command runs)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _PrefixFormatter(logging.Formatter):
    """The prefixes parsner's stderr lines have always had, added to the library's bare messages."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.ERROR:
            return f"parsner: error: {text}"
        if record.levelno >= logging.WARNING:
            return f"parsner: warning: {text}"
        return f"parsner {_COMMANDS[-1]}: {text}" if _COMMANDS and _COMMANDS[-1] else f"parsner: {text}"


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


@contextlib.contextmanager
def _logging_for(args: argparse.Namespace) -> Iterator[None]:
    """The ``parsner`` logger's stderr handler and level for one command (a nested call keeps the outer level)."""
    logger = logging.getLogger("parsner")
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    added = handler is None
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(_PrefixFormatter())
        logger.addHandler(handler)
    previous = logger.level
    if args.log_verbose:
        logger.setLevel(logging.DEBUG)
    elif args.log_quiet:
        logger.setLevel(logging.WARNING)
    elif added:
        logger.setLevel(logging.INFO)
    if not logger.isEnabledFor(logging.INFO) and hasattr(args, "quiet"):
        args.quiet = True  # the command's own -q: its progress lines are not logging's
    bars_off = "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ and (
        not logger.isEnabledFor(logging.INFO) or not _is_terminal(sys.stderr))
    if bars_off:
        # transformers' and the Hub's own bars ("Loading weights", "Writing model shards") are a terminal's; in a
        # log or under -q they are noise. Read when huggingface_hub is first imported, so a command's process is
        # covered and a program that already imported it keeps its own choice.
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    _COMMANDS.append(args.command or "")
    try:
        yield
    finally:
        _COMMANDS.pop()
        if bars_off:
            os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        logger.setLevel(previous)
        if added:
            logger.removeHandler(handler)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup (temporary files and folders) runs."""


def _in_finalizer(frame: Any) -> bool:
    """True when the signal interrupted a ``__del__``: an exception raised there is printed and swallowed."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _on_sigterm(signum: int, frame: Any) -> None:
    if _in_finalizer(frame):
        # Raising here would be lost (and print a traceback); deliver the signal again a moment later instead.
        threading.Timer(0.02, os.kill, (os.getpid(), signum)).start()
        return
    raise Terminated()


def _bad_argument(argv: Sequence[str]) -> str | None:
    """Command-line text that is not valid UTF-8 (Python keeps such bytes as lone surrogates)."""
    for i, arg in enumerate(argv, 1):
        why = surrogates.problem(arg)
        if why is None:
            continue
        try:
            shown = arg.encode("utf-8", "surrogateescape")[:60]
        except UnicodeEncodeError:  # not bytes kept by the decoder: a Python caller of main() passed it
            return f"command-line argument {i} holds {why}"
        return f"command-line argument {i} is not valid UTF-8: {shown!r}"
    return None


def check_device(device: str | None) -> None:
    """A ``--device`` torch understands and this machine has, checked before a model is loaded."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {device!r}: not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: MPS is not available here; use --device cpu")


def check_min_score(value: str | float | None, flag: str = "--min-score") -> float | None:
    """A ``--min-score`` as a float from 0 to 1 (None when not given), checked before any work starts."""
    if value is None:
        return None
    from parsner.inference.calibration import check_min_score as check

    try:
        return check(value, flag)
    except ValueError as exc:
        raise ConfigError(f"{exc} (entities scored below it are dropped; 0 keeps every entity)") from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bad = _bad_argument(argv)
    if bad:
        print(f"parsner: error: {bad}", file=sys.stderr)
        return EXIT_USER_ERROR
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    with _logging_for(args):
        logging.getLogger(__name__).debug("parsner %s, Python %s: %s", __version__, platform.python_version(),
                                          " ".join(argv))
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command, with its errors mapped to one line and an exit code."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = args.func(args)
    except ParsnerError as exc:
        stopped = getattr(exc, "exit_code", None)  # a run stopped by a signal after saving (TrainingInterrupted)
        print(f"parsner: {exc}" if stopped else f"parsner: error: {exc}", file=sys.stderr)
        return stopped or EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("parsner: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("parsner: terminated (SIGTERM); nothing half-written was left behind", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # the reader went away (`parsner predict ... | head`): not an error worth a traceback
        with contextlib.suppress(OSError):
            sys.stderr.write("parsner: output closed by the reader\n")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_USER_ERROR
    except UnicodeDecodeError as exc:
        # a reader that did not name the file: still one line, with the bytes that are wrong
        bad = exc.object[exc.start : exc.start + 4]
        print(f"parsner: error: an input is not valid UTF-8 (byte {exc.start}: {bad!r})", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        if exc.errno not in USER_ERRNOS:
            raise
        print(f"parsner: error: {os_error_message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(code or 0)

