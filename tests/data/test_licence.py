"""Licences: the order of restrictiveness, how sources combine, what build.json and the dataset card record, and
the real corpora (PEYMA, ARMAN, ParsTwiNER and a mix of their files; shared)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import parsner
from parsner.atomic import file_sha256
from parsner.cli import main
from parsner.data import licence
from parsner.data.corpora import build_corpus
from parsner.data.dataset import build_dataset
from parsner.data.licence import CORPUS_TERMS, LEVELS, combine, given_terms
from parsner.errors import ConfigError
from parsner.paths import SAMPLE_DIR

PEYMA, ARMAN, TWINER, SAMPLE = (CORPUS_TERMS[k] for k in ("peyma", "arman", "parstwiner", "sample"))


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def write_conll(path: Path, n: int, tag: str = "B-LOC") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"w{path.stem}{i} O\nتهران {tag}\n\n" for i in range(n)), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ the rule


def test_the_order_of_restrictiveness() -> None:
    rank = LEVELS.index
    assert rank("permissive") < rank("research-only") < rank("academic-only") < rank("unknown")
    assert rank("permissive") < rank("share-alike") < rank("non-commercial") < rank("research-only")
    assert LEVELS[-1] == "unknown"  # nothing is more restrictive than terms nobody stated
    assert all(level in LEVELS for _, level in licence.HUB_LICENSES.values())
    assert {t.level for t in CORPUS_TERMS.values()} == {"permissive", "research-only", "academic-only"}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([TWINER], {"license": "mit", "level": "permissive"}),
        ([SAMPLE], {"license": "mit", "level": "permissive"}),
        ([PEYMA], {"license": "other", "license_name": "peyma-research-use", "level": "research-only"}),
        ([ARMAN], {"license": "other", "license_name": "arman-academic-research-only", "level": "academic-only"}),
        ([TWINER, PEYMA], {"license": "other", "license_name": "peyma-research-use", "level": "research-only"}),
        ([PEYMA, ARMAN, TWINER], {"license": "other", "license_name": "arman-academic-research-only"}),
        ([ARMAN, licence.USER_FILES], {"license": "other", "license_name": "unknown", "level": "unknown"}),
        ([], {"license": "other", "license_name": "unknown", "level": "unknown"}),
    ],
)
def test_the_most_restrictive_licence_wins(parts: list, expected: dict) -> None:
    record = combine(parts)
    assert {k: record.get(k) for k in expected} == expected
    if record["license"] != "other":
        assert "license_name" not in record and "license_link" not in record  # the Hub asks for them with other


def test_a_mix_names_every_source_once_and_a_tie_keeps_the_first() -> None:
    record = combine([PEYMA, TWINER, PEYMA])
    assert [s["name"] for s in record["sources"]] == ["PEYMA", "ParsTwiNER"]
    research = given_terms("research-only")
    tie = combine([research, PEYMA])
    assert tie["license_name"] == "research-only" and len(tie["sources"]) == 2
    text = "\n".join(licence.card_lines(record, "the data this model was trained on"))
    assert "most restrictive" in text and "free for research purposes" in text and "MIT" in text
    assert "arXiv:1801.09936" in text and "overfit-ir/parstwiner" in text and "Research use only" in text


def test_given_licences_and_their_errors() -> None:
    assert (given_terms("MIT").license, given_terms("MIT").level) == ("mit", "permissive")
    nc = given_terms("cc-by-nc-4.0")
    assert (nc.license, nc.level) == ("cc-by-nc-4.0", "non-commercial")
    academic = given_terms("academic-only")
    assert (academic.license, academic.license_name, academic.level) == ("other", "academic-only", "academic-only")
    with pytest.raises(ConfigError, match=r"--license 'wtfpl': not a licence ParsNER can rank"):
        given_terms("wtfpl")


def test_records_read_back_and_malformed_ones_read_as_unknown(tmp_path: Path) -> None:
    record = combine([PEYMA, TWINER])
    assert licence.sources(json.loads(json.dumps(record)), "x", "why") == [PEYMA, TWINER]
    assert licence.sources(None, "the teacher", "licence unknown: none") == [
        licence.unknown_terms("the teacher", "licence unknown: none")]
    odd = licence.sources({"sources": [{"name": "n", "license": "mit", "level": "lenient", "terms": "t",
                                        "source": ""}, {"terms": 3}]}, "x", "why")
    assert [t.level for t in odd] == ["unknown", "unknown"]
    # a base model records its licence only when ParsNER made it
    assert licence.base_model_terms("HooshvareLab/bert-fa-base-uncased") == []
    (tmp_path / "parsner.json").write_text(json.dumps({"license": combine([ARMAN])}), encoding="utf-8")
    assert licence.base_model_terms(tmp_path) == [ARMAN]


def test_known_files_are_recognised_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write_conll(tmp_path / "train.txt", 2)
    assert licence.file_terms(f, file_sha256(f)) is None
    monkeypatch.setitem(licence.KNOWN_FILES, file_sha256(f), "peyma")
    assert licence.file_terms(f, file_sha256(f)) == PEYMA
    assert licence.file_terms(SAMPLE_DIR / "sample.jsonl", None) == SAMPLE
    text = tmp_path / "news.txt"
    text.write_text("یک جمله.\n", encoding="utf-8")
    got = licence.text_terms([{"path": str(f), "sha256": file_sha256(f)}, {"path": str(text), "sha256": "0"}])
    assert got[0] == PEYMA and got[1].level == "unknown" and "the text was given by the user" in got[1].terms


# ------------------------------------------------------------------------------------------ builds


def test_user_files_have_an_unknown_licence_unless_given(tmp_path: Path) -> None:
    files = [write_conll(tmp_path / "in" / f"{s}.txt", 3) for s in ("train", "dev", "test")]
    report = build_dataset(files, tmp_path / "ds", log=None)
    rec = report.build["license"]
    assert (rec["license"], rec["license_name"], rec["level"]) == ("other", "unknown", "unknown")
    assert rec["sources"][0]["terms"] == "licence unknown: the annotated files were given by the user"
    assert rec["sources"][0]["inputs"] == [str(f) for f in files]
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert (front_matter(card)["license"], front_matter(card)["license_name"]) == ("other", "unknown")
    assert "licence unknown: the annotated files were given by the user" in card

    given = parsner.build_dataset(files, out=tmp_path / "given", license="cc-by-4.0", log=lambda _m: None)
    assert given.build["license"]["license"] == "cc-by-4.0" and given.build["options"] is not None
    fm = front_matter((tmp_path / "given" / "README.md").read_text(encoding="utf-8"))
    assert fm["license"] == "cc-by-4.0" and "license_name" not in fm


def test_a_mix_of_known_and_user_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files recognised as PEYMA keep PEYMA's terms whatever --license says; the rest take the given licence."""
    peyma = [write_conll(tmp_path / "peyma" / f"{s}.txt", 3) for s in ("train", "dev", "test")]
    for f in peyma:
        monkeypatch.setitem(licence.KNOWN_FILES, file_sha256(f), "peyma")
    mine = write_conll(tmp_path / "mine" / "train.txt", 4, tag="B-PER")
    report = build_dataset([*peyma, mine], tmp_path / "ds", license="mit", log=None)
    rec = report.build["license"]
    assert (rec["license"], rec["license_name"]) == ("other", "peyma-research-use")
    assert [(s["name"], s["license"], len(s["inputs"])) for s in rec["sources"]] == [
        ("PEYMA", "other", 3), ("the annotated files given by the user", "mit", 1)]
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    fm = front_matter(card)
    assert (fm["license"], fm["license_name"], fm["license_link"]) == (
        "other", "peyma-research-use", "https://arxiv.org/abs/1801.09936")
    assert "## Licence and citation" in card and "**PEYMA** (research-only)" in card
    assert "(`--license mit`)" in card and "A model trained on this dataset carries the same licence" in card


