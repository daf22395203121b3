"""Tag normalisation, IOB2 validation/repair, spans and label maps (parsner.labels)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsner.errors import ConfigError
from parsner.labels import (
    LABEL_MAP_PRESETS,
    TagError,
    first_invalid_transition,
    label_list,
    load_label_map,
    normalize_tag,
    repair_iob2,
    spans_from_tags,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("O", "O"),
        ("o", "O"),
        (" O ", "O"),
        ("B_ORG", "B-ORG"),  # PEYMA
        ("I_PCT", "I-PCT"),
        ("B-pers", "B-PER"),  # ARMAN
        ("I-event", "I-EVE"),
        ("b-org", "B-ORG"),
        ("B-Person", "B-PER"),
        ("B-POG", "B-POG"),  # ParsTwiNER
        ("I-NAT", "I-NAT"),
        ("B-GPE", "B-GPE"),  # an unknown but well-formed type passes without a label map
    ],
)
def test_normalize_tag(raw: str, expected: str) -> None:
    assert normalize_tag(raw) == expected


@pytest.mark.parametrize("raw", ["", "X", "PER", "B-", "B_", "B-PER-X", "BPER", "B-پرس", "I- "])
def test_normalize_tag_refuses_garbage(raw: str) -> None:
    with pytest.raises(TagError):
        normalize_tag(raw)


@pytest.mark.parametrize("raw", ["E-PER", "S-LOC", "L-ORG", "U-PER"])
def test_normalize_tag_refuses_iobes(raw: str) -> None:
    with pytest.raises(TagError, match="only IOB"):
        normalize_tag(raw)


def test_normalize_tag_applies_label_map() -> None:
    lmap = {"FAC": "LOC", "EVE": "O"}
    assert normalize_tag("B-fac", lmap) == "B-LOC"
    assert normalize_tag("I-fac", lmap) == "I-LOC"
    assert normalize_tag("B-event", lmap) == "O"
    assert normalize_tag("I-pers", lmap) == "I-PER"


def test_first_invalid_transition() -> None:
    assert first_invalid_transition(["B-PER", "I-PER", "O", "B-LOC"]) is None
    assert first_invalid_transition(["I-PER"]) == 0
    assert first_invalid_transition(["O", "B-ORG", "I-LOC"]) == 2
    assert first_invalid_transition(["B-ORG", "I-ORG", "O", "I-ORG"]) == 3


def test_repair_iob2_counts_and_fixes() -> None:
    tags, n = repair_iob2(["I-ORG", "I-ORG", "O", "B-PER", "I-LOC", "I-LOC"])
    assert tags == ["B-ORG", "I-ORG", "O", "B-PER", "B-LOC", "I-LOC"]
    assert n == 2


def test_spans_from_tags() -> None:
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "I-ORG", "O"]
    assert spans_from_tags(tags) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC"), (6, 7, "ORG")]
    assert spans_from_tags([]) == []
    assert spans_from_tags(["I-PER", "I-PER"]) == [(0, 2, "PER")]


def test_label_list_order() -> None:
    assert label_list({"PER", "LOC", "DAT"}) == ["O", "B-DAT", "I-DAT", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert label_list([]) == ["O"]


def test_load_label_map_preset_and_files(tmp_path) -> None:
    assert load_label_map(None) is None
    assert load_label_map("core3") == LABEL_MAP_PRESETS["core3"]
    assert load_label_map("core3") is not LABEL_MAP_PRESETS["core3"]  # a copy: callers may not alter presets
    y = tmp_path / "m.yaml"
    y.write_text("fac: loc\nevent: o\npers: PER\n", encoding="utf-8")
    assert load_label_map(y) == {"FAC": "LOC", "EVE": "O", "PER": "PER"}
    j = tmp_path / "m.json"
    j.write_text(json.dumps({"POG": "org"}), encoding="utf-8")
    assert load_label_map(j) == {"POG": "ORG"}


def test_load_label_map_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="neither a preset"):
        load_label_map(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_label_map(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_label_map(broken)


_TAGS = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"])


@given(st.lists(_TAGS, max_size=30))
def test_repair_property(tags: list[str]) -> None:
    fixed, n = repair_iob2(tags)
    assert first_invalid_transition(fixed) is None
    assert n == sum(a != b for a, b in zip(tags, fixed, strict=True))
    assert all(a == b or (a.startswith("I-") and b == "B-" + a[2:]) for a, b in zip(tags, fixed, strict=True))
    assert repair_iob2(fixed) == (fixed, 0)
    # repairing never changes the entities that conlleval/seqeval's default mode sees
    assert spans_from_tags(fixed) == spans_from_tags(tags)
    assert (n == 0) == (first_invalid_transition(tags) is None)
