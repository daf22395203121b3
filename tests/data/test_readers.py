"""The corpus readers on small inline files with the real corpora's quirks, and on the real corpora."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from parsner.data.readers import detect_format, read_conll, read_doccano, read_file, read_jsonl
from parsner.data.readers.conll import DOC_BLOCK
from parsner.errors import ConfigError, InputError
from parsner.labels import spans_from_tags

ZWNJ = "\u200c"


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def pairs(result) -> list[list[tuple[str, str]]]:
    return [list(zip(s.tokens, s.tags, strict=True)) for s in result.sentences]


# ----------------------------------------------------------------------------------------- PEYMA


PEYMA = (
    "وزیر|O\n"
    "امور خارجه|B_ORG\n"  # tokens contain spaces (ZWNJ was turned into a space)
    "ایران|I_ORG\n"
    "| |O\n"  # the token is "| " (train.txt lines 138715/138739)
    "می شود|O\n"
    "\n"
    "||O\n"  # the token is "|" (dev/test)
    "۱۳۹۹|B_DAT\n"
    "\n"
)


def test_peyma_quirks(tmp_path: Path) -> None:
    path = write(tmp_path / "train.txt", PEYMA)
    r = read_conll(path, "peyma")
    assert r.format == "peyma"
    assert pairs(r) == [
        [("وزیر", "O"), ("امور خارجه", "B-ORG"), ("ایران", "I-ORG"), ("| ", "O"), ("می شود", "O")],
        [("|", "O"), ("۱۳۹۹", "B-DAT")],
    ]
    assert [s.line for s in r.sentences] == [1, 7]
    assert {s.source for s in r.sentences} == {str(path)}
    assert r.repaired == 0
    assert r.tag_counts == Counter({"O": 4, "B-ORG": 1, "I-ORG": 1, "B-DAT": 1})
    assert detect_format(path) == "peyma"
    assert pairs(read_file(path)) == pairs(r)


def test_peyma_tag_is_stripped_but_token_is_not(tmp_path: Path) -> None:
    path = write(tmp_path / "p.txt", " آغاز |B_PER \r\n")
    r = read_conll(path, "peyma")
    assert r.sentences[0].tokens == [" آغاز "]
    assert r.sentences[0].tags == ["B-PER"]


# ----------------------------------------------------------------------------------------- ARMAN


def test_arman_lowercase_types_and_arabic_letters(tmp_path: Path) -> None:
    text = (
        "علي B-pers\n"  # Arabic yeh kept as in the source
        "كريمي I-pers\n"
        "در O\n"
        "جام B-event\n"
        "جهاني I-event\n"
        "0 O\n"
        "\n"
        "دانشگاه B-org\n"
        "شريف I-org\n"
        "ـ O\n"
        "\n"
    )
    path = write(tmp_path / "train_fold1.txt", text)
    r = read_conll(path, "arman")
    assert pairs(r) == [
        [("علي", "B-PER"), ("كريمي", "I-PER"), ("در", "O"), ("جام", "B-EVE"), ("جهاني", "I-EVE"), ("0", "O")],
        [("دانشگاه", "B-ORG"), ("شريف", "I-ORG"), ("ـ", "O")],
    ]
    assert detect_format(path) == "conll"
    assert pairs(read_file(path)) == pairs(r)  # the generic reader reads ARMAN identically
    assert pairs(read_file(path, format="arman")) == pairs(r)


# ----------------------------------------------------------------------------------------- ParsTwiNER


TWEETS = (
    "سلام\tO\n"
    "به\tO\n"
    "حزب\tI-POG\n"  # orphan I- after O
    "\n"
    "\u200cرئیس\u200c\tB-ORG\n"  # ZWNJ at token edges (518 such tokens in train)
    "جمهور\tI-LOC\n"  # orphan after another type
    "ٔ\tO\n"  # a lone combining hamza
    "\n"
)


def test_parstwiner_orphans_repaired_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "train.txt", TWEETS)
    r = read_conll(path, "parstwiner")
    assert r.repaired == 2
    assert pairs(r) == [
        [("سلام", "O"), ("به", "O"), ("حزب", "B-POG")],
        [("\u200cرئیس\u200c", "B-ORG"), ("جمهور", "B-LOC"), ("ٔ", "O")],
    ]
    assert any("line 3" in n and "line 6" in n for n in r.notes)
    assert detect_format(path) == "tsv"
    assert read_file(path).repaired == 2


def test_parstwiner_strict_fails_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "train.txt", TWEETS)
    with pytest.raises(InputError) as exc:
        read_conll(path, "parstwiner", strict=True)
    assert exc.value.line == 3
    assert f"{path}:3:" in str(exc.value)
    assert "I-POG" in str(exc.value)
    with pytest.raises(InputError, match=r"train\.txt:3:"):
        read_file(path, strict=True)


def test_repair_after_label_map(tmp_path: Path) -> None:
    # FAC -> LOC makes "B-LOC I-FAC" valid; EVE -> O removes an entity whose I- would otherwise be orphaned
    path = write(tmp_path / "x.txt", "a B-LOC\nb I-FAC\nc O\nd B-EVE\ne I-EVE\n")
    r = read_conll(path, "conll", strict=True, label_map={"FAC": "LOC", "EVE": "O"})
    assert r.sentences[0].tags == ["B-LOC", "I-LOC", "O", "O", "O"]
    assert r.repaired == 0


# ----------------------------------------------------------------------------------------- generic CoNLL


def test_conll_docstart_bom_crlf_blank_runs(tmp_path: Path) -> None:
    text = (
        "\ufeff-DOCSTART- -X- -X- O\r\n"
        "\r\n"
        "تهران NNP B-NP B-LOC\r\n"
        "بزرگ ADJ I-NP O\r\n"
        "  \t \r\n"  # whitespace-only: a sentence break
        "\r\n"
        "\r\n"
        "۲۵ NUM B-NP B-PCT\r\n"
        "-DOCSTART- -X- -X- O\r\n"  # a doc marker without a blank line before it still ends the sentence
        "\r\n"
        "مجلس N B-NP B-ORG\r\n"
    )
    path = write(tmp_path / "news.conll", text)
    r = read_conll(path, "conll")
    assert pairs(r) == [[("تهران", "B-LOC"), ("بزرگ", "O")], [("۲۵", "B-PCT")], [("مجلس", "B-ORG")]]
    assert [s.line for s in r.sentences] == [3, 8, 11]
    assert [s.doc_id for s in r.sentences] == ["news#1", "news#1", "news#2"]
    assert detect_format(path) == "conll"


def test_conll_without_docstart_gets_block_documents(tmp_path: Path) -> None:
    n = 2 * DOC_BLOCK + 3
    path = write(tmp_path / "big.txt", "".join(f"w{i} O\n\n" for i in range(n)))
    r = read_conll(path, "conll")
    ids = [s.doc_id for s in r.sentences]
    assert ids[0] == ids[DOC_BLOCK - 1] == "big#block0"
    assert ids[DOC_BLOCK] == "big#block1"
    assert len(set(ids)) == 3
    assert any("pseudo-documents" in note for note in r.notes)


def test_conll_custom_columns_and_separator(tmp_path: Path) -> None:
    path = write(tmp_path / "cols.txt", "B-PER;علی;x\nO;رفت;y\n")
    r = read_conll(path, "conll", sep=";", token_col=1, tag_col=0)
    assert pairs(r) == [[("علی", "B-PER"), ("رفت", "O")]]
    with pytest.raises(ConfigError):
        read_conll(path, "peyma", sep=";")
    with pytest.raises(ConfigError):
        read_conll(path, "nonsense")


def test_label_map_applies_and_checks(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "x B-pers\ny B-fac\nz B-event\nw B-pro\n")
    r = read_file(path, label_map="arman-to-peyma")
    assert r.sentences[0].tags == ["B-PER", "B-LOC", "O", "O"]
    odd = write(tmp_path / "odd.txt", "x B-GPE\n")
    assert read_file(odd).sentences[0].tags == ["B-GPE"]  # any type without a label map
    with pytest.raises(InputError, match=r"odd\.txt:1:.*'GPE'"):
        read_file(odd, label_map="core3")
    assert read_file(odd, label_map={"GPE": "LOC"}).sentences[0].tags == ["B-LOC"]


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    # Looks like TOKEN TAG, but it is a PEYMA-style file whose token has a space
    path = write(tmp_path / "p.txt", "می شود|O\n")
    assert detect_format(path) == "peyma"
    path2 = write(tmp_path / "q.txt", "a|b O\n")
    assert detect_format(path2) == "conll"
    assert pairs(read_file(path2)) == [[("a|b", "O")]]
    with pytest.raises(InputError, match=r"q\.txt:1:"):
        read_file(path2, format="peyma")  # "b O" is not a tag


# ----------------------------------------------------------------------------------------- span data


def jsonl(path: Path, records: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def span(text: str, piece: str, label: str, nth: int = 0) -> dict:
    start = -1
    for _ in range(nth + 1):
        start = text.index(piece, start + 1)
    return {"start": start, "end": start + len(piece), "label": label}


NEWS = f"علی‌رضا کریمی دیروز به تهران رفت. او در سازمان ملل متحد کار می{ZWNJ}کند.\nقیمت ۱۲٬۵۰۰ تومان است."


def entities(result) -> list[tuple[str, str]]:
    """(entity text in the original document, type) for every entity the reader produced."""
    out = []
    for s in result.sentences:
        text = result.texts[s.doc_id]
        for i, j, etype in spans_from_tags(s.tags):
            out.append((text[s.offsets[i][0] : s.offsets[j - 1][1]], etype))
    return out


def check_offsets(result) -> None:
    for s in result.sentences:
        text = result.texts[s.doc_id]
        assert s.offsets is not None
        assert [text[a:b] for a, b in s.offsets] == s.tokens


def test_jsonl_spans_to_iob2(tmp_path: Path) -> None:
    rec = {
        "id": "news-1",
        "text": NEWS,
        "entities": [
            span(NEWS, "علی‌رضا کریمی", "pers"),
            span(NEWS, "تهران", "LOC"),
            span(NEWS, "سازمان ملل متحد", "ORG"),
        ],
    }
    path = jsonl(tmp_path / "news.jsonl", [rec])
    assert detect_format(path) == "jsonl"
    r = read_file(path)
    assert r.format == "jsonl"
    check_offsets(r)
    assert entities(r) == [("علی‌رضا کریمی", "PER"), ("تهران", "LOC"), ("سازمان ملل متحد", "ORG")]
    assert {s.doc_id for s in r.sentences} == {"news-1"}
    assert r.texts == {"news-1": NEWS}
    assert len(r.sentences) >= 2  # split into sentences
    assert all(s.line == 1 for s in r.sentences)
    assert r.notes == []
    tokens = [t for s in r.sentences for t in s.tokens]
    assert f"می{ZWNJ}کند" in tokens and "۱۲٬۵۰۰" in tokens


def test_jsonl_partial_word_span_is_extended_and_reported(tmp_path: Path) -> None:
    rec = {
        "text": NEWS,
        "entities": [{"start": NEWS.index("تهران"), "end": NEWS.index("تهران") + 3, "label": "LOC"}],
    }
    path = jsonl(tmp_path / "d.jsonl", [rec])
    r = read_jsonl(path)
    assert entities(r) == [("تهران", "LOC")]
    assert len(r.notes) == 1 and "record 1" in r.notes[0] and "تهر" in r.notes[0] and "extended" in r.notes[0]
    assert r.sentences[0].doc_id == "d#1"  # no id: <stem>#<record number>
    with pytest.raises(InputError, match=r"d\.jsonl:1: record 1: .*word boundaries"):
        read_jsonl(path, strict=True)


def test_jsonl_edge_whitespace_is_trimmed_and_reported(tmp_path: Path) -> None:
    start = NEWS.index(" تهران ")
    path = jsonl(
        tmp_path / "d.jsonl",
        [{"text": NEWS, "entities": [{"start": start, "end": start + 7, "label": "LOC"}]}],
    )
    r = read_jsonl(path, strict=True)  # trimming loses nothing: fine even in strict mode
    assert entities(r) == [("تهران", "LOC")]
    assert any("trimmed" in n for n in r.notes)


def test_jsonl_span_across_sentences_merges_them(tmp_path: Path) -> None:
    text = "او به تهران رفت. سپس به شیراز رفت. پایان."
    a = text.index("تهران")
    b = text.index("شیراز") + len("شیراز")
    path = jsonl(
        tmp_path / "m.jsonl", [{"id": 7, "text": text, "entities": [{"start": a, "end": b, "label": "LOC"}]}]
    )
    r = read_jsonl(path)
    check_offsets(r)
    assert entities(r) == [(text[a:b], "LOC")]
    assert [s.doc_id for s in r.sentences] == ["7", "7"]  # first two sentences merged, third kept apart
    assert r.sentences[1].tokens == ["پایان", "."]
    assert any("crosses a sentence boundary" in n for n in r.notes)
    with pytest.raises(InputError, match=r"m\.jsonl:1: record 1: .*sentence boundary"):
        read_jsonl(path, strict=True)


def test_doccano_label_and_labels_keys(tmp_path: Path) -> None:
    t1 = "محمد در اصفهان است"
    t2 = "بانک ملی ۱۰٪ سود داد"
    recs = [
        {"text": t1, "label": [[0, 4, "PER"], [t1.index("اصفهان"), t1.index("اصفهان") + 6, "location"]]},
        {"id": "x", "text": t2, "labels": [[0, 8, "ORG"], [9, 12, "PCT"]]},
        {"text": "بدون موجودیت", "label": []},
    ]
    path = jsonl(tmp_path / "export.jsonl", recs)
    assert detect_format(path) == "doccano"
    r = read_file(path)
    assert r.format == "doccano"
    check_offsets(r)
    assert entities(r) == [("محمد", "PER"), ("اصفهان", "LOC"), ("بانک ملی", "ORG"), ("۱۰٪", "PCT")]
    assert [s.doc_id for s in r.sentences] == ["export#1", "x", "export#3"]
    assert [s.line for s in r.sentences] == [1, 2, 3]
    assert read_doccano(path).tag_counts == r.tag_counts


def test_jsonl_label_map_removes_with_a_note(tmp_path: Path) -> None:
    text = "جام جهانی در قطر برگزار شد"
    path = jsonl(
        tmp_path / "e.jsonl",
        [
            {
                "text": text,
                "entities": [
                    {"start": 0, "end": 9, "label": "event"},
                    {"start": 13, "end": 16, "label": "LOC"},
                ],
            }
        ],
    )
    r = read_jsonl(path, label_map={"EVE": "O"})
    assert entities(r) == [("قطر", "LOC")]
    assert any("removed 1 span" in n and "EVE" in n for n in r.notes)


def test_jsonl_with_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    text = "سلام تهران"
    body = json.dumps(
        {"text": text, "entities": [{"start": 5, "end": 10, "label": "LOC"}]}, ensure_ascii=False
    )
    path = tmp_path / "w.jsonl"
    path.write_bytes(("\ufeff\r\n" + body + "\r\n\r\n").encode("utf-8"))
    r = read_file(path)
    assert entities(r) == [("تهران", "LOC")]
    assert r.sentences[0].line == 2


def test_jsonl_accepts_doccano_offset_keys(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "n.jsonl",
        [{"text": "سفر به کیش", "entities": [{"start_offset": 7, "end_offset": 10, "label": "LOC"}]}],
    )
    assert entities(read_jsonl(path)) == [("کیش", "LOC")]


# ----------------------------------------------------------------------------------------- real corpora


def _entity_counts(result) -> Counter:
    return Counter(t for s in result.sentences for _, _, t in spans_from_tags(s.tags))


@pytest.mark.shared
def test_peyma_counts(shared_data: Path) -> None:
    d = shared_data / "peyma" / "hooshvare_split"
    expected = {"train": (8028, 243_546), "dev": (925, 26_806), "test": (1026, 32_176)}
    total_entities = 0
    for split, (n_sent, n_tok) in expected.items():
        r = read_file(d / f"{split}.txt")
        assert r.format == "peyma"
        assert len(r.sentences) == n_sent
        assert sum(len(s.tokens) for s in r.sentences) == n_tok
        assert r.repaired == 0
        counts = _entity_counts(r)
        total_entities += sum(counts.values())
        if split == "train":
            assert counts == {
                "PER": 3643,
                "LOC": 4996,
                "ORG": 5040,
                "DAT": 1455,
                "TIM": 245,
                "MON": 452,
                "PCT": 250,
            }
            tokens = [t for s in r.sentences for t in s.tokens]
            assert tokens.count("| ") == 2
            assert sum(" " in t for t in tokens) > 10_000
    assert total_entities == 20_022


@pytest.mark.shared
def test_arman_fold1_counts(shared_data: Path) -> None:
    r = read_file(shared_data / "arman" / "ArmanPersoNERCorpus" / "train_fold1.txt")
    assert len(r.sentences) == 5121
    assert sum(len(s.tokens) for s in r.sentences) == 167_877
    assert _entity_counts(r) == {"PER": 2165, "ORG": 3067, "LOC": 2266, "FAC": 383, "PRO": 459, "EVE": 403}
    assert r.repaired == 0


@pytest.mark.shared
def test_parstwiner_repairs(shared_data: Path) -> None:
    r = read_file(shared_data / "parstwiner" / "train.txt")
    assert r.format == "tsv"
    assert r.repaired == 14
    assert len(r.sentences) == 6417
    assert sum(len(s.tokens) for s in r.sentences) == 207_990
    assert sum(_entity_counts(r).values()) == 14_588
    with pytest.raises(InputError, match=r"train\.txt:\d+: invalid IOB2"):
        read_file(shared_data / "parstwiner" / "train.txt", strict=True)


def test_label_map_given_as_a_raw_dict_is_canonicalised(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "x B-pers\ny I-pers\nz B-fac\n")
    r = read_file(path, label_map={"pers": "location", "Facility": "o"})
    assert r.sentences[0].tags == ["B-LOC", "I-LOC", "O"]
