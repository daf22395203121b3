"""The embedded sample corpus (data/sample): markup ↔ JSONL, annotation sanity, coverage, splits."""

from __future__ import annotations

import importlib.util
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from parsner.paths import REPO_ROOT

TYPES = ("PER", "LOC", "ORG", "DAT", "TIM", "MON", "PCT")
MIN_PER_TYPE = {"PER": 25, "LOC": 25, "ORG": 25, "DAT": 8, "TIM": 8, "MON": 8, "PCT": 8}
ZWNJ = "\u200c"
PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
ARABIC_INDIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"


@pytest.fixture(scope="module")
def build(sample_dir: Path) -> ModuleType:
    """``data/sample/build_sample.py`` imported as a module (it is a script, not part of the package)."""
    path = sample_dir / "build_sample.py"
    spec = importlib.util.spec_from_file_location("parsner_build_sample", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def records(sample_dir: Path) -> list[dict]:
    lines = (sample_dir / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def splits(sample_dir: Path) -> dict[str, list[str]]:
    return json.loads((sample_dir / "splits.json").read_text(encoding="utf-8"))


def _entities(records: list[dict]) -> list[tuple[dict, dict]]:
    return [(r, e) for r in records for e in r["entities"]]


# --- the JSONL is what the markup says ---------------------------------------------------------------


def test_jsonl_is_up_to_date_with_markup(build: ModuleType, sample_dir: Path) -> None:
    regenerated = build.parse_articles((sample_dir / "articles.txt").read_text(encoding="utf-8"))
    on_disk = (sample_dir / "sample.jsonl").read_text(encoding="utf-8")
    assert build.to_jsonl(regenerated) == on_disk, "run: python data/sample/build_sample.py"
    assert build.main(["--check"]) == 0


def test_offsets_match_markup_surfaces(records: list[dict], sample_dir: Path) -> None:
    """Independent of the converter: the bracketed surfaces, in order, equal text[start:end] of the JSONL."""
    markup = (sample_dir / "articles.txt").read_text(encoding="utf-8")
    surfaces = [
        (m.group(1), m.group(2))
        for line in markup.splitlines()
        if not line.startswith("#")
        for m in re.finditer(r"\[([^\[\]]+)\]\(([A-Z]+)\)", line)
    ]
    from_jsonl = [(r["text"][e["start"] : e["end"]], e["label"]) for r, e in _entities(records)]
    assert from_jsonl == surfaces
    # no markup left in the text itself
    for r in records:
        assert "[" not in r["text"] and "](" not in r["text"], r["id"]


def test_record_shape_and_unique_ids(records: list[dict]) -> None:
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    for r in records:
        assert set(r) == {"id", "text", "entities"}
        assert r["text"] == r["text"].strip() and r["text"]
        for e in r["entities"]:
            assert set(e) == {"start", "end", "label"}
            assert isinstance(e["start"], int) and isinstance(e["end"], int)
            assert e["label"] in TYPES


def test_spans_are_well_formed(records: list[dict]) -> None:
    for r in records:
        text = r["text"]
        prev_end = 0
        for e in r["entities"]:
            s, t = e["start"], e["end"]
            where = f"{r['id']}: {text[s:t]!r} at {s}"
            assert 0 <= s < t <= len(text), where
            assert s >= prev_end, f"overlapping or unsorted span {where}"
            prev_end = t
            surface = text[s:t]
            assert surface == surface.strip(), f"span starts/ends with whitespace: {where}"
            assert "\n" not in surface, where
            # on word boundaries: the characters just outside the span are not part of a word
            for ch in (text[s - 1 : s], text[t : t + 1]):
                assert not ch or not (ch.isalnum() or ch == ZWNJ or unicodedata.category(ch) == "Mn"), where


# --- size and coverage -------------------------------------------------------------------------------


def test_size_and_type_minimums(build: ModuleType, records: list[dict]) -> None:
    assert len(records) >= 18
    sentences = sum(build.sentence_count(r["text"]) for r in records)
    assert sentences - len(records) >= 130, "at least 130 sentences besides the headlines"
    counts = Counter(e["label"] for _, e in _entities(records))
    for t, minimum in MIN_PER_TYPE.items():
        assert counts[t] >= minimum, f"{t}: {counts[t]} < {minimum}"
    assert set(counts) == set(TYPES)


def test_persian_phenomena_present(records: list[dict]) -> None:
    texts = [r["text"] for r in records]
    joined = "\n".join(texts)
    zwnj_words = {w for w in re.split(r"[\s«»،؛؟.:!()]+", joined) if ZWNJ in w}
    assert len(zwnj_words) >= 40, f"only {len(zwnj_words)} distinct words with ZWNJ"
    arabic_letter_articles = [r["id"] for r in records if "ي" in r["text"] and "ك" in r["text"]]
    assert len(arabic_letter_articles) >= 3, arabic_letter_articles
    # Arabic-keyboard articles are not sprinkled with Persian letters of the same kind
    for r in records:
        if r["id"] in arabic_letter_articles:
            assert "ی" not in r["text"] and "ک" not in r["text"], r["id"]
    assert any(c in joined for c in PERSIAN_DIGITS)
    assert re.search(r"[0-9]", joined)
    assert any(c in joined for c in ARABIC_INDIC_DIGITS)
    for ch in "«»،؛؟":
        assert ch in joined, f"punctuation {ch!r} missing"
    assert any(unicodedata.category(c) == "Mn" for c in joined), "no diacritics"
    assert re.search(r"[A-Za-z]", joined)


def test_entity_phenomena_present(records: list[dict]) -> None:
    pairs = [(r["text"], e) for r, e in _entities(records)]
    surfaces = [(t[e["start"] : e["end"]], e["label"]) for t, e in pairs]
    for label in ("PER", "LOC", "ORG", "DAT", "MON"):
        assert any(" " in s for s, lab in surfaces if lab == label), f"no multi-word {label}"
    assert any(re.fullmatch(r"[A-Za-z]+", s) for s, _ in surfaces), "no Latin-script entity"
    assert any(ZWNJ in s for s, _ in surfaces), "no entity containing ZWNJ"
    assert any(("ي" in s or "ك" in s) for s, _ in surfaces), "no entity with Arabic letters"
    assert any(any(c in PERSIAN_DIGITS for c in s) for s, lab in surfaces if lab in ("DAT", "MON", "PCT"))
    assert any(re.search(r"[0-9]", s) for s, lab in surfaces if lab in ("DAT", "MON", "PCT"))
    punct = set("،؛:«»()")
    before = any(t[e["start"] - 1 : e["start"]] in punct for t, e in pairs)
    after = any(t[e["end"] : e["end"] + 1] in punct for t, e in pairs)
    assert before and after, "entities adjacent to punctuation"


def test_numeric_types_follow_the_guidelines(records: list[dict]) -> None:
    """PCT spans end in درصد(ی) and MON spans in a currency, as in PEYMA."""
    for r, e in _entities(records):
        s = r["text"][e["start"] : e["end"]]
        if e["label"] == "PCT":
            assert re.search(r"درصدی?$", s), s
        if e["label"] == "MON":
            assert re.search(r"(ریال|ريال|تومان|تومانی|دلار|یورو)$", s), s


# --- splits -----------------------------------------------------------------------------------------


def test_splits_cover_every_article_once(records: list[dict], splits: dict[str, list[str]]) -> None:
    assert set(splits) == {"train", "validation", "test"}
    listed = [i for ids in splits.values() for i in ids]
    assert Counter(listed).most_common(1)[0][1] == 1, "an article is listed twice"
    assert sorted(listed) == sorted(r["id"] for r in records)
    assert all(splits[name] for name in splits)


def test_test_and_validation_splits_contain_every_type(records: list[dict], splits: dict) -> None:
    by_id = {r["id"]: r for r in records}
    for name in ("test", "validation"):
        types = {e["label"] for i in splits[name] for e in by_id[i]["entities"]}
        assert types == set(TYPES), f"{name} lacks {set(TYPES) - types}"


def test_readme_counts_table_is_current(build: ModuleType, records: list[dict], splits: dict) -> None:
    readme = (REPO_ROOT / "data" / "README.md").read_text(encoding="utf-8")
    table = build.stats_table(records, splits)
    assert table in readme, "data/README.md counts are stale: python data/sample/build_sample.py --stats"


def test_sample_reads_through_the_project_reader(sample_dir: Path, records: list[dict]) -> None:
    """Every span survives word tokenisation: the reader reports nothing split, merged or repaired."""
    from parsner.data.readers import read_file

    result = read_file(sample_dir / "sample.jsonl")
    assert result.notes == [] and result.repaired == 0
    b_tags = Counter(t[2:] for s in result.sentences for t in s.tags if t.startswith("B-"))
    assert b_tags == Counter(e["label"] for _, e in _entities(records))
    assert {s.doc_id for s in result.sentences} == {r["id"] for r in records}


# --- the converter ----------------------------------------------------------------------------------


def test_converter_offsets_on_a_small_example(build: ModuleType) -> None:
    markup = (
        "# comment\n"
        "id: a-1\n"
        "# comment inside\n"
        "سلام [مریم احمدی](PER)، از [تهران](LOC).   \n"
        "\n"
        "[امروز](DAT) خوب است.\n"
        "\n---\n\n"
        "id: b\n"
        "بدون موجودیت\n"
    )
    recs = build.parse_articles(markup)
    assert [r["id"] for r in recs] == ["a-1", "b"]
    text = recs[0]["text"]
    assert text == "سلام مریم احمدی، از تهران.\n\nامروز خوب است."
    got = [(text[e["start"] : e["end"]], e["label"]) for e in recs[0]["entities"]]
    assert got == [("مریم احمدی", "PER"), ("تهران", "LOC"), ("امروز", "DAT")]
    assert recs[1] == {"id": "b", "text": "بدون موجودیت", "entities": []}
    assert build.sentence_count(text) == 2
    assert build.sentence_count("«این است.» آن؟ و ۱٫۵ درصد.\nتیتر") == 4


@pytest.mark.parametrize(
    ("markup", "line", "needle"),
    [
        ("id: a\nمتن [تهران](CITY) است\n", 2, "unknown entity type"),
        ("id: a\nمتن [تهران(LOC) است\n", 2, "stray '['"),
        ("id: a\nمتن تهران](LOC) است\n", 2, "stray ']'"),
        ("id: a\nمتن [[تهران](LOC)](LOC)\n", 2, "stray"),
        ("id: a\n[ تهران](LOC)\n", 2, "whitespace"),
        ("id: a\nمتن [](LOC)\n", 2, "empty entity"),
        ("id: a\nمتن [ ](LOC)\n", 2, "empty entity"),
        ("id: a\nمتن\n---\nid: a\nمتن\n", 4, "duplicate article id"),
        ("متن بدون شناسه\n", 1, "must start with 'id:"),
        ("id: Bad_Id\nمتن\n", 1, "bad article id"),
        ("id: a\n\n", 1, "has no text"),
        ("# only a comment\n", 1, "no articles"),
        ("id: a\r\nمتن\r\n", 1, "CR line ending"),
    ],
)
def test_converter_rejects_bad_markup(build: ModuleType, markup: str, line: int, needle: str) -> None:
    with pytest.raises(build.MarkupError) as err:
        build.parse_articles(markup, "x.txt")
    assert err.value.line == line
    assert needle in err.value.message
    assert str(err.value).startswith(f"x.txt:{line}: ")


def test_converter_cli_writes_and_checks(build: ModuleType, sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    assert build.main(["--out", str(out)]) == 0
    assert out.read_bytes() == (sample_dir / "sample.jsonl").read_bytes()
    assert list(tmp_path.iterdir()) == [out], "no temporary file left behind"
    out.write_text(out.read_text(encoding="utf-8").replace("امروز", "فردا", 1), encoding="utf-8")
    assert build.main(["--check", "--out", str(out)]) == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("id: a\n[x](FOO)\n", encoding="utf-8")
    assert build.main(["--articles", str(bad), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert not (tmp_path / "o.jsonl").exists()
