"""Splits by folder: a folder named train/dev/valid/validation/test (any case) assigns its files, as names do.

A file is never guessed into a split: names that disagree are an error naming the file, checked before any
input is read; a test file's sentences stay in test; the card and build.json say how each file was assigned.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parsner.cli import main
from parsner.data.dataset import build_dataset, load_dataset_dir
from parsner.data.splits import split_from_path
from parsner.errors import EXIT_USER_ERROR, ConfigError


def _sentences(prefix: str, n: int) -> list[list[tuple[str, str]]]:
    """``n`` sentences whose first token names their file: ``<prefix>s<k>``."""
    return [[(f"{prefix}s{k}", "O"), ("تهران", "B-LOC"), ("رفت", "O")] for k in range(n)]


def write(path: Path, prefix: str, n: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [line for sent in _sentences(prefix, n) for line in [*(f"{t} {g}" for t, g in sent), ""]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def where_each_file_went(out: Path) -> dict[str, set[str]]:
    """The splits holding each file's sentences (by the prefix of their first token)."""
    dd = load_dataset_dir(out)
    got: dict[str, set[str]] = {}
    for split in dd:
        for tokens in dd[split]["tokens"]:
            got.setdefault(tokens[0].rsplit("s", 1)[0], set()).add(split)
    return got


# ------------------------------------------------------------------------------------------ the rule


@pytest.mark.parametrize(
    ("path", "split", "how"),
    [
        ("corpus/train/part1.txt", "train", "folder train/"),
        ("corpus/test/part1.txt", "test", "folder test/"),
        ("corpus/TRAIN/part1.txt", "train", "folder TRAIN/"),
        ("corpus/Test/news/2020/part1.txt", "test", "folder Test/"),
        ("dev/a.conll", "validation", "folder dev/"),
        ("x/Valid/a.conll", "validation", "folder Valid/"),
        ("x/VALIDATION/a.conll", "validation", "folder VALIDATION/"),
        ("x/training/a.conll", "train", "folder training/"),
        ("corpus/train/train.txt", "train", "folder train/ and file name"),
        ("corpus/test_fold1.txt", "test", "file name"),
        ("corpus/train_data/a.txt", None, None),  # only a folder's whole name counts
        ("corpus/contest/a.txt", None, None),
        ("test_folder_split0/a.txt", None, None),  # how pytest names its temporary folders
        ("corpus/part1.txt", None, None),
    ],
)
def test_split_from_path(path: str, split: str | None, how: str | None) -> None:
    assert split_from_path(path) == (split, how)


