"""The ``parsner`` command line: one sub-command per pipeline step.

Each command lives in ``parsner.commands.<name>`` and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` (a callable taking the parsed args and returning an exit code).
User errors (:class:`~parsner.errors.ParsnerError`) print one clear message and exit with code 2;
Ctrl-C exits with 130; anything else is a crash with a traceback (exit code 1).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from parsner import __version__
from parsner.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, ParsnerError

#: Command modules, in the order of the pipeline.
COMMAND_MODULES = ("data", "train", "eval", "predict", "benchmark", "quickstart")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parsner",
        description="Persian named-entity recognition: build datasets, fine-tune ParsBERT, evaluate, predict.",
    )
    parser.add_argument("--version", action="version", version=f"parsner {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"parsner.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"parsner.commands.{name}":
                continue  # command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        code = args.func(args)
    except ParsnerError as exc:
        print(f"parsner: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("parsner: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
