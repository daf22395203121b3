"""``parsner data build|stats|audit|corpora`` end to end through ``parsner.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parsner.cli import main
from parsner.data.dataset import load_dataset_dir
from parsner.errors import EXIT_USER_ERROR
from parsner.paths import SAMPLE_DIR


def _files(d: Path) -> list[str]:
    d.mkdir(parents=True, exist_ok=True)
    (d / "train.txt").write_text(
        "علی\tB-PER\nرضایی\tI-PER\nآمد\tO\n\nبانک\tB-ORG\nملت\tI-ORG\n\n.\tO\n\n", encoding="utf-8"
    )
    (d / "dev.txt").write_text("تهران\tB-LOC\n\n", encoding="utf-8")
    (d / "test.txt").write_text(".\tO\n\nمریم\tB-PER\n\n", encoding="utf-8")
    return [str(d / f) for f in ("train.txt", "dev.txt", "test.txt")]


def test_build_stats_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = _files(tmp_path / "in")
    out = tmp_path / "ds"
    assert main(["data", "build", *inputs, "--out", str(out), "--seed", "5"]) == 0
    cap = capsys.readouterr()
    assert "train.txt" in cap.err  # progress lines on stderr
    table = {line.split()[0]: line.split() for line in cap.out.splitlines() if line.strip()}
    assert table["train"][1:4] == ["3", "6", "2"]  # sentences, tokens, entities
    assert table["total"][1:4] == ["6", "9", "4"]
    assert f"wrote {out}" in cap.out
    assert len(load_dataset_dir(out)["train"]) == 3
    build = json.loads((out / "build.json").read_text(encoding="utf-8"))
    assert build["command"].startswith("parsner data build ") and "--seed 5" in build["command"]

    assert main(["data", "stats", str(out)]) == 0
    stats_out = capsys.readouterr().out
    assert any(line.split()[:4] == ["test", "2", "2", "1"] for line in stats_out.splitlines())

    assert main(["data", "stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["total_entities"] == 4

    assert main(["data", "audit", str(out)]) == 0
    audit_out = capsys.readouterr().out
    assert "test in train" in audit_out and "1 of 2 test sentences (50.0%)" in audit_out

    assert main(["data", "audit", str(out), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["duplicates"]["train"]["extra_copies"] == 0


def test_build_refuses_existing_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = _files(tmp_path / "in")
    out = tmp_path / "ds"
    assert main(["data", "build", *inputs, "--out", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["data", "build", *inputs, "--out", str(out), "-q"]) == EXIT_USER_ERROR
    assert "already exists" in capsys.readouterr().err
    assert main(["data", "build", *inputs, "--out", str(out), "-q", "--overwrite"]) == 0


def test_bad_input_exit_2_and_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = _files(tmp_path / "in")
    Path(inputs[2]).write_text("مریم\tB-PER\nآمد\n\n", encoding="utf-8")  # line 2 has no tag
    out = tmp_path / "ds"
    assert main(["data", "build", *inputs, "--out", str(out)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert f"{inputs[2]}:2" in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "build", "--out", "X"], "nothing to build"),
        (["data", "build", "a.txt", "--corpus", "peyma", "--out", "X"], "not both"),
        (["data", "build", "peyma", "--out", "X"], "did you mean --corpus peyma"),
        (["data", "build", "a.txt", "--fold", "1", "--out", "X"], "--fold only applies"),
        (["data", "build", "--corpus", "peyma", "--split-ratios", "0.5,0.5", "--out", "X"], "split ratios"),
    ],
)
def test_build_usage_errors(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    if "--corpus" in argv:  # point at a data dir that exists so the ratio check is what fails
        (tmp_path / "peyma" / "hooshvare_split").mkdir(parents=True)
        for f in ("train", "dev", "test"):
            (tmp_path / "peyma" / "hooshvare_split" / f"{f}.txt").write_text("a|O\n\n", encoding="utf-8")
        argv += ["--data-dir", str(tmp_path)]
    assert main(argv) == EXIT_USER_ERROR
    assert message in capsys.readouterr().err
    assert not (tmp_path / "X").exists()


def test_corpus_missing_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        ["data", "build", "--corpus", "peyma", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert rc == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "missing file" in err and str(tmp_path / "peyma" / "hooshvare_split" / "train.txt") in err


def test_arman_union_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arman = tmp_path / "arman" / "ArmanPersoNERCorpus"
    arman.mkdir(parents=True)
    folds = {k: [f"f{k}s{i} O\nایران B-loc" for i in range(12)] for k in (1, 2, 3)}
    for k in (1, 2, 3):
        (arman / f"test_fold{k}.txt").write_text("\n\n".join(folds[k]) + "\n\n", encoding="utf-8")
        train = [s for j in (1, 2, 3) if j != k for s in folds[j]]
        (arman / f"train_fold{k}.txt").write_text("\n\n".join(train) + "\n\n", encoding="utf-8")
    base = ["data", "build", "--corpus", "arman", "--fold", "all", "--data-dir", str(tmp_path)]
    assert main([*base, "--out", str(tmp_path / "u")]) == EXIT_USER_ERROR
    assert "--allow-leakage" in capsys.readouterr().err
    assert main([*base, "--allow-leakage", "--out", str(tmp_path / "u"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "100% leaked" in err
    assert main(["data", "audit", str(tmp_path / "u")]) == 0
    assert "100% leaked" in capsys.readouterr().err


def test_sample_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (SAMPLE_DIR / "sample.jsonl").is_file():
        pytest.skip("embedded sample not written yet")
    assert main(["data", "build", "--corpus", "sample", "--out", str(tmp_path / "s"), "-q"]) == 0
    dd = load_dataset_dir(tmp_path / "s")
    splits = json.loads((SAMPLE_DIR / "splits.json").read_text(encoding="utf-8"))
    for split in dd:
        key = split if split in splits else "dev"
        assert set(dd[split]["doc_id"]) == set(map(str, splits[key]))
    assert all(len(o) == len(t) for o, t in zip(dd["train"]["offsets"], dd["train"]["tokens"], strict=True))
    assert (tmp_path / "s" / "texts.jsonl").is_file()


def test_stats_and_audit_on_non_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk").mkdir()
    assert main(["data", "audit", str(tmp_path / "junk")]) == EXIT_USER_ERROR
    assert main(["data", "stats", str(tmp_path / "nothing")]) == EXIT_USER_ERROR
    assert "nothing" in capsys.readouterr().err


def test_corpora_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "corpora", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "MISSING" in out and str(tmp_path / "arman" / "ArmanPersoNERCorpus" / "test_fold3.txt") in out
