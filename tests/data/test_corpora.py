"""Corpus recipes: local layouts, ARMAN folds and leakage, Hub conversion; real-corpus counts (shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsner.data.corpora import (
    build_corpus,
    expected_files,
    load_from_hub,
    recipe,
    sentences_from_hub_split,
)
from parsner.data.dataset import load_dataset_dir
from parsner.errors import ConfigError, InputError
from parsner.paths import SAMPLE_DIR


def _write(path: Path, sentences: list[list[tuple[str, str]]], sep: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n\n".join("\n".join(f"{t}{sep}{g}" for t, g in s) for s in sentences)
    path.write_text(body + "\n\n", encoding="utf-8")


def _arman_sentences(fold: int, n: int) -> list[list[tuple[str, str]]]:
    return [[(f"f{fold}s{i}", "O"), ("تهران", "B-loc"), ("0", "O")] for i in range(n)]


@pytest.fixture
def fake_data(tmp_path: Path) -> Path:
    """A data dir with the real layouts (tiny files): PEYMA pipes, ARMAN folds, ParsTwiNER tabs."""
    root = tmp_path / "data"
    peyma = root / "peyma" / "hooshvare_split"
    _write(peyma / "train.txt", [[("بانک", "B_ORG"), ("ملی", "I_ORG"), ("می شود", "O")], [("|", "O")]], "|")
    _write(peyma / "dev.txt", [[("علی", "B_PER")]], "|")
    _write(peyma / "test.txt", [[("۱۴۰۲", "B_DAT"), (".", "O")]], "|")
    arman = root / "arman" / "ArmanPersoNERCorpus"
    test_folds = {k: _arman_sentences(k, 30) for k in (1, 2, 3)}
    for k in (1, 2, 3):
        _write(arman / f"test_fold{k}.txt", test_folds[k], " ")
        others = [s for j in (1, 2, 3) if j != k for s in test_folds[j]]
        _write(arman / f"train_fold{k}.txt", others, " ")
    tw = root / "parstwiner"
    _write(tw / "train.txt", [[("سلام", "O"), ("ایران", "I-LOC")], [("x", "O")]], "\t")
    _write(tw / "dev.txt", [[("y", "B-NAT")]], "\t")
    _write(tw / "test.txt", [[("z", "B-POG")]], "\t")
    return root


def test_unknown_corpus() -> None:
    with pytest.raises(ConfigError, match="unknown corpus 'conll2003'"):
        recipe("conll2003")


def test_missing_file_names_it_and_how_to_point(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        recipe("peyma", data_dir=tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "peyma" / "hooshvare_split" / "train.txt") in msg
    assert "--data-dir" in msg and "PARSNER_SHARED" in msg and "--from-hub" in msg


def test_peyma_recipe_builds_with_its_quirks(fake_data: Path, tmp_path: Path) -> None:
    rec = recipe("peyma", data_dir=fake_data)
    assert [p.name for p in rec.inputs] == ["train.txt", "dev.txt", "test.txt"] and rec.format == "peyma"
    report = build_corpus("peyma", tmp_path / "ds", data_dir=fake_data, log=None)
    assert report.splits == {"train": 2, "validation": 1, "test": 1}
    dd = load_dataset_dir(tmp_path / "ds")
    names = dd["train"].features["ner_tags"].feature.names
    assert dd["train"][0]["tokens"] == ["بانک", "ملی", "می شود"]  # a token with a space stays one token
    assert [names[i] for i in dd["train"][0]["ner_tags"]] == ["B-ORG", "I-ORG", "O"]
    assert dd["train"][1]["tokens"] == ["|"]
    assert report.build["card_info"]["license"] == "other"
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert "shahshahani2018peyma" in card


def test_parstwiner_recipe_repairs_orphans(fake_data: Path, tmp_path: Path) -> None:
    report = build_corpus("parstwiner", tmp_path / "ds", data_dir=fake_data, log=None)
    assert report.stats["repaired_total"] == 1
    assert report.label_names == ["O", "B-LOC", "I-LOC", "B-NAT", "I-NAT", "B-POG", "I-POG"]
    with pytest.raises(InputError):
        build_corpus("parstwiner", tmp_path / "strict", data_dir=fake_data, strict=True, log=None)


def test_arman_fold_k(fake_data: Path, tmp_path: Path) -> None:
    rec = recipe("arman", data_dir=fake_data, fold=2)
    assert [p.name for p in rec.inputs] == ["train_fold2.txt", "test_fold2.txt"]
    report = build_corpus("arman", tmp_path / "ds", data_dir=fake_data, fold="2", log=None)
    assert report.splits["train"] + report.splits["validation"] == 60
    assert report.splits["test"] == 30 and report.splits["validation"] > 0
    assert report.label_names == ["O", "B-LOC", "I-LOC"]  # ARMAN's lower-case loc
    assert report.warnings == []
    pair = next(o for o in report.audit["overlap"] if o["reference"] == "train+validation")
    assert pair["sentences"] == 0


def test_arman_default_fold_is_1_and_said(fake_data: Path) -> None:
    rec = recipe("arman", data_dir=fake_data)
    assert rec.fold == "1" and any("fold 1" in n for n in rec.notes)


@pytest.mark.parametrize(("name", "fold"), [("arman", "4"), ("arman", "x"), ("peyma", "1"), ("sample", 2)])
def test_bad_folds(name: str, fold: str | int) -> None:
    with pytest.raises(ConfigError, match="fold"):
        recipe(name, fold=fold)


def test_arman_union_refused_then_flagged(fake_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="100% leaked"):
        recipe("arman", data_dir=fake_data, fold="all")
    report = build_corpus(
        "arman", tmp_path / "ds", data_dir=fake_data, fold="all", allow_leakage=True, log=None
    )
    assert report.splits["test"] == 90
    pair = next(o for o in report.audit["overlap"] if o["reference"] == "train+validation")
    assert pair["sentences"] == 90 and pair["percent"] == 100.0
    assert any("100% leaked" in w for w in report.warnings)
    assert any("LEAKED BY CONSTRUCTION" in w for w in report.warnings)
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert "LEAKED BY CONSTRUCTION" in card and "100% leaked" in card


def test_expected_files_for_union() -> None:
    files = expected_files("arman", "/d", "all")
    assert [f.name for f in files] == [f"{k}_fold{i}.txt" for k in ("train", "test") for i in (1, 2, 3)]


def test_sample_recipe() -> None:
    if not (SAMPLE_DIR / "sample.jsonl").is_file():
        pytest.skip("embedded sample not written yet")
    rec = recipe("sample")
    assert rec.splits_file == SAMPLE_DIR / "splits.json" and rec.format == "jsonl"


# ------------------------------------------------------------------------------------------ hub


def test_hub_rows_are_normalised_and_repaired() -> None:
    names = ["O", "B_ORG", "I_ORG", "I_PER", "B-pers"]
    rows = [
        {"tokens": ["بانک", "ملی", "x"], "ner_tags": [1, 2, 0]},
        {"tokens": ["a", "b"], "ner_tags": [0, 3]},
        {"tokens": ["c"], "ner_tags": [4]},
    ]
    res = sentences_from_hub_split(rows, names, "hub:X/train")
    assert [s.tags for s in res.sentences] == [["B-ORG", "I-ORG", "O"], ["O", "B-PER"], ["B-PER"]]
    assert res.repaired == 1 and res.sentences[2].line == 3
    with pytest.raises(InputError) as exc:
        sentences_from_hub_split(rows, names, "hub:X/train", strict=True)
    assert exc.value.line == 2
    with pytest.raises(InputError, match="bad tag"):
        sentences_from_hub_split([{"tokens": ["a"], "ner_tags": [9]}], names, "hub:X/train")


def test_hub_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="offline"):
        load_from_hub("peyma")
    with pytest.raises(ConfigError, match="no Hub id"):
        load_from_hub("parstwiner")


def test_build_from_hub_with_a_stand_in_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--from-hub end to end, with ``datasets.load_dataset`` answering from memory instead of the network."""
    import datasets

    names = ["O", "B-pers", "I-pers", "B-loc", "I-loc"]
    feats = datasets.Features(
        {
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
        }
    )
    train = {"tokens": [[f"w{i}", "علی"] for i in range(40)], "ner_tags": [[0, 1]] * 40}
    test = {"tokens": [["تهران", "بزرگ"], ["w1", "علی"]], "ner_tags": [[3, 4], [0, 1]]}
    hub = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(train, features=feats),
            "test": datasets.Dataset.from_dict(test, features=feats),
        }
    )
    calls = []

    def fake_load(repo: str, config: str | None = None) -> datasets.DatasetDict:
        calls.append((repo, config))
        return hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    report = build_corpus("arman", tmp_path / "ds", fold=3, from_hub=True, log=None)
    assert calls == [("persian_ner", "fold3")]
    assert report.splits["train"] + report.splits["validation"] == 40 and report.splits["test"] == 2
    assert report.label_names == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert report.stats["splits"]["test"]["entities"] == {"LOC": 1, "PER": 1}
    assert [i["path"] for i in report.build["inputs"]] == ["hub:persian_ner/train", "hub:persian_ner/test"]
    pairs = {(o["reference"], o["evaluated"]): o for o in report.audit["overlap"]}
    assert pairs["train+validation", "test"]["sentences"] == 1


