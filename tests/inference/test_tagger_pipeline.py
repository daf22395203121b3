"""Compatibility: a run directory works in plain ``transformers.pipeline`` and agrees with the Tagger.

The model is fixed (seeded random weights), so both see the same logits; on text without characters the
normaliser would change (no Arabic letters, diacritics, ZWNJ, digits or punctuation attached to words)
both must find exactly the same entities with the same scores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.tagger import build_model_dir

#: Plain Persian words separated by single spaces: nothing for either normaliser to change.
PLAIN_TEXTS = [
    "علی رضایی رئیس دانشگاه تهران روز دوشنبه در مشهد گفت کتاب و دانشجویان اهمیت دارند",
    "سازمان ملل متحد در نیویورک اعلام کرد که کمک به ایران و عراق",
    "شرکت خبرگزاری ایرنا مهر سال کشور شهر مردم دولت وزیر",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("compat") / "run", seed=3)


@pytest.fixture(scope="module")
def hf_pipeline(run_dir: Path):
    from transformers import pipeline

    return pipeline("token-classification", model=str(run_dir), aggregation_strategy="first", device="cpu")


def test_plain_pipeline_loads_the_run_directory(hf_pipeline) -> None:
    out = hf_pipeline("علی رضایی در تهران")
    assert isinstance(out, list)
    for e in out:
        assert e["entity_group"] in {"LOC", "ORG", "PER"}
        assert "علی رضایی در تهران"[e["start"] : e["end"]].strip()


def test_tagger_and_pipeline_find_the_same_entities(run_dir: Path, hf_pipeline) -> None:
    from parsner.inference.tagger import Tagger

    # the pipeline decodes per-word argmax and scores a group by the mean of its words
    tagger = Tagger.from_pretrained(run_dir, device="cpu", constrained=False, score_reduce="mean")
    total = 0
    for text in PLAIN_TEXTS:
        ours = tagger(text)
        theirs = hf_pipeline(text)
        assert [(e["start"], e["end"], e["label"]) for e in ours] == [
            (int(e["start"]), int(e["end"]), e["entity_group"]) for e in theirs
        ]
        assert [e["score"] for e in ours] == pytest.approx([float(e["score"]) for e in theirs], abs=1e-4)
        total += len(ours)
    assert total >= 5  # the comparison is not vacuous

