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
    canonical_tag,
    first_invalid_transition,
    label_list,
    load_label_map,
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
    assert canonical_tag(raw) == expected


@pytest.mark.parametrize("raw", ["", "X", "PER", "B-", "B_", "B-PER-X", "BPER", "B-پرس", "I- "])
def test_normalize_tag_refuses_garbage(raw: str) -> None:
    with pytest.raises(TagError):
        canonical_tag(raw)


@pytest.mark.parametrize("raw", ["E-PER", "S-LOC", "L-ORG", "U-PER"])
def test_normalize_tag_refuses_iobes(raw: str) -> None:
    with pytest.raises(TagError, match="only IOB"):
        canonical_tag(raw)


def test_normalize_tag_applies_label_map() -> None:
    lmap = {"FAC": "LOC", "EVE": "O"}
    assert canonical_tag("B-fac", lmap) == "B-LOC"
    assert canonical_tag("I-fac", lmap) == "I-LOC"
    assert canonical_tag("B-event", lmap) == "O"
    assert canonical_tag("I-pers", lmap) == "I-PER"


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


# --------------------------------------------------------------------------- model labels


@pytest.mark.parametrize(
    ("raw", "tags", "scheme"),
    [
        (["O", "B_DAT", "I_DAT", "B_MON", "I_PCT"], ["O", "B-DAT", "I-DAT", "B-MON", "I-PCT"], "IOB2"),  # PEYMA v1
        (["B-pers", "I-pers", "B-fac", "I-event", "O"], ["B-PER", "I-PER", "B-FAC", "I-EVE", "O"], "IOB2"),  # ARMAN
        (["B-person", "I-organization", "B-location", "B-facility", "B-product", "B-date", "B-time", "B-money",
          "B-percent", "O"],
         ["B-PER", "I-ORG", "B-LOC", "B-FAC", "B-PRO", "B-DAT", "B-TIM", "B-MON", "B-PCT", "O"], "IOB2"),
        (["O", "S-loc", "B-loc", "I-loc", "E-loc"], ["O", "S-LOC", "B-LOC", "I-LOC", "E-LOC"], "BIOES"),  # DadmaTools
        (["U-PER", "L-PER", "B-PER", "O"], ["S-PER", "E-PER", "B-PER", "O"], "BIOES"),  # BILOU
    ],
)
def test_model_labels_canonicalise_every_published_convention(raw, tags, scheme) -> None:
    from parsner.labels import model_labels

    ml = model_labels(raw)
    assert list(ml.tags) == tags and ml.scheme == scheme
    assert all(t == "O" or t[:2] in ("B-", "I-") for t in ml.iob2)


def test_model_labels_from_a_config_mapping_and_label_maps() -> None:
    from parsner.labels import model_labels

    ml = model_labels({"1": "B-fac", "0": "O", "2": "I-fac"}, {"FAC": "LOC"})
    assert ml.tags == ("O", "B-LOC", "I-LOC") and ml.types == ["LOC"]
    assert model_labels(["O", "B-pro", "I-pro"], {"PRO": "O"}).tags == ("O", "O", "O")
    with pytest.raises(ConfigError, match="--label-map"):
        model_labels(["LABEL_0", "LABEL_1"], model="m")
    assert model_labels(["LABEL_0", "LABEL_1"], {"LABEL_0": "O", "LABEL_1": "B-PER"}).tags == ("O", "B-PER")


def test_label_map_file_checks_its_values(tmp_path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("LABEL_1: b-pers\nfacility: loc\nPRO: O\n", encoding="utf-8")
    assert load_label_map(good) == {"LABEL_1": "B-PER", "FAC": "LOC", "PRO": "O"}
    for i, text in enumerate(["FAC: ''\n", "FAC: B-LOC\n", "LABEL_1: PER\n", "FAC: لوک\n"]):
        bad = tmp_path / f"bad{i}.yaml"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=str(bad.name)):
            load_label_map(bad)


