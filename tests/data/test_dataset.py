"""Dataset build: splits, features, stats, audit, card, atomicity (small inline corpora)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from parsner.data import dataset as ds_mod
from parsner.data.dataset import build_dataset, load_dataset_dir
from parsner.data.datastats import compute_stats, overlap_audit
from parsner.data.records import ReadResult, Sentence
from parsner.data.splits import BLOCK_SIZE, parse_split_ratios, split_from_name
from parsner.errors import ConfigError, InputError, ParsnerError
from parsner.labels import label_list

ZWNJ = "\u200c"


def write_conll(
    path: Path, sentences: list[list[tuple[str, str]]], docstart_every: int | None = None
) -> Path:
    """Write ``TOKEN TAG`` lines; ``docstart_every=k`` puts a ``-DOCSTART-`` line before every k sentences."""
    lines: list[str] = []
    for i, sent in enumerate(sentences):
        if docstart_every and i % docstart_every == 0:
            lines += ["-DOCSTART- O", ""]
        lines += [f"{tok} {tag}" for tok, tag in sent]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TRAIN = [
    [("علی", "B-PER"), ("رضایی", "I-PER"), ("به", "O"), ("تهران", "B-LOC"), ("رفت", "O")],
    [(f"می{ZWNJ}رود", "O"), ("بانک", "B-ORG"), ("ملي", "I-ORG")],  # ZWNJ and an Arabic yeh kept as is
    [("۱۴۰۲", "B-DAT"), ("ساعت", "O"), ("10", "B-TIM")],
    [(".", "O")],
]
DEV = [[("سازمان", "B-ORG"), ("ملل", "I-ORG")], [(".", "O")]]
TEST = [[("مریم", "B-PER"), ("آمد", "O")], [(".", "O")], [("بانک", "B-ORG"), ("ملي", "O")]]


@pytest.fixture
def named_files(tmp_path: Path) -> list[Path]:
    d = tmp_path / "in"
    d.mkdir()
    return [
        write_conll(d / "train.txt", TRAIN),
        write_conll(d / "dev.txt", DEV),
        write_conll(d / "test.txt", TEST),
    ]


def _docs_corpus(n_docs: int = 30, per_doc: int = 3) -> list[list[tuple[str, str]]]:
    """Sentences whose first token names their document: ``d<k>s<j>``."""
    return [[(f"d{k}s{j}", "O"), ("نام", "B-PER")] for k in range(n_docs) for j in range(per_doc)]


# ------------------------------------------------------------------------------------------ names, ratios


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("train.txt", "train"),
        ("dev.txt", "validation"),
        ("valid.conll", "validation"),
        ("validation.jsonl", "validation"),
        ("peyma.test.txt", "test"),
        ("train_fold1.txt", "train"),
        ("test_fold3.txt", "test"),
        ("my-corpus_dev.tsv", "validation"),
        ("contest.txt", None),
        ("sample.jsonl", None),
        ("trainee_notes.txt", None),
    ],
)
def test_split_from_name(name: str, split: str | None) -> None:
    assert split_from_name(name) == split


def test_split_from_name_refuses_two_splits() -> None:
    with pytest.raises(ConfigError, match="more than one split"):
        split_from_name("train_test.txt")


@pytest.mark.parametrize("spec", ["0.8,0.1", "0.5,0.5,0.5", "a,b,c", "0,0.5,0.5", "0.9,-0.1,0.2", "nan,0,1"])
def test_bad_split_ratios(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_split_ratios(spec)


def test_split_ratios_parse() -> None:
    assert parse_split_ratios("0.7,0.2,0.1") == (0.7, 0.2, 0.1)
    assert parse_split_ratios((1, 0, 0)) == (1.0, 0.0, 0.0)


# ------------------------------------------------------------------------------------------ build by name


def test_build_named_splits_features_and_content(named_files: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = build_dataset(named_files, out, log=None)
    assert report.splits == {"train": 4, "validation": 2, "test": 3}
    dd = load_dataset_dir(out)
    assert set(dd) == {"train", "validation", "test"}

    names = label_list(["DAT", "LOC", "ORG", "PER", "TIM"])
    feats = dd["train"].features
    assert feats["ner_tags"].feature.names == names
    assert {k: str(v) for k, v in feats.items()}.keys() == {
        "id",
        "tokens",
        "ner_tags",
        "source",
        "line",
        "doc_id",
        "offsets",
    }
    assert feats["line"].dtype == "int32"

    train = dd["train"]
    # tokens kept exactly (ZWNJ, Arabic yeh, Persian and ASCII digits), tags decode to the source tags
    for row, sent in zip(train, TRAIN, strict=True):
        assert row["tokens"] == [t for t, _ in sent]
        assert [names[i] for i in row["ner_tags"]] == [g for _, g in sent]
        assert row["source"] == str(named_files[0])
        assert row["offsets"] == []
    # 1-based line of the first token: sentence k starts after k earlier sentences and their blank lines
    assert train["line"] == [1, 7, 11, 15]
    ids = [i for split in dd for i in dd[split]["id"]]
    assert len(ids) == len(set(ids)) == 9
    assert dd["test"]["id"] == ["test-0", "test-1", "test-2"]


def test_stats_counts_are_exact(named_files: list[Path], tmp_path: Path) -> None:
    report = build_dataset(named_files, tmp_path / "ds", log=None)
    st = report.stats
    assert st["splits"]["train"]["sentences"] == 4
    assert st["splits"]["train"]["tokens"] == 12
    assert st["splits"]["train"]["entities"] == {"DAT": 1, "LOC": 1, "ORG": 1, "PER": 1, "TIM": 1}
    assert st["splits"]["test"]["entities"] == {"ORG": 1, "PER": 1}
    assert st["total"]["total_entities"] == 5 + 1 + 2
    assert st["total"]["tokens"] == 12 + 3 + 5
    on_disk = json.loads((tmp_path / "ds" / "stats.json").read_text(encoding="utf-8"))
    assert on_disk["splits"] == st["splits"]
    # the same numbers recomputed from the saved dataset
    again = compute_stats(load_dataset_dir(tmp_path / "ds"))
    assert again["splits"]["train"] == {k: v for k, v in st["splits"]["train"].items()}
    assert [i["path"] for i in on_disk["inputs"]] == [str(p) for p in named_files]


def test_repaired_tags_are_reported_per_file(tmp_path: Path) -> None:
    train = write_conll(
        tmp_path / "train.txt", [[("a", "O"), ("b", "I-ORG"), ("c", "I-ORG")], [("d", "I-PER")]]
    )
    test = write_conll(tmp_path / "test.txt", [[("x", "B-ORG")]])
    report = build_dataset([train, test], tmp_path / "ds", split_ratios="0.9,0,0.1", log=None)
    per_file = {Path(i["path"]).name: i["repaired"] for i in report.stats["inputs"]}
    assert per_file == {"train.txt": 2, "test.txt": 0}
    assert report.stats["repaired_total"] == 2
    dd = load_dataset_dir(tmp_path / "ds")
    names = dd["train"].features["ner_tags"].feature.names
    assert [names[i] for i in dd["train"][0]["ner_tags"]] == ["O", "B-ORG", "I-ORG"]
    # validation ratio 0: no validation carved
    assert set(dd) == {"train", "test"}


def test_strict_fails_on_orphan_i(tmp_path: Path) -> None:
    train = write_conll(tmp_path / "train.txt", [[("a", "O"), ("b", "I-ORG")]])
    with pytest.raises(InputError) as exc:
        build_dataset([train], tmp_path / "ds", strict=True, log=None)
    assert exc.value.path == str(train) and exc.value.line == 2
    assert not (tmp_path / "ds").exists()


def test_validation_carved_from_train_by_document(tmp_path: Path) -> None:
    corpus = _docs_corpus(n_docs=40, per_doc=3)
    train = write_conll(tmp_path / "train_fold1.txt", corpus, docstart_every=3)
    test = write_conll(tmp_path / "test_fold1.txt", [[("t", "O")]])
    report = build_dataset([train, test], tmp_path / "ds", seed=7, log=None)
    assert report.splits["train"] + report.splits["validation"] == 120
    assert report.splits["test"] == 1
    assert 6 <= report.splits["validation"] <= 21  # about 10% of train, whole documents
    dd = load_dataset_dir(tmp_path / "ds")
    doc_split: dict[str, set[str]] = {}
    for split in ("train", "validation"):
        for tokens in dd[split]["tokens"]:
            doc_split.setdefault(tokens[0].split("s")[0], set()).add(split)
    assert len(doc_split) == 40 and all(len(v) == 1 for v in doc_split.values())
    assert "validation carved from train" in report.build["split_method"]


# ------------------------------------------------------------------------------------------ seeded split


def _doc_assignment(out: Path) -> dict[str, str]:
    dd = load_dataset_dir(out)
    got: dict[str, str] = {}
    for split in dd:
        for tokens in dd[split]["tokens"]:
            doc = tokens[0].split("s")[0]
            assert got.setdefault(doc, split) == split, f"document {doc} straddles splits"
    return got


def test_seeded_split_is_by_document_and_deterministic(tmp_path: Path) -> None:
    f = write_conll(tmp_path / "corpus.conll", _docs_corpus(n_docs=50, per_doc=3), docstart_every=3)
    a = build_dataset([f], tmp_path / "a", seed=1, log=None)
    b = build_dataset([f], tmp_path / "b", seed=1, log=None)
    c = build_dataset([f], tmp_path / "c", seed=2, log=None)
    assign_a, assign_b, assign_c = (_doc_assignment(tmp_path / x) for x in "abc")
    assert assign_a == assign_b
    assert assign_a != assign_c
    assert set(assign_a.values()) == {"train", "validation", "test"}
    assert a.splits == b.splits
    # whole documents of 3 sentences: split sizes are multiples of 3 and near 80/10/10
    assert all(n % 3 == 0 for n in a.splits.values())
    assert 105 <= a.splits["train"] <= 135 and c.splits["test"] >= 3
    assert "seeded split by document" in a.build["split_method"]


def test_seeded_split_without_documents_uses_sentence_blocks(tmp_path: Path) -> None:
    sents = [Sentence([f"w{i}"], ["O"], "hub:x", i + 1, doc_id="") for i in range(100)]
    result = ReadResult(path="hub:x", format="hub", sentences=sents)
    report = build_dataset([result], tmp_path / "ds", seed=3, log=None)
    assert sum(report.splits.values()) == 100
    dd = load_dataset_dir(tmp_path / "ds")
    for split in dd:  # blocks of consecutive sentences stay together: every block present is complete
        blocks = Counter(int(t[0][1:]) // BLOCK_SIZE for t in dd[split]["tokens"])
        assert set(blocks.values()) == {BLOCK_SIZE}
    assert any("blocks of" in n for n in report.stats["notes"])


def test_mixed_named_and_unnamed_inputs_are_refused(named_files: list[Path], tmp_path: Path) -> None:
    extra = write_conll(tmp_path / "extra.conll", [[("a", "O")]])
    with pytest.raises(ConfigError, match=r"extra\.conll"):
        build_dataset([*named_files, extra], tmp_path / "ds", log=None)


def test_same_file_twice_is_refused(named_files: list[Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="given twice"):
        build_dataset([named_files[0], named_files[0]], tmp_path / "ds", log=None)


# ---------------------------------------------------------------------------------- splits file, spans


def test_splits_file_with_span_jsonl_keeps_offsets(tmp_path: Path) -> None:
    texts = {
        "a1": "علی رضایی به تهران رفت.",
        "a2": "بانک ملی ۱۰ درصد سود داد.",
        "a3": "مریم در ساعت ۱۰ آمد.",
    }
    ents = {
        "a1": [(0, 9, "PER"), (13, 18, "LOC")],
        "a2": [(0, 8, "ORG"), (9, 16, "PCT")],
        "a3": [(0, 4, "PER")],
    }
    src = tmp_path / "news.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {
                    "id": k,
                    "text": t,
                    "entities": [{"start": s, "end": e, "label": lab} for s, e, lab in ents[k]],
                },
                ensure_ascii=False,
            )
            + "\n"
            for k, t in texts.items()
        ),
        encoding="utf-8",
    )
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": ["a1", "a2"], "validation": [], "test": ["a3"]}), encoding="utf-8")
    report = build_dataset([src], tmp_path / "ds", splits_file=splits, log=None)
    assert report.splits == {"train": 2, "test": 1}
    dd = load_dataset_dir(tmp_path / "ds")
    names = dd["train"].features["ner_tags"].feature.names
    for split in dd:
        for row in dd[split]:
            text = texts[row["doc_id"]]
            assert len(row["offsets"]) == len(row["tokens"])
            for tok, (s, e) in zip(row["tokens"], row["offsets"], strict=True):
                assert text[s:e] == tok
    first = dd["train"][0]
    assert [names[i] for i in first["ner_tags"]][:2] == ["B-PER", "I-PER"]
    saved = [
        json.loads(x) for x in (tmp_path / "ds" / "texts.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert {r["doc_id"]: r["text"] for r in saved} == texts


def test_splits_file_must_cover_every_document(tmp_path: Path) -> None:
    src = tmp_path / "news.jsonl"
    src.write_text(
        "".join(json.dumps({"id": k, "text": "متن خبر.", "entities": []}) + "\n" for k in ("a", "b")),
        encoding="utf-8",
    )
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": ["a"]}), encoding="utf-8")
    with pytest.raises(InputError, match="'b' is not listed"):
        build_dataset([src], tmp_path / "ds", splits_file=splits, log=None)
    splits.write_text(json.dumps({"train": ["a", "b", "zz"]}), encoding="utf-8")
    with pytest.raises(InputError, match="zz"):
        build_dataset([src], tmp_path / "ds", splits_file=splits, log=None)
    splits.write_text(json.dumps({"train": ["a"], "test": ["a", "b"]}), encoding="utf-8")
    with pytest.raises(InputError, match="both"):
        build_dataset([src], tmp_path / "ds", splits_file=splits, log=None)
    assert not (tmp_path / "ds").exists()


# ------------------------------------------------------------------------------------------ audit


def test_audit_counts_duplicates_overlap_and_tag_agreement(tmp_path: Path) -> None:
    a = [("بانک", "B-ORG"), ("ملي", "I-ORG")]
    b = [("مریم", "B-PER"), ("آمد", "O")]
    b_other = [("مریم", "O"), ("آمد", "O")]
    train = write_conll(tmp_path / "train.txt", [a, a, b, [("x", "O")]])
    dev = write_conll(tmp_path / "dev.txt", [[("y", "O")]])
    test = write_conll(tmp_path / "test.txt", [a, b_other, [("z", "O")], [("w", "O")]])
    report = build_dataset([train, dev, test], tmp_path / "ds", log=None)
    audit = report.audit
    assert audit["duplicates"]["train"] == {
        "sentences": 4,
        "distinct": 3,
        "extra_copies": 1,
        "conflicting_taggings": 0,
    }
    pair = next(o for o in audit["overlap"] if (o["reference"], o["evaluated"]) == ("train", "test"))
    assert (pair["sentences"], pair["of"], pair["percent"]) == (2, 4, 50.0)
    assert (pair["tags_agree"], pair["tags_differ"], pair["max_tokens"]) == (1, 1, 2)
    assert audit["warnings"] == []  # 50% is not above the threshold
    # the audit of the saved dataset gives the same answer, and audit.json holds it
    assert overlap_audit(load_dataset_dir(tmp_path / "ds")) == audit
    assert json.loads((tmp_path / "ds" / "audit.json").read_text(encoding="utf-8")) == audit


def test_audit_shouts_when_test_is_leaked(tmp_path: Path) -> None:
    sents = [[(f"w{i}", "O"), ("x", "B-LOC")] for i in range(5)]
    train = write_conll(tmp_path / "train.txt", sents)
    test = write_conll(tmp_path / "test.txt", sents[:4])
    report = build_dataset([train, test], tmp_path / "ds", split_ratios="1,0,0", log=None)
    assert any("100% leaked" in w and "4 of 4 test" in w for w in report.warnings)
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert "100% leaked" in card


# ------------------------------------------------------------------------------------------ card, build.json


def test_card_front_matter_and_real_numbers(named_files: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build_dataset(
        named_files,
        out,
        name="tiny news",
        card_info={"license": "mit", "license_note": "Licence: MIT (test)."},
        log=None,
    )
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["language"] == ["fa"]
    assert meta["task_categories"] == ["token-classification"]
    assert meta["task_ids"] == ["named-entity-recognition"]
    assert meta["license"] == "mit"
    assert meta["pretty_name"] == "tiny news"
    splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert splits == {"train": 4, "validation": 2, "test": 3}
    ner = next(f for f in meta["dataset_info"]["features"] if f["name"] == "ner_tags")
    names = list(ner["sequence"]["class_label"]["names"].values())
    assert names == load_dataset_dir(out)["train"].features["ner_tags"].feature.names
    for p in named_files:
        assert hashlib.sha256(p.read_bytes()).hexdigest() in card
    assert "| train | 4 | 12 | 5 |" in card
    assert "| **total** | 9 | 20 | 8 |" in card
    build = json.loads((out / "build.json").read_text(encoding="utf-8"))
    assert build["options"]["seed"] == 42 and build["options"]["split_ratios"] == [0.8, 0.1, 0.1]
    assert [i["sha256"] for i in build["inputs"]] == [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in named_files
    ]


def test_label_map_applies_and_is_recorded(named_files: list[Path], tmp_path: Path) -> None:
    report = build_dataset(named_files, tmp_path / "ds", label_map="core3", log=None)
    assert report.label_names == label_list(["LOC", "ORG", "PER"])
    assert report.stats["splits"]["train"]["entities"] == {"LOC": 1, "ORG": 1, "PER": 1}
    assert report.build["options"]["label_map"] == "core3"
    assert report.build["options"]["label_map_resolved"]["DAT"] == "O"


# ------------------------------------------------------------------------------------------ atomicity


def _leftovers(parent: Path, name: str) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_bad_input_after_good_ones_leaves_nothing(named_files: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "in" / "test.txt"
    bad.write_text("مریم B-PER\nآمد X-WHAT\n\n", encoding="utf-8")
    out = tmp_path / "ds"
    with pytest.raises(InputError) as exc:
        build_dataset(named_files, out, log=None)
    assert exc.value.path == str(bad) and exc.value.line == 2
    assert not out.exists() and _leftovers(tmp_path, "ds") == []


def test_failure_while_writing_leaves_no_dir_and_no_temp(
    named_files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(**_kwargs: object) -> str:
        raise RuntimeError("disk full while writing the card")

    monkeypatch.setattr(ds_mod, "render_dataset_card", boom)
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="disk full"):
        build_dataset(named_files, out, log=None)
    assert not out.exists() and _leftovers(tmp_path, "ds") == []


def test_refuses_to_overwrite_unless_asked(named_files: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build_dataset(named_files, out, log=None)
    before = (out / "build.json").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="already exists"):
        build_dataset(named_files, out, log=None)
    assert (out / "build.json").read_text(encoding="utf-8") == before
    report = build_dataset(named_files, out, overwrite=True, label_map="core3", log=None)
    assert load_dataset_dir(out)["train"].features["ner_tags"].feature.names == report.label_names
    assert _leftovers(tmp_path, "ds") == []


def test_overwrite_never_replaces_a_foreign_folder(named_files: list[Path], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("precious", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a dataset built by parsner"):
        build_dataset(named_files, home, overwrite=True, log=None)
    assert (home / "thesis.tex").read_text(encoding="utf-8") == "precious"


def test_empty_input_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "train.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        build_dataset([empty], tmp_path / "ds", log=None)
    assert exc.value.path == str(empty)
    assert not (tmp_path / "ds").exists()


# ------------------------------------------------------------------------------------------ load


def test_load_dataset_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(ParsnerError, match="no such dataset"):
        load_dataset_dir(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ParsnerError, match="not a dataset folder"):
        load_dataset_dir(tmp_path / "junk")