def test_license_errors_name_the_parameter_or_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_conll(tmp_path / "a.txt", 3)
    with pytest.raises(ConfigError, match=r"^`license` 'nope': not a licence"):
        parsner.build_dataset([f], out=tmp_path / "d", license="nope")
    with pytest.raises(ConfigError, match=r"`license` applies to annotated `inputs`; a `corpus` has its own"):
        parsner.build_dataset(corpus="sample", out=tmp_path / "d", license="mit")
    assert not (tmp_path / "d").exists()
    assert main(["data", "build", str(f), "--license", "nope", "--out", str(tmp_path / "d")]) == 2
    assert "--license 'nope': not a licence" in capsys.readouterr().err
    assert main(["data", "build", "--corpus", "sample", "--license", "mit", "--out", str(tmp_path / "d")]) == 2
    assert "--license applies to INPUT files" in capsys.readouterr().err
    assert main(["data", "build", str(f), "--license", "research-only", "--out", str(tmp_path / "d"), "-q"]) == 0
    build = json.loads((tmp_path / "d" / "build.json").read_text(encoding="utf-8"))
    assert "--license research-only" in build["command"]
    assert (build["license"]["license_name"], build["license"]["level"]) == ("research-only", "research-only")


def test_the_embedded_sample_is_mit(tmp_path: Path) -> None:
    report = build_corpus("sample", tmp_path / "ds", log=None)
    assert report.build["license"]["license"] == "mit"
    assert report.build["license"]["sources"][0]["corpus"] == "sample"
    assert front_matter((tmp_path / "ds" / "README.md").read_text(encoding="utf-8"))["license"] == "mit"


