"""Model cards carry the licence of their training data: run, pretrain and distill cards rendered directly, the
student's licence, and (shared) a tiny run trained on a dataset built from PEYMA and ParsTwiNER files."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from parsner.data.licence import CORPUS_TERMS, combine, given_terms, text_terms
from parsner.training.config import RunConfig
from parsner.training.model_card import render_model_card

PEYMA, ARMAN, TWINER = (CORPUS_TERMS[k] for k in ("peyma", "arman", "parstwiner"))
META = {"labels": ["O", "B-PER", "I-PER"], "base_model": "tiny", "max_length": 64, "stride": 16}


def split_card(card: str) -> tuple[dict, str]:
    """(front matter, the licence section)."""
    front = yaml.safe_load(card.split("---\n")[1])
    return front, card.split("\n## Licence\n")[1]


def run_card(record: dict | None) -> str:
    meta = {**META, **({"license": record} if record is not None else {})}
    return render_model_card(cfg=RunConfig(run_name="r", data="runs/data/mix", model="tiny"), meta=meta,
                             metrics={"metrics": {"f1_strict": 0.5}}, dataset_name="mix")


def test_a_run_on_peyma_and_parstwiner_says_which_licence_and_why() -> None:
    card = run_card(combine([PEYMA, TWINER]))
    front, section = split_card(card)
    assert list(front)[:4] == ["language", "license", "license_name", "license_link"]  # the Hub's order
    assert (front["license"], front["license_name"], front["license_link"]) == (
        "other", "peyma-research-use", "https://arxiv.org/abs/1801.09936")
    assert front["pipeline_tag"] == "token-classification" and "model-index" in front  # the rest is unchanged
    assert "most restrictive of the licences of the data this model was trained on" in section
    assert "**PEYMA** (research-only): free for research purposes." in section
    assert "**ParsTwiNER** (permissive): MIT." in section
    assert "Research use only" in section and "not legal advice" in section
    assert "licensed for research use" not in card and "## Limitations" in card


@pytest.mark.parametrize(
    ("parts", "license", "name"),
    [([TWINER], "mit", None), ([ARMAN, PEYMA], "other", "arman-academic-research-only"),
     ([given_terms("cc-by-sa-4.0"), TWINER], "cc-by-sa-4.0", None)],
)
def test_run_cards_carry_the_most_restrictive_licence(parts: list, license: str, name: str | None) -> None:
    front, section = split_card(run_card(combine(parts)))
    assert (front["license"], front.get("license_name")) == (license, name)
    assert all(f"**{t.name}**" in section for t in parts)


def test_a_run_without_a_recorded_licence_is_other_and_unknown() -> None:
    front, section = split_card(run_card(None))
    assert (front["license"], front["license_name"]) == ("other", "unknown")
    assert "licence unknown" in section and "Nobody recorded the terms" in section


def test_pretrain_and_distill_cards_carry_it_too() -> None:
    cfg = SimpleNamespace(model="tiny", whole_word_masking=True, mlm_probability=0.15, normalizer="parsbert",
                          out_dir=Path("models/base"), batch_size=8, learning_rate=1e-3, max_length=64, seed=1)
    info = {"metrics": {}, "text": [{"path": "news.txt", "kind": "text", "sentences": 3, "words": 9}],
            "test_guard": {"guards": [], "overlapping_sentences": 0, "min_words": 6, "mode": "refuse"},
            "global_step": 2, "epochs_trained": 1.0, "train_runtime_s": 1.0}
    unknown_text = combine(text_terms(info["text"]))
    card = render_model_card(cfg=cfg, meta={"stand_in": False, "license": unknown_text}, metrics=info,
                             kind="pretrain")
    front, section = split_card(card)
    assert (front["license"], front["license_name"]) == ("other", "unknown")
    assert "the text this model was trained on" in section and "the text was given by the user" in section

    cfg = SimpleNamespace(temperature=2.0, alpha=0.5, data="runs/data/arman", out_dir=Path("models/student"),
                          batch_size=8, learning_rate=1e-3, seed=1, name="student")
    info = {"labelled_sentences": 4, "unlabelled_sentences": 0, "metrics": {}, "global_step": 2,
            "epochs_trained": 1.0, "train_runtime_s": 1.0}
    meta = {**META, "student": "tiny:2", "distilled_from": "models/teacher", "license": combine([PEYMA, ARMAN])}
    front, section = split_card(render_model_card(cfg=cfg, meta=meta, metrics=info, kind="distill"))
    assert (front["license"], front["license_name"]) == ("other", "arman-academic-research-only")
    assert "the data this model and its teacher were trained on" in section


def test_a_student_carries_its_teachers_licence(tmp_path: Path) -> None:
    from parsner.training.distill import _licence

    data = tmp_path / "data"
    data.mkdir()
    (data / "build.json").write_text(json.dumps({"license": combine([TWINER])}), encoding="utf-8")
    cfg = SimpleNamespace(teacher="models/teacher", data=str(data), student="tiny:2")
    record = _licence(cfg, {"license": combine([PEYMA])}, [])
    assert record["license_name"] == "peyma-research-use"
    assert [s["name"] for s in record["sources"]] == ["PEYMA", "ParsTwiNER"]
    record = _licence(cfg, {}, [])  # a teacher that records nothing: unknown
    assert record["level"] == "unknown" and "the teacher `models/teacher`" in record["sources"][0]["name"]


@pytest.mark.shared
def test_a_tiny_run_trained_on_peyma_and_parstwiner(shared_data: Path, tmp_path: Path) -> None:
    """End to end: build from both corpora's files, train a tiny stand-in for a few steps, read its card."""
    import parsner
    from helpers.train import tiny_config
    from parsner.training.config import load_config
    from parsner.training.train import train

    files = [shared_data / c / f"{s}.txt" for c in ("peyma/hooshvare_split", "parstwiner")
             for s in ("train", "dev", "test")]
    data = parsner.build_dataset(files, out=tmp_path / "mix", log=lambda _m: None).out
    config = tiny_config(tmp_path / "tiny.yaml", data, epochs=1, max_train_samples=16, max_eval_samples=8,
                         out=str(tmp_path / "run"))
    result = train(load_config(config))
    meta = json.loads((result.out_dir / "parsner.json").read_text(encoding="utf-8"))
    assert meta["license"]["license_name"] == "peyma-research-use"
    front, section = split_card((result.out_dir / "README.md").read_text(encoding="utf-8"))
    assert (front["license"], front["license_name"]) == ("other", "peyma-research-use")
    assert "most restrictive" in section and "**PEYMA** (research-only)" in section
    assert "**ParsTwiNER** (permissive)" in section
