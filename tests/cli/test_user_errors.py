"""Every input problem ends in one message naming what is wrong (exit 2, no traceback, no output), and the
builds that succeed but cannot train anything useful say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.train import assert_no_traceback, make_sentences, save_dataset, small_dataset, tiny_config
from parsner.cli import main
from parsner.errors import EXIT_USER_ERROR

ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    cap = capsys.readouterr()
    assert_no_traceback(cap.err, argv)
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from parsner.training.config import load_config
    from parsner.training.train import train

    work = tmp_path_factory.mktemp("errors")
    data = small_dataset(work / "data", n_train=16, n_valid=4)
    out = work / "run"
    train(load_config(tiny_config(work / "c.yaml", data, epochs=1), overrides={"out": str(out)}))
    return out


# ------------------------------------------------------------------------------- readers and builds


def test_a_token_with_a_tab_is_refused_at_build(tmp_path, capsys):
    f = tmp_path / "train.txt"
    f.write_text("علی B-PER\nبه\tتو O\n\n", encoding="utf-8")
    code, _, err = cli(["data", "build", str(f), "--format", "arman", "--out", str(tmp_path / "ds"), "-q"], capsys)
    assert code == EXIT_USER_ERROR and f"{f}:1" in err and "'\\t'" in err
    assert not (tmp_path / "ds").exists()


def test_doccano_label_and_labels_with_different_spans_is_refused(tmp_path, capsys):
    from parsner.data.readers import read_file
    from parsner.errors import InputError

    f = tmp_path / "d.jsonl"
    rec = {"text": "علی به تهران رفت", "label": [[0, 3, "PER"]], "labels": [[7, 12, "LOC"]]}
    f.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="both 'label' and 'labels'"):
        read_file(f, format="doccano")
    rec["label"] = []  # one of them empty: the other one's spans are kept
    f.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_file(f, format="doccano").sentences[0].tags == ["O", "O", "B-LOC", "O"]


def test_no_entities_and_test_only_types_are_warned_about(tmp_path, capsys):
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text("علی O\nرفت O\n\n" * 5, encoding="utf-8")
    test.write_text("تهران B-LOC\n\n", encoding="utf-8")
    code, _, err = cli(["data", "build", str(train), "--out", str(tmp_path / "a"), "-q"], capsys)
    assert code == 0 and "no entities at all" in err
    train.write_text("علی B-PER\nرفت O\n\n" * 5, encoding="utf-8")
    code, _, err = cli(["data", "build", str(train), str(test), "--out", str(tmp_path / "b"), "-q"], capsys)
    assert code == 0 and "LOC occur in test but not in train" in err


def test_non_utf8_label_map_and_config(tmp_path, capsys):
    f = tmp_path / "train.txt"
    f.write_text("علی B-PER\n\n", encoding="utf-8")
    bad = tmp_path / "map.yaml"
    bad.write_bytes(b"PER: \xff\xfe\n")
    code, _, err = cli(["data", "build", str(f), "--label-map", str(bad), "--out", str(tmp_path / "d")], capsys)
    assert code == EXIT_USER_ERROR and f"{bad}: not valid UTF-8" in err
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"epochs: 1\nrun_name: \xe9\n")
    code, _, err = cli(["train", "--config", str(cfg)], capsys)
    assert code == EXIT_USER_ERROR and f"{cfg}: not valid UTF-8" in err


def test_corrupt_stats_json(tmp_path, capsys):
    ds = save_dataset(tmp_path / "ds", {"train": make_sentences(4, 1)})
    for content in ("{not json", "[1, 2]", '{"splits": 3}'):
        (ds / "stats.json").write_text(content, encoding="utf-8")
        code, _, err = cli(["data", "stats", str(ds)], capsys)
        assert code == EXIT_USER_ERROR and "stats.json" in err, content


# ------------------------------------------------------------------------------- train options


def test_data_that_is_a_file_and_a_one_sentence_train_split(tmp_path, capsys):
    f = tmp_path / "train.txt"
    f.write_text("x O\n", encoding="utf-8")
    code, _, err = cli(["train", "--data", str(f), "--out", str(tmp_path / "o")], capsys)
    assert code == EXIT_USER_ERROR and "is a file" in err
    one = save_dataset(tmp_path / "one", {"train": make_sentences(1, 1)})
    code, _, err = cli(["train", "--data", str(one), "--out", str(tmp_path / "o"),
                        "--set", "validation_fraction=0.1"], capsys)
    assert code == EXIT_USER_ERROR and "too few to carve a validation split" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "train.txt"]


# ------------------------------------------------------------------------------- predict


def test_predict_refuses_nul_bytes_and_a_bogus_device(run_dir, tmp_path, capsys):
    f = tmp_path / "in.txt"
    f.write_text("علی به تهران رفت\nab\0cd\n", encoding="utf-8")
    code, out, err = cli(["predict", "--model", str(run_dir), "--input", str(f)], capsys)
    assert code == EXIT_USER_ERROR and f"{f}:2" in err and "NUL" in err
    code, out, err = cli(["predict", "--model", str(run_dir), "a\0b"], capsys)
    assert code == EXIT_USER_ERROR and "arg:1" in err and out == ""
    code, out, err = cli(["predict", "--model", str(run_dir), "--device", "bogus", "x"], capsys)
    assert code == EXIT_USER_ERROR and "--device 'bogus'" in err


def test_non_utf8_command_line_and_closed_stdin(run_dir):
    res = subprocess.run([sys.executable, "-m", "parsner", "predict", "--model", str(run_dir), b"\xff\xfe"],
                         capture_output=True, env=ENV, check=False)
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == EXIT_USER_ERROR and "not valid UTF-8" in err
    assert_no_traceback(err)
    res = subprocess.run(f"{sys.executable} -m parsner predict --model {run_dir} --input - <&-", shell=True,
                         capture_output=True, env=ENV, check=False)
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == EXIT_USER_ERROR and "standard input is closed" in err
    assert_no_traceback(err)
