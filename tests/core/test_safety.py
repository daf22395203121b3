"""Nothing lost, nothing silent: the output rule, non-finite training, run locks, checkpoints and resume checks.

Each test reproduces one way a user could lose data or get a broken model reported as a success.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.train import make_sentences, run_cli, save_dataset, small_dataset, tiny_config
from parsner.atomic import MARKER
from parsner.cli import main
from parsner.errors import EXIT_USER_ERROR, ConfigError
from parsner.training.config import load_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("safety")


@pytest.fixture(scope="module")
def data(work) -> Path:
    return small_dataset(work / "data", n_train=32, n_valid=8)


@pytest.fixture(scope="module")
def config(work, data) -> Path:
    return tiny_config(work / "tiny.yaml", data, epochs=2)


@pytest.fixture(scope="module")
def run_dir(work, config) -> Path:
    from parsner.training.train import train

    out = work / "runs" / "done"
    train(load_config(config, overrides={"out": str(out)}))
    return out


def user_folder(path: Path) -> Path:
    """A folder of the user's own files, which no command may delete or replace."""
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("precious", encoding="utf-8")
    (path / "notes").mkdir()
    (path / "notes" / "a.txt").write_text("more", encoding="utf-8")
    return path


def intact(path: Path) -> bool:
    return (path / "thesis.tex").read_text(encoding="utf-8") == "precious" and \
        (path / "notes" / "a.txt").read_text(encoding="utf-8") == "more" and len(list(path.iterdir())) == 2


def cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# ------------------------------------------------------------------------------- 1. the output rule


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_user_folder_survives_every_command(tmp_path, data, run_dir, sample_dir, capsys, overwrite):
    home = user_folder(tmp_path / "home")
    conll = tmp_path / "train.txt"
    conll.write_text("تهران B-LOC\nرفت O\n\n", encoding="utf-8")
    commands = [
        ["data", "build", str(conll), "--out", str(home)],
        ["train", "--config", str(tmp_path / "c.yaml"), "--out", str(home)],
        ["eval", "--model", str(run_dir), "--data", str(data), "--split", "validation", "--out", str(home)],
    ]
    tiny_config(tmp_path / "c.yaml", data)
    for argv in commands:
        code, err = cli([*argv, *overwrite], capsys)
        assert code == EXIT_USER_ERROR, argv
        assert ("not " in err and "parsner" in err) or "already exists" in err, err
        assert intact(home), argv
    # quickstart: its model/ folder is the user's
    qs = tmp_path / "qs"
    user_folder(qs / "model")
    code, err = cli(["quickstart", "--workdir", str(qs), *overwrite], capsys)
    assert code == EXIT_USER_ERROR and intact(qs / "model") and not (qs / "data").exists()
    assert not (home.parent / "home.incomplete").exists()


def test_predict_never_replaces_a_user_file_or_its_input(tmp_path, run_dir, capsys):
    mine = tmp_path / "mine.jsonl"
    mine.write_text("my own notes\n", encoding="utf-8")
    inp = tmp_path / "in.txt"
    inp.write_text("علی به تهران رفت\n", encoding="utf-8")
    for extra in ([], ["--overwrite"]):
        code, err = cli(["predict", "--model", str(run_dir), "--input", str(inp), "--output", str(mine), *extra],
                        capsys)
        assert code == EXIT_USER_ERROR and mine.read_text(encoding="utf-8") == "my own notes\n"
        code, err = cli(["predict", "--model", str(run_dir), "--input", str(inp), "--output", str(inp), *extra],
                        capsys)
        assert code == EXIT_USER_ERROR and "is the input" in err
        assert inp.read_text(encoding="utf-8") == "علی به تهران رفت\n"
    # what parsner wrote, it may replace with --overwrite (and only then)
    out = tmp_path / "out.jsonl"
    assert cli(["predict", "--model", str(run_dir), "--input", str(inp), "--output", str(out)], capsys)[0] == 0
    code, err = cli(["predict", "--model", str(run_dir), "--input", str(inp), "--output", str(out)], capsys)
    assert code == EXIT_USER_ERROR and "--overwrite" in err
    assert cli(["predict", "--model", str(run_dir), "--input", str(inp), "--output", str(out), "--overwrite"],
               capsys)[0] == 0
    out.write_text("edited by hand\n", encoding="utf-8")  # changed since parsner wrote it: the user's now
    code, err = cli(["predict", "--model", str(run_dir), "--input", str(inp), "--output", str(out),
                     "--overwrite"], capsys)
    assert code == EXIT_USER_ERROR and "changed" in err and out.read_text(encoding="utf-8") == "edited by hand\n"