# ------------------------------------------------------------------------------------------ real corpora

PEYMA_TYPES = ("PER", "LOC", "ORG", "DAT", "TIM", "MON", "PCT")
PEYMA_COUNTS = {  # shared/data/peyma/README.md
    "train": (8028, 243_546, (3643, 4996, 5040, 1455, 245, 452, 250)),
    "validation": (925, 26_806, (370, 632, 653, 195, 20, 49, 40)),
    "test": (1026, 32_176, (434, 595, 667, 208, 16, 26, 36)),
}


@pytest.fixture(scope="module")
def peyma_build(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    return build_corpus("peyma", tmp_path_factory.mktemp("peyma") / "ds", data_dir=shared_data, log=None)


@pytest.mark.shared
def test_peyma_counts(peyma_build) -> None:
    st = peyma_build.stats
    for split, (n_sent, n_tok, per_type) in PEYMA_COUNTS.items():
        assert st["splits"][split]["sentences"] == n_sent
        assert st["splits"][split]["tokens"] == n_tok
        assert st["splits"][split]["entities"] == dict(sorted(zip(PEYMA_TYPES, per_type, strict=True)))
    assert st["total"]["tokens"] == 302_528
    assert st["total"]["total_entities"] == 20_022
    assert st["total"]["non_o_tokens"] == 41_148
    assert st["total"]["entities"] == {
        "DAT": 1858,
        "LOC": 6223,
        "MON": 527,
        "ORG": 6360,
        "PCT": 326,
        "PER": 4447,
        "TIM": 281,
    }
    assert peyma_build.stats["repaired_total"] == 0


@pytest.mark.shared
def test_peyma_audit_finds_the_37_test_sentences_in_train(peyma_build) -> None:
    audit = peyma_build.audit
    pairs = {(o["reference"], o["evaluated"]): o for o in audit["overlap"]}
    assert pairs["train", "test"]["sentences"] == 37
    assert pairs["train", "test"]["tags_agree"] == 37
    assert pairs["train", "test"]["max_tokens"] == 9
    assert pairs["train", "validation"]["sentences"] == 20
    assert pairs["validation", "test"]["sentences"] == 20
    assert {s: d["extra_copies"] for s, d in audit["duplicates"].items()} == {
        "train": 325,
        "validation": 17,
        "test": 36,
    }
    assert audit["duplicates"]["train"]["conflicting_taggings"] == 4
    assert audit["warnings"] == []


@pytest.mark.shared
def test_arman_fold1_counts(shared_data: Path, tmp_path: Path) -> None:
    report = build_corpus("arman", tmp_path / "ds", data_dir=shared_data, fold=1, log=None)
    st = report.stats["splits"]
    assert st["train"]["sentences"] + st["validation"]["sentences"] == 5121
    assert st["train"]["tokens"] + st["validation"]["tokens"] == 167_877
    carved = {
        t: st["train"]["entities"][t] + st["validation"]["entities"].get(t, 0)
        for t in st["train"]["entities"]
    }
    assert carved == {"PER": 2165, "ORG": 3067, "LOC": 2266, "FAC": 383, "PRO": 459, "EVE": 403}
    assert 0.05 < st["validation"]["sentences"] / 5121 < 0.15
    assert (st["test"]["sentences"], st["test"]["tokens"], st["test"]["total_entities"]) == (
        2560,
        82_119,
        4327,
    )
    assert st["test"]["entities"] == {
        "PER": 1110,
        "ORG": 1466,
        "LOC": 1142,
        "FAC": 167,
        "PRO": 265,
        "EVE": 177,
    }
    pairs = {(o["reference"], o["evaluated"]): o for o in report.audit["overlap"]}
    assert pairs["train+validation", "test"]["sentences"] == 6  # the README's 6 real duplicates
    assert report.audit["duplicates"]["test"]["extra_copies"] == 2
    assert report.warnings == []


@pytest.mark.shared
def test_parstwiner_counts(shared_data: Path, tmp_path: Path) -> None:
    report = build_corpus("parstwiner", tmp_path / "ds", data_dir=shared_data, log=None)
    st = report.stats["splits"]
    assert [st[s]["sentences"] for s in ("train", "validation", "test")] == [6417, 446, 303]
    assert [st[s]["tokens"] for s in ("train", "validation", "test")] == [207_990, 14_927, 10_000]
    assert st["train"]["entities"] == {
        "EVE": 445,
        "LOC": 4909,
        "NAT": 853,
        "ORG": 2403,
        "PER": 5615,
        "POG": 363,
    }
    assert st["test"]["total_entities"] == 660
    per_file = {Path(i["path"]).name: i["repaired"] for i in report.stats["inputs"]}
    assert per_file == {"train.txt": 14, "dev.txt": 1, "test.txt": 0}
    pairs = {(o["reference"], o["evaluated"]): o for o in report.audit["overlap"]}
    assert pairs["train", "test"]["sentences"] == 1