# ------------------------------------------------------------------------------------------ real corpora

REAL = {  # corpus -> (license, license_name, words the card must say)
    "peyma": ("other", "peyma-research-use", "free for research purposes"),
    "arman": ("other", "arman-academic-research-only", "academic research use only"),
    "parstwiner": ("mit", None, "overfit-ir/parstwiner"),
}


def check_model_card(data: Path, expected: tuple[str, str | None, str], names: list[str]) -> None:
    """A model card rendered for a run over ``data`` carries the dataset's licence and says why."""
    from parsner.training.config import RunConfig
    from parsner.training.model_card import render_model_card

    meta = {"labels": ["O", "B-PER", "I-PER"], "base_model": "tiny", "max_length": 64, "stride": 16,
            "license": combine(licence.dataset_terms(data))}
    card = render_model_card(cfg=RunConfig(run_name="run", data=str(data), model="tiny"), meta=meta,
                             metrics={"metrics": {"f1_strict": 0.5}}, dataset_name=data.name)
    fm = front_matter(card)
    assert (fm["license"], fm.get("license_name")) == expected[:2]
    section = card.split("## Licence\n")[1]
    assert expected[2] in section and all(f"**{n}**" in section for n in names)
    assert "licensed for research use" not in card


@pytest.mark.shared
@pytest.mark.parametrize("corpus", sorted(REAL))
def test_real_corpus_licence(corpus: str, shared_data: Path, tmp_path: Path) -> None:
    fold = "1" if corpus == "arman" else None
    report = build_corpus(corpus, tmp_path / corpus, data_dir=shared_data, fold=fold, log=None)
    build = json.loads((tmp_path / corpus / "build.json").read_text(encoding="utf-8"))
    assert build["license"] == report.build["license"]
    want = REAL[corpus]
    assert (build["license"]["license"], build["license"].get("license_name")) == want[:2]
    (src,) = build["license"]["sources"]
    assert src["corpus"] == corpus and want[2] in src["terms"] + src["source"]
    assert sorted(src["inputs"]) == sorted(i["path"] for i in build["inputs"])
    card = (tmp_path / corpus / "README.md").read_text(encoding="utf-8")
    fm = front_matter(card)
    assert (fm["license"], fm.get("license_name")) == want[:2]
    assert ("license_link" in fm) == (want[0] == "other")
    check_model_card(tmp_path / corpus, want, [CORPUS_TERMS[corpus].name])


@pytest.mark.shared
def test_real_mix_of_peyma_and_parstwiner_files(shared_data: Path, tmp_path: Path) -> None:
    """Files, not --corpus: recognised by their content, each keeps its terms, PEYMA's research-only wins."""
    files = [shared_data / c / f"{s}.txt" for c in ("peyma/hooshvare_split", "parstwiner")
             for s in ("train", "dev", "test")]
    report = parsner.build_dataset(files, out=tmp_path / "mix", log=lambda _m: None)
    rec = report.build["license"]
    assert [(s["corpus"], len(s["inputs"])) for s in rec["sources"]] == [("peyma", 3), ("parstwiner", 3)]
    assert (rec["license"], rec["license_name"], rec["level"]) == ("other", "peyma-research-use", "research-only")
    fm = front_matter((tmp_path / "mix" / "README.md").read_text(encoding="utf-8"))
    assert (fm["license"], fm["license_name"]) == ("other", "peyma-research-use")
    check_model_card(tmp_path / "mix", ("other", "peyma-research-use", "most restrictive"), ["PEYMA", "ParsTwiNER"])