def test_predict_output_that_is_a_folder_or_below_a_file_fails_before_tagging(tmp_path, run_dir, capsys):
    for target, msg in ((tmp_path, "is a folder"), (tmp_path / "f.txt" / "out.jsonl", "is a file")):
        (tmp_path / "f.txt").write_text("x", encoding="utf-8")
        code, err = cli(["predict", "--model", str(run_dir), "x", "--output", str(target)], capsys)
        assert code == EXIT_USER_ERROR and msg in err
        assert "model load" not in err  # refused before the model was even loaded


def test_train_out_equal_to_data_or_dot_is_refused(tmp_path, data, config, capsys, monkeypatch):
    before = sorted(p.name for p in data.iterdir())
    for out in (str(data), str(data.parent)):
        code, err = cli(["train", "--config", str(config), "--out", out, "--overwrite"], capsys)
        assert code == EXIT_USER_ERROR and "input" in err
    assert sorted(p.name for p in data.iterdir()) == before
    monkeypatch.chdir(tmp_path)
    for out in (".", "..", str(tmp_path)):
        code, err = cli(["train", "--config", str(config), "--out", out], capsys)
        assert code == EXIT_USER_ERROR, out
    assert list(tmp_path.iterdir()) == []  # no temporary folders left


def test_eval_out_equal_to_the_model_is_refused(run_dir, data, capsys):
    before = {p.name: p.stat().st_mtime for p in run_dir.iterdir()}
    code, err = cli(["eval", "--model", str(run_dir), "--data", str(data), "--split", "validation",
                     "--out", str(run_dir), "--overwrite"], capsys)
    assert code == EXIT_USER_ERROR and "is the input" in err
    assert {p.name: p.stat().st_mtime for p in run_dir.iterdir()} == before


def test_eval_replaces_its_own_output_but_not_a_run(run_dir, data, tmp_path, capsys):
    import shutil

    out = tmp_path / "ev"
    argv = ["eval", "--model", str(run_dir), "--data", str(data), "--split", "validation", "--quiet",
            "--bootstrap", "0", "--no-plots", "--out", str(out)]
    assert cli(argv, capsys)[0] == 0 and (out / MARKER).is_file()
    assert cli([*argv, "--overwrite"], capsys)[0] == 0
    other_run = shutil.copytree(run_dir, tmp_path / "another-run")
    code, err = cli([*argv[:-1], str(other_run), "--overwrite"], capsys)
    assert code == EXIT_USER_ERROR and "it holds a run trained by parsner" in err
    assert (other_run / "model.safetensors").is_file()


def test_quickstart_needs_overwrite_to_replace_its_outputs(tmp_path, capsys, monkeypatch):
    from parsner.atomic import write_marker

    qs = tmp_path / "qs"
    (qs / "eval").mkdir(parents=True)
    (qs / "eval" / "report.md").write_text("old", encoding="utf-8")
    write_marker(qs / "eval", "eval")
    code, err = cli(["quickstart", "--workdir", str(qs)], capsys)
    assert code == EXIT_USER_ERROR and "--overwrite" in err
    assert (qs / "eval" / "report.md").read_text(encoding="utf-8") == "old" and not (qs / "data").exists()


def test_data_build_records_its_marker_and_replaces_only_its_own(tmp_path, capsys):
    conll = tmp_path / "train.txt"
    conll.write_text("تهران B-LOC\nرفت O\n\nعلی B-PER\n\n", encoding="utf-8")
    out = tmp_path / "ds"
    assert cli(["data", "build", str(conll), "--out", str(out), "-q", "--split-ratios", "1,0,0"], capsys)[0] == 0
    assert json.loads((out / MARKER).read_text(encoding="utf-8"))["kind"] == "dataset"
    assert cli(["data", "build", str(conll), "--out", str(out), "-q", "--split-ratios", "1,0,0",
                "--overwrite"], capsys)[0] == 0
    code, err = cli(["data", "build", str(conll), "--out", str(tmp_path), "-q", "--overwrite"], capsys)
    assert code == EXIT_USER_ERROR and "holds the input" in err