def _decode(labels: list[str], probs: list[list[float]]) -> list[str]:
    import numpy as np

    from parsner.inference.decoding import viterbi_iob2
    from parsner.labels import allowed_transitions

    start, trans, end = allowed_transitions(labels)
    path = viterbi_iob2(np.asarray(probs), start, trans, end)
    return [labels[i] for i in path]


def test_bioes_decoding_never_gives_an_invalid_sequence() -> None:
    from parsner.labels import to_iob2

    labels = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    # argmax: I-LOC E-LOC B-LOC (starts inside, ends open): the best valid path is B-LOC E-LOC S-LOC
    probs = [[0.0, 0.3, 0.6, 0.1, 0.0], [0.1, 0.0, 0.2, 0.7, 0.0], [0.1, 0.5, 0.0, 0.0, 0.4]]
    tags = _decode(labels, probs)
    assert tags == ["B-LOC", "E-LOC", "S-LOC"]
    assert to_iob2(tags) == ["B-LOC", "I-LOC", "B-LOC"]
    assert spans_from_tags(to_iob2(tags)) == [(0, 2, "LOC"), (2, 3, "LOC")]


def test_iob2_rules_are_unchanged_for_an_iob2_label_set() -> None:
    from parsner.labels import allowed_transitions

    start, trans, end = allowed_transitions(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    assert list(start) == [True, True, False, True, False] and end.all()
    assert trans[1, 2] and trans[2, 2] and not trans[3, 2] and not trans[0, 4]
    assert trans[1, 0] and trans[1, 3]  # an entity may end anywhere in IOB2
    assert _decode(["O", "B-PER", "I-PER"], [[0.2, 0.3, 0.5], [0.1, 0.2, 0.7]]) == ["B-PER", "I-PER"]


def test_viterbi_of_many_sentences_equals_one_at_a_time() -> None:
    import numpy as np

    from parsner.inference.decoding import VITERBI_CHUNK_WORDS, viterbi_iob2, viterbi_many
    from parsner.labels import allowed_transitions

    rng = np.random.default_rng(3)
    for labels in (["O", "B-LOC", "I-LOC", "B-PER", "I-PER"], ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]):
        start, trans, end = allowed_transitions(labels)
        # lengths from 1 to beyond one chunk, so chunking and frozen scores past a row's end are exercised
        lengths = [1, 2, 3, 7, 40, 41, 300, VITERBI_CHUNK_WORDS // 50 + 1, 5]
        probs = [rng.dirichlet(np.ones(len(labels)) * 0.3, size=n) for n in lengths]
        together = viterbi_many(probs, start, trans, end)
        for p, path in zip(probs, together, strict=True):
            ref = _viterbi_reference(p, start, trans, end)
            assert path.tolist() == ref
            assert viterbi_iob2(p, start, trans, end).tolist() == ref


def _viterbi_reference(probs, start, trans, end) -> list[int]:
    """Textbook Viterbi over Python floats: the most probable path under the masks."""
    import math

    n, k = probs.shape
    logp = [[math.log(max(float(x), 1e-12)) for x in row] for row in probs]
    score = [logp[0][j] if start[j] else -math.inf for j in range(k)]
    back = []
    for t in range(1, n):
        new, ptr = [], []
        for j in range(k):
            cands = [score[i] + (0.0 if trans[i, j] else -math.inf) for i in range(k)]
            i = max(range(k), key=lambda i: (cands[i], -i))
            ptr.append(i)
            new.append(cands[i] + logp[t][j])
        back.append(ptr)
        score = new
    if any(end[j] and score[j] > -math.inf for j in range(k)):
        score = [s if end[j] else -math.inf for j, s in enumerate(score)]
    path = [max(range(k), key=lambda j: (score[j], -j))]
    for ptr in reversed(back):
        path.append(ptr[path[-1]])
    return path[::-1]
