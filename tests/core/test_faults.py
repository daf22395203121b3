"""Fault injection: every writing command against a full disk, a read-only output, SIGTERM at a random
moment, and a second concurrent writer. Each must end in one message (no traceback), and leave either a
complete output or none: no half-written folder, no temporary file, no lock.

Full disk and read-only outputs are real filesystems: a small tmpfs mounted for the test (needs root;
skipped otherwise). ``test_full_disk_in_process`` injects ENOSPC with monkeypatch, so the path is covered
without root too.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.train import assert_no_traceback, run_cli, small_dataset, tiny_config
from parsner.errors import EXIT_USER_ERROR

pytestmark = pytest.mark.slow
ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
           TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def inputs(work) -> dict[str, Path]:
    """A CoNLL file, a dataset, a config and a trained tiny run: the inputs of every command."""
    from parsner.training.config import load_config
    from parsner.training.train import train

    conll = work / "train.txt"
    conll.write_text("".join("علی B-PER\nبه O\nتهران B-LOC\nرفت O\n\n" for _ in range(20)), encoding="utf-8")
    data = small_dataset(work / "data", n_train=32, n_valid=8)
    config = tiny_config(work / "tiny.yaml", data, epochs=1)
    run = work / "run"
    train(load_config(config, overrides={"out": str(run)}))
    texts = work / "texts.txt"
    texts.write_text("علی به تهران رفت\n" * 200, encoding="utf-8")
    return {"conll": conll, "data": data, "config": config, "run": run, "texts": texts}


def commands(inp: dict[str, Path], target: Path) -> dict[str, list[str]]:
    """Each writing command, with ``target`` as its output."""
    return {
        "data build": ["data", "build", str(inp["conll"]), "--out", str(target / "ds"), "-q"],
        "train": ["train", "--config", str(inp["config"]), "--out", str(target / "run")],
        "eval": ["eval", "--model", str(inp["run"]), "--data", str(inp["data"]), "--split", "validation",
                 "--out", str(target / "ev"), "--quiet", "--bootstrap", "0"],
        "predict": ["predict", "--model", str(inp["run"]), "--input", str(inp["texts"]),
                    "--output", str(target / "out.jsonl")],
    }


def leftovers(folder: Path) -> list[str]:
    """Anything half-written: temporary files/folders, locks, run work folders."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.rglob("*") if ".tmp-" in p.name or ".old-" in p.name
                  or p.name.endswith(".lock") or p.name.endswith(".incomplete"))


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs; yields (mountpoint, remount) and unmounts afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {res.stderr.decode(errors='replace').strip()}")

    def remount(opts: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{opts}", str(mnt)], check=True)

    yield mnt, remount
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder: Path) -> None:
    """Fill the filesystem of ``folder`` to the last byte."""
    for name, chunk in (("filler", 65536), ("filler2", 1)):
        with open(folder / name, "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC


@pytest.mark.parametrize("name", ["data build", "train", "eval", "predict"])
def test_full_disk(name, inputs, tmpfs):
    mnt, _ = tmpfs
    fill(mnt)
    res = run_cli(commands(inputs, mnt)[name])
    assert res.returncode == EXIT_USER_ERROR, res.stderr[-2000:]
    assert "No space left on device" in res.stderr
    assert sorted(p.name for p in mnt.iterdir()) == ["filler", "filler2"], "no partial output"


@pytest.mark.parametrize("name", ["data build", "train", "eval", "predict"])
def test_read_only_output(name, inputs, tmpfs):
    mnt, remount = tmpfs
    remount("ro")
    res = run_cli(commands(inputs, mnt)[name])
    assert res.returncode == EXIT_USER_ERROR, res.stderr[-2000:]
    assert "Read-only file system" in res.stderr
    assert list(mnt.iterdir()) == []


def test_full_disk_in_process(inputs, tmp_path, monkeypatch, capsys):
    """Without root: ENOSPC raised where the dataset is saved ends in one line, and nothing is left."""
    import parsner.data.dataset
    from parsner.cli import main

    def no_space(dd, path):
        (Path(path) / "partial.arrow").write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(path) / "data.arrow"))

    monkeypatch.setattr(parsner.data.dataset, "_save_quietly", no_space)
    code = main(commands(inputs, tmp_path)["data build"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "No space left on device" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["data build", "train", "eval", "predict"])
def test_sigterm_at_a_random_moment(name, inputs, tmp_path):
    seed = int(os.environ.get("PARSNER_FAULT_SEED", "11"))  # set another seed to explore other moments
    rng = random.Random(f"{seed}-{name}")
    for attempt in range(1):
        out = tmp_path / f"try{attempt}"
        out.mkdir()
        delay = rng.uniform(0.3, 4.0)
        proc = subprocess.Popen([sys.executable, "-m", "parsner", *commands(inputs, out)[name]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        where = f"(PARSNER_FAULT_SEED={seed}, SIGTERM after {delay:.2f} s)"
        assert_no_traceback(err, [name, where])
        assert proc.returncode in (0, 143, -signal.SIGTERM), f"{proc.returncode} {where}: {err[-1500:]}"
        made = [p for p in out.iterdir() if not p.name.startswith(".")]
        if name == "train" and proc.returncode == 143:
            # an interrupted run keeps its work folder (for --resume), and nothing that looks complete
            assert not (out / "run").exists(), where
            made = [p for p in made if p.name != "run.incomplete"]
        for p in made:  # whatever exists is complete
            assert p.name in ("ds", "run", "ev", "out.jsonl"), f"{p} {where}"
            assert (p / ".parsner-output.json").is_file() if p.is_dir() else p.stat().st_size > 0, where
        stray = [x for x in leftovers(out) if not x.endswith(".incomplete")]
        assert stray == [], f"{stray} {where}"
        shutil.rmtree(out)


@pytest.mark.parametrize("name", ["data build", "train", "eval", "predict"])
def test_a_second_concurrent_writer(name, inputs, tmp_path):
    argv = commands(inputs, tmp_path)[name]
    procs = [subprocess.Popen([sys.executable, "-m", "parsner", *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    for _, err in results:
        assert_no_traceback(err, argv)
    codes = sorted(code for code, _ in results)
    assert codes == [0, EXIT_USER_ERROR], results
    loser = next(err for code, err in results if code == EXIT_USER_ERROR)
    assert any(m in loser for m in ("in progress", "already exists", "created by another process")), loser
    assert leftovers(tmp_path) == []