# ------------------------------------------------------------------------------- 4. non-finite values


@pytest.mark.parametrize("item, message", [
    ("learning_rate=5e5", "did you mean 5e-5"),
    ("learning_rate=.nan", "finite"),
    ("weight_decay=.inf", "finite"),
    ("epochs=.nan", "finite"),
    ("warmup_ratio=.nan", "finite"),
    ("max_grad_norm=-.inf", "finite"),
    ("validation_fraction=.nan", "finite"),
    ("seed=4294967296", "2**32"),
    ("num_threads=1000000", "num_threads"),
])
def test_bad_numbers_are_refused_before_training(item, message, config, tmp_path, capsys):
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        load_config(config, sets=[item])
    code, err = cli(["train", "--config", str(config), "--out", str(tmp_path / "o"), "--set", item], capsys)
    assert code == EXIT_USER_ERROR and message in err
    assert list(tmp_path.iterdir()) == []


def test_diverging_training_stops_and_is_not_saved(config, tmp_path):
    from parsner.training.jobs import TrainingDiverged
    from parsner.training.train import train

    out = tmp_path / "run"
    cfg = dataclasses.replace(load_config(config, overrides={"out": str(out)}), learning_rate=5e5)  # past checks
    with pytest.raises(TrainingDiverged, match="diverged at optimiser step"):
        train(cfg)
    assert not out.exists()
    log = (tmp_path / "run.incomplete" / "train_log.jsonl").read_text(encoding="utf-8")
    assert '"event": "diverged"' in log


def test_nan_midway_keeps_the_last_good_checkpoint(config, tmp_path):
    out = tmp_path / "run"
    # 4 steps per epoch: checkpoint-4 is written, then a weight turns NaN after step 6
    res = run_cli(["train", "--config", str(config), "--out", str(out)], {"PARSNER_FAULT_INJECT": "NAN:6"})
    assert res.returncode == EXIT_USER_ERROR, res.stderr[-2000:]
    assert "diverged at optimiser step 7" in res.stderr and "checkpoint-4" in res.stderr
    assert not out.exists()
    ckpt = tmp_path / "run.incomplete" / "checkpoints"
    assert sorted(p.name for p in ckpt.iterdir()) == ["checkpoint-4"]


def test_non_finite_weights_are_never_saved_as_complete(run_dir, monkeypatch, tmp_path):
    import torch
    from transformers import AutoModelForTokenClassification

    from parsner.training.jobs import TrainingDiverged, check_finite_weights

    model = AutoModelForTokenClassification.from_pretrained(str(run_dir))
    check_finite_weights(model, load_config(None), tmp_path, tmp_path)  # finite: fine
    with torch.no_grad():
        model.classifier.bias.fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match=r"classifier\.bias"):
        check_finite_weights(model, load_config(None), tmp_path, tmp_path)


# ------------------------------------------------------------------------------- 2. locks and checkpoints


def test_a_second_training_on_the_same_out_is_refused(config, tmp_path, capsys):
    from parsner.runlock import lock_path

    out = tmp_path / "run"
    (tmp_path / "run.incomplete").mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(out).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}), encoding="utf-8")
        for extra in ([], ["--overwrite"], ["--resume"]):
            code, err = cli(["train", "--config", str(config), "--out", str(out), *extra], capsys)
            assert code == EXIT_USER_ERROR and f"in progress in {out} (pid {sleeper.pid})" in err
            assert (tmp_path / "run.incomplete").is_dir()  # the live run's folder is untouched
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_stale_lock_is_taken_over(tmp_path, caplog):
    from parsner.runlock import RunLock, lock_path, os_lock_path

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(tmp_path / "run").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with RunLock(tmp_path / "run"):
        assert json.loads(lock_path(tmp_path / "run").read_text())["pid"] == os.getpid()
    assert not lock_path(tmp_path / "run").exists() and not os_lock_path(tmp_path / "run").exists()
    # a library warning now (the CLI's handler shows it on stderr as "parsner: warning: ...")
    assert any(r.name == "parsner.runlock" and r.levelname == "WARNING" and "stale lock" in r.getMessage()
               for r in caplog.records)


