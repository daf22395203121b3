"""How parsner talks: the library logs through ``parsner.*`` loggers and prints nothing; the CLI alone sets a stderr
handler (with the lines' usual prefixes), ``-q`` and ``-v``; progress bars only on a terminal."""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import logging
from pathlib import Path

import pytest

from parsner.cli import main
from parsner.paths import REPO_ROOT

SRC = REPO_ROOT / "src" / "parsner"

#: Modules outside cli/ allowed to print (none: what the user reads as a command's result is printed by cli/).
STILL_PRINTING: set[str] = set()


def _prints(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"]


def test_only_the_cli_prints() -> None:
    printing = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if not rel.startswith("cli/") and (lines := _prints(path)):
            printing[rel] = lines
    assert set(printing) <= STILL_PRINTING, {k: v for k, v in printing.items() if k not in STILL_PRINTING}


def test_no_module_calls_basic_config() -> None:
    """basicConfig would configure the root logger: the program's, not parsner's, to set."""
    for path in SRC.rglob("*.py"):
        assert "basicConfig" not in path.read_text(encoding="utf-8"), path


def _normaliser_warning() -> None:
    from parsner.data.normalize import choose_normalizer

    assert choose_normalizer("auto", saved=None, named=None, model="some/unknown-model")[0] is None


def test_a_library_warning_is_a_log_record_not_a_print(capsys, caplog) -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("parsner").handlers), \
        "parsner/__init__.py must give the 'parsner' logger a NullHandler (else Python's last resort prints)"
    with caplog.at_level(logging.WARNING, logger="parsner"):
        _normaliser_warning()
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    (record,) = [r for r in caplog.records if r.name == "parsner.data.normalize"]
    assert record.levelno == logging.WARNING and "unnormalised" in record.getMessage()
    assert not record.getMessage().startswith("parsner")  # the CLI's handler adds the prefix


def test_without_any_handler_a_library_user_sees_nothing(capsys) -> None:
    """A Tagger user who set up no logging is not written to (the NullHandler stops Python's last resort)."""
    logger = logging.getLogger("parsner")
    assert not any(not isinstance(h, logging.NullHandler) for h in logger.handlers)
    propagate, logger.propagate = logger.propagate, False  # pytest's own capture handler sits on the root
    try:
        _normaliser_warning()
    finally:
        logger.propagate = propagate
    assert capsys.readouterr().err == ""


@pytest.fixture
def talking_env(monkeypatch):
    """`parsner env` replaced by a command that logs at every level (and records what its args said)."""
    seen: list[argparse.Namespace] = []

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        log = logging.getLogger("parsner.some.module")
        log.debug("a debug line")
        log.info("an info line")
        log.warning("a warning line")
        log.error("an error line")
        return 0

    monkeypatch.setattr("parsner.cli.env.run", run)
    return seen


def test_the_cli_prefixes_lines_and_q_v_set_the_level(talking_env, capsys) -> None:
    assert main(["env"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["parsner env: an info line", "parsner: warning: a warning line",
                                "parsner: error: an error line"]
    assert main(["-q", "env"]) == 0
    assert capsys.readouterr().err.splitlines() == ["parsner: warning: a warning line", "parsner: error: an error line"]
    assert main(["--verbose", "env"]) == 0
    err = capsys.readouterr().err
    assert "parsner env: a debug line" in err and "parsner env: an info line" in err
    assert "Python" in err.splitlines()[0]  # -v also says which parsner and Python ran the command
    # once the command is done, nothing of the CLI's set-up stays on the logger
    logger = logging.getLogger("parsner")
    assert logger.level == logging.NOTSET
    assert all(isinstance(h, logging.NullHandler) for h in logger.handlers)


def test_q_also_quiets_a_commands_own_progress_lines(monkeypatch, capsys) -> None:
    seen: list[bool] = []
    monkeypatch.setattr("parsner.cli.data.cmd_build", lambda args: seen.append(args.quiet) or 0)
    assert main(["data", "build", "x.conll", "--out", "ds"]) == 0
    assert main(["-q", "data", "build", "x.conll", "--out", "ds"]) == 0
    assert main(["data", "build", "-q", "x.conll", "--out", "ds"]) == 0  # the command's own -q still works
    assert seen == [False, True, True]


def test_a_nested_command_keeps_the_outer_level_and_its_own_prefix(monkeypatch, capsys) -> None:
    """quickstart and the retraining worker run commands through main() again: -q given once holds for all."""
    def outer(args: argparse.Namespace) -> int:
        logging.getLogger("parsner.x").info("outer info")
        main(["data", "build", "x.conll", "--out", "ds"])
        logging.getLogger("parsner.x").warning("outer warning")
        return 0

    def inner(args: argparse.Namespace) -> int:
        logging.getLogger("parsner.y").info("inner info")
        logging.getLogger("parsner.y").warning("inner warning")
        return 0

    monkeypatch.setattr("parsner.cli.env.run", outer)
    monkeypatch.setattr("parsner.cli.data.cmd_build", inner)
    assert main(["env"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "parsner env: outer info", "parsner data: inner info", "parsner: warning: inner warning",
        "parsner: warning: outer warning"]
    assert main(["-q", "env"]) == 0
    assert capsys.readouterr().err.splitlines() == ["parsner: warning: inner warning",
                                                    "parsner: warning: outer warning"]


# ------------------------------------------------------------------------------------------ progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only_and_not_under_q(caplog) -> None:
    from parsner.serving.progress import Progress

    caplog.set_level(logging.INFO, logger="parsner")
    piped = io.StringIO()
    bar = Progress("tagging", 10, stream=piped, delay=0.0)
    bar.update(10)
    bar.close()
    assert piped.getvalue() == "" and not bar.enabled and bar.n == 10
    term = _Terminal()
    bar = Progress("tagging", 10, stream=term, delay=0.0)
    bar.update(10)
    bar.close()
    assert bar.enabled and "tagging" in term.getvalue()
    caplog.set_level(logging.WARNING, logger="parsner")  # as under `parsner -q`
    quiet = _Terminal()
    bar = Progress("tagging", 10, stream=quiet, delay=0.0)
    bar.update(10)
    bar.close()
    assert quiet.getvalue() == "" and not bar.enabled


# ------------------------------------------------------------------------------------------- digests


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    from parsner.atomic import file_sha256

    data = bytes(range(256)) * 9000  # over 2 MiB: more than one read
    (tmp_path / "f").write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_transformers_bars_stay_out_of_a_log_and_stay_on_a_terminals_choice(model: str) -> None:
    """``parsner predict`` with stderr to a file (a log, CI): no "Loading weights" bar from transformers; the
    variable that turns such bars off is the user's to set either way, and stays as they set it."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    env.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    argv = [sys.executable, "-m", "parsner", "predict", "--model", model, "علی به تهران رفت."]
    quiet = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert quiet.returncode == 0 and "parsner predict:" in quiet.stderr
    assert "Loading weights" not in quiet.stderr and "it/s]" not in quiet.stderr, quiet.stderr
    shown = subprocess.run(argv, capture_output=True, text=True, env={**env, "HF_HUB_DISABLE_PROGRESS_BARS": "0"},
                           timeout=120)
    assert shown.returncode == 0 and "Loading weights" in shown.stderr  # the user's own choice wins