@pytest.mark.parametrize(
    "path", ["corpus/train/part_test.txt", "test/train/x.txt", "corpus/dev/test.txt", "Test/TRAIN/a/b.txt",
             "corpus/train/train_test.txt"],
)
def test_names_that_disagree_are_an_error_naming_the_file(path: str) -> None:
    with pytest.raises(ConfigError) as info:
        split_from_path(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "different splits" in str(info.value) or "more than one split" in str(info.value)


def test_where_you_run_from_does_not_count(tmp_path: Path, monkeypatch) -> None:
    """Folders above the current one are not the user's naming: a project inside ~/test or ~/dev is common."""
    project = tmp_path / "test" / "dev"
    monkeypatch.chdir(write(project / "corpus" / "a.txt", "a").parent.parent)
    assert split_from_path("corpus/a.txt") == (None, None)
    assert split_from_path(project / "corpus" / "a.txt") == (None, None)
    assert split_from_path(project / "corpus" / "train" / "b.txt") == ("train", "folder train/")


# ------------------------------------------------------------------------------------------ builds


def test_same_file_names_in_train_and_test_folders(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    train = write(tmp_path / "corpus" / "train" / "part1.txt", "tr", 60)
    test = write(tmp_path / "corpus" / "test" / "part1.txt", "te", 20)
    out = tmp_path / "ds"
    report = build_dataset([Path("corpus/train/part1.txt"), Path("corpus/test/part1.txt")], out, log=None)
    assert report.splits["test"] == 20 and report.splits["train"] + report.splits["validation"] == 60
    assert where_each_file_went(out) == {"tr": {"train", "validation"}, "te": {"test"}}
    build = json.loads((out / "build.json").read_text(encoding="utf-8"))
    assert [(i["path"], i["split"], i["split_by"]) for i in build["inputs"]] == [
        ("corpus/train/part1.txt", "train", "folder train/"), ("corpus/test/part1.txt", "test", "folder test/")]
    assert build["split_method"].startswith(
        "folder and file names (corpus/train/part1.txt→train, corpus/test/part1.txt→test)")
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| `corpus/test/part1.txt` | conll | test | folder test/ |" in card
    assert "| `corpus/train/part1.txt` | conll | train | folder train/ |" in card
    assert train.is_file() and test.is_file()


def test_nested_folders_any_case_and_a_dev_folder(tmp_path: Path) -> None:
    files = [
        write(tmp_path / "corpus" / "TRAIN" / "news" / "2020" / "a.txt", "a"),
        write(tmp_path / "corpus" / "Train" / "sport" / "a.txt", "b"),
        write(tmp_path / "corpus" / "Valid" / "news" / "a.txt", "c", 10),
        write(tmp_path / "corpus" / "test" / "news" / "deep" / "a.txt", "d", 10),
    ]
    out = tmp_path / "ds"
    report = build_dataset(files, out, log=None)
    assert report.splits == {"train": 60, "validation": 10, "test": 10}
    assert where_each_file_went(out) == {"a": {"train"}, "b": {"train"}, "c": {"validation"}, "d": {"test"}}


def test_a_test_folder_alone_stays_test(tmp_path: Path) -> None:
    """Even with ratios asking for a train split, a file under test/ is not split up."""
    files = [write(tmp_path / "c" / "test" / "a.txt", "a"), write(tmp_path / "c" / "test" / "b.txt", "b")]
    report = build_dataset(files, tmp_path / "ds", split_ratios="0.8,0.1,0.1", log=None)
    assert report.splits == {"test": 60}


def test_folder_and_file_names_mix(tmp_path: Path) -> None:
    files = [write(tmp_path / "corpus" / "train" / "part1.txt", "a"), write(tmp_path / "corpus" / "test.txt", "b", 10)]
    report = build_dataset(files, tmp_path / "ds", log=None)
    assert report.splits["test"] == 10
    assert [i["split_by"] for i in report.build["inputs"]] == ["folder train/", "file name"]


def test_conflicts_and_unnamed_files_fail_before_anything_is_read(tmp_path: Path) -> None:
    bad = tmp_path / "corpus" / "train" / "part_test.txt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\xff\xfe not even text")  # reading it would fail differently
    with pytest.raises(ConfigError, match=r"part_test\.txt: its folders and file name name different splits"):
        build_dataset([bad], tmp_path / "ds", log=None)
    named = write(tmp_path / "corpus" / "test" / "a.txt", "a")
    loose = tmp_path / "corpus" / "extra.txt"
    loose.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"some inputs name their split and some do not \(.*extra\.txt\)"):
        build_dataset([named, loose], tmp_path / "ds", log=None)
    assert not (tmp_path / "ds").exists()


def test_unnamed_folders_get_the_seeded_split(tmp_path: Path) -> None:
    files = [write(tmp_path / "corpus" / "train_data" / "a.txt", "a"),
             write(tmp_path / "corpus" / "other" / "b.txt", "b")]
    report = build_dataset(files, tmp_path / "ds", log=None)
    assert "seeded split by document" in report.build["split_method"]
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert "| (seeded) | seeded split by document |" in card


def test_a_splits_file_wins_over_folder_names(tmp_path: Path) -> None:
    src = tmp_path / "corpus" / "test" / "train" / "news.jsonl"  # conflicting folders: the splits file decides
    src.parent.mkdir(parents=True)
    src.write_text("".join(json.dumps({"id": k, "text": "علی به تهران رفت.", "entities": []}) + "\n"
                           for k in ("a", "b")), encoding="utf-8")
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": ["a"], "test": ["b"]}), encoding="utf-8")
    report = build_dataset([src], tmp_path / "ds", splits_file=splits, log=None)
    assert report.splits == {"train": 1, "test": 1}
    assert report.build["inputs"][0]["split_by"] is None
    assert f"splits file `{splits}`" in (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")


def test_cli_folder_split_and_conflict(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "corpus" / "train" / "part1.txt", "a", 40)
    write(tmp_path / "corpus" / "test" / "part1.txt", "b", 10)
    assert main(["data", "build", "corpus/train/part1.txt", "corpus/test/part1.txt", "--out", "ds"]) == 0
    assert "folder and file names (corpus/train/part1.txt→train" in capsys.readouterr().err
    write(tmp_path / "corpus" / "test" / "train" / "x.txt", "c")
    code = main(["data", "build", "corpus/train/part1.txt", "corpus/test/train/x.txt", "--out", "ds2"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "Traceback" not in err
    assert "corpus/test/train/x.txt: its folders and file name name different splits (folder test/ → test; " \
           "folder train/ → train)" in err
    assert not (tmp_path / "ds2").exists()