def test_resume_skips_an_incomplete_checkpoint(config, tmp_path):
    out = tmp_path / "run"
    res = run_cli(["train", "--config", str(config), "--out", str(out)], {"PARSNER_FAULT_INJECT": "SIGTERM:5"})
    assert res.returncode == 143, res.stderr[-2000:]
    ckpts = tmp_path / "run.incomplete" / "checkpoints"
    assert {p.name for p in ckpts.iterdir()} == {"checkpoint-4", "checkpoint-5"}
    # a save cut short (full disk, power loss): the folder exists but was never completed
    (ckpts / "checkpoint-5" / ".parsner-complete").unlink()
    (ckpts / "checkpoint-5" / "trainer_state.json").write_text('{"trunc', encoding="utf-8")
    res = run_cli(["train", "--config", str(config), "--out", str(out), "--resume"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "skipping the incomplete checkpoint" in res.stderr and "checkpoint-5" in res.stderr
    assert (out / "model.safetensors").is_file()


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(config, tmp_path, monkeypatch):
    import errno

    from transformers import Trainer

    from parsner.errors import ParsnerError
    from parsner.training.train import train

    calls = {"n": 0}
    original = Trainer._save_rng_state

    def fail_second(self, output_dir):  # the second checkpoint runs out of space half-way
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(Path(output_dir) / "rng_state.pth"))
        return original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", fail_second)
    out = tmp_path / "run"
    with pytest.raises(ParsnerError, match=r"No space left.*checkpoint-4"):
        train(load_config(config, overrides={"out": str(out)}, sets=["epochs=3"]))
    ckpts = tmp_path / "run.incomplete" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["checkpoint-4"]
    monkeypatch.setattr(Trainer, "_save_rng_state", original)
    result = train(load_config(config, overrides={"out": str(out)}, sets=["epochs=3"]), resume=True)
    assert result.resumed_from and result.resumed_from.endswith("checkpoint-4")


# ------------------------------------------------------------------------------- 3. resume checks


def _interrupted(config: Path, data: Path, out: Path) -> None:
    res = run_cli(["train", "--config", str(config), "--data", str(data), "--out", str(out)],
                  {"PARSNER_FAULT_INJECT": "SIGTERM:5"})
    assert res.returncode == 143, res.stderr[-2000:]


def test_resume_after_the_dataset_was_rebuilt_is_refused(config, tmp_path):
    import shutil

    data = small_dataset(tmp_path / "d", n_train=32, n_valid=8)
    out = tmp_path / "run"
    _interrupted(config, data, out)
    shutil.rmtree(data)
    save_dataset(data, {"train": make_sentences(32, 9), "validation": make_sentences(8, 2)})
    res = run_cli(["train", "--config", str(config), "--data", str(data), "--out", str(out), "--resume"])
    assert res.returncode == EXIT_USER_ERROR, res.stderr[-2000:]
    assert "is not the one the interrupted run" in res.stderr and "train split" in res.stderr
    # other labels: named, not a size-mismatch traceback
    shutil.rmtree(data)
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    rows = [(t, [x if "ORG" not in x else "O" for x in g]) for t, g in make_sentences(32, 1)]
    save_dataset(data, {"train": rows, "validation": rows[:8]}, labels)
    res = run_cli(["train", "--config", str(config), "--data", str(data), "--out", str(out), "--resume"])
    assert res.returncode == EXIT_USER_ERROR and "labels were" in res.stderr
    assert (tmp_path / "run.incomplete" / "checkpoints" / "checkpoint-5").is_dir()


# ------------------------------------------------------------------------------- 5. no traceback anywhere


def test_sigterm_during_predict_leaves_no_temp_file(run_dir, tmp_path):
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "parsner", "predict", "--model", str(run_dir), "--input", "-",
                             "--output", str(out)], stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    proc.stdin.write("علی به تهران رفت\n".encode())
    proc.stdin.flush()
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.jsonl.tmp-*")) and time.time() < deadline:
        time.sleep(0.1)
    assert list(tmp_path.glob(".out.jsonl.tmp-*")), "predict never started writing"
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []
