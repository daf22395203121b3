"""Readers of annotation-tool exports (Label Studio, brat, WebAnno/INCEpTION, Prodigy) on hand-written files.

The fixtures in ``tests/fixtures/annotation`` hold the same Persian news text: ZWNJ inside a name, an emoji before
two entities (so UTF-16 offsets differ from code points) and Arabic-Indic digits in a percentage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers.annotation import DATA, docs, entities
from parsner.cli import main
from parsner.data.readers import FORMATS, detect_format, read_file
from parsner.data.readers.docs import resolve_offsets, utf16_to_codepoints
from parsner.errors import EXIT_USER_ERROR, InputError

TEXT = "خبرگزاری ایرنا: علی‌اکبر نظری 😀 روز ۱۲ مهر در تهران سخن گفت.\nنرخ تورم ٢٫٤ درصد کاهش یافت."

WORDS_1 = [
    "خبرگزاری",
    "ایرنا",
    ":",
    "علی\u200cاکبر",
    "نظری",
    "😀",
    "روز",
    "۱۲",
    "مهر",
    "در",
    "تهران",
    "سخن",
    "گفت",
    ".",
]
TAGS_1 = ["O", "B-ORG", "O", "B-PER", "I-PER", "O", "B-DAT", "I-DAT", "I-DAT", "O", "B-LOC", "O", "O", "O"]
WORDS_2 = ["نرخ", "تورم", "٢٫٤", "درصد", "کاهش", "یافت", "."]
TAGS_2 = ["O", "O", "B-PCT", "I-PCT", "O", "O", "O"]
# annotator 2 of the Label Studio task: no DAT, no PCT
TAGS_1_B = ["O", "B-ORG", "O", "B-PER", "I-PER", "O", "O", "O", "O", "O", "B-LOC", "O", "O", "O"]
ENTITIES = {(9, 14, "ORG"), (16, 29, "PER"), (32, 42, "DAT"), (46, 51, "LOC"), (70, 78, "PCT")}


def test_formats_are_known() -> None:
    assert {"labelstudio", "brat", "webanno", "prodigy"} <= set(FORMATS)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("labelstudio.json", "labelstudio"),
        ("labelstudio_min.json", "labelstudio"),
        ("brat", "brat"),
        ("brat/news-1.ann", "brat"),
        ("brat/news-1.txt", "brat"),
        ("inception.tsv", "webanno"),
        ("prodigy.jsonl", "prodigy"),
    ],
)
def test_detect(name: str, fmt: str) -> None:
    assert detect_format(DATA / name) == fmt


# ----------------------------------------------------------------------------------------- Label Studio


def test_labelstudio_two_annotators_need_a_choice() -> None:
    with pytest.raises(InputError) as info:
        read_file(DATA / "labelstudio.json")
    msg = str(info.value)
    assert (
        "task 1 (record 1)" in msg and "2 annotations (by 1, 2)" in msg and "--annotator ID|first|last" in msg
    )


@pytest.mark.parametrize(
    ("annotator", "tags_1"), [("1", TAGS_1), ("first", TAGS_1), ("2", TAGS_1_B), ("last", TAGS_1_B)]
)
def test_labelstudio_annotator_choice(annotator: str, tags_1: list[str]) -> None:
    res = read_file(DATA / "labelstudio.json", annotator=annotator)
    got = docs(res)
    assert got["1"] == [(WORDS_1, tags_1), (WORDS_2, TAGS_2 if tags_1 is TAGS_1 else ["O"] * 7)]
    notes = "\n".join(res.notes)
    assert "1 cancelled annotation(s) skipped" in notes
    assert "2 task(s) without annotations skipped" in notes  # the cancelled task and the unannotated one
    if annotator == "2":
        assert set(got) == {"1"}
        assert "2 task(s) without an annotation by annotator 2 skipped" in notes
    else:
        # task 2: older Label Studio, UTF-16 offsets after the emoji; task 5: annotated, no entities
        assert got["2"] == [(["😀", "سفر", "وزیر", "به", "مشهد"], ["O", "O", "O", "O", "B-LOC"])]
        assert got["5"] == [(["هوا", "امروز", "آفتابی", "است", "."], ["O"] * 5)]
        assert "task 2 (record 2): offsets read as UTF-16 code units" in notes
        assert "1 document(s) had UTF-16 offsets" in notes
    if annotator in ("2", "last"):
        assert "1 result(s) of type 'choices' ignored" in notes
        assert "1 result(s) of type 'relation' ignored" in notes
    assert res.texts["1"] == TEXT


def test_labelstudio_json_min_matches_json_export() -> None:
    for annotator in ("1", "2", "first", "last"):
        full = read_file(DATA / "labelstudio.json", annotator=annotator)
        small = read_file(DATA / "labelstudio_min.json", annotator=annotator)
        assert entities(small) == {k: v for k, v in entities(full).items() if k in ("1", "2")}
    with pytest.raises(InputError, match="2 annotations"):
        read_file(DATA / "labelstudio_min.json")


def test_labelstudio_unknown_annotator_lists_the_annotators() -> None:
    with pytest.raises(
        InputError, match=r"no task has an annotation by annotator '7' \(annotators in this file: 1, 2\)"
    ):
        read_file(DATA / "labelstudio.json", annotator="7")


# ----------------------------------------------------------------------------------------- brat, WebAnno, Prodigy


def test_brat_directory() -> None:
    res = read_file(DATA / "brat")
    got = docs(res)
    assert got["news-1"] == [(WORDS_1, TAGS_1), (WORDS_2, TAGS_2)]
    # discontinuous "دانشگاه … شریف" -> its covering span
    assert got["news-2"] == [
        (
            ["دانشگاه", "تهران", "و", "شریف", "نشست", "مشترک", "برگزار", "کردند", "."],
            ["B-ORG", "I-ORG", "I-ORG", "I-ORG"] + ["O"] * 5,
        )
    ]
    notes = "\n".join(res.notes)
    assert "1 discontinuous span(s) read as their covering span: news-2.ann line 1 ORG 0 7;16 20" in notes
    for what in ("relation", "event", "attribute", "note"):
        assert f"1 {what}(s) ignored" in notes
    assert "1 .txt file(s) without an .ann skipped" in notes
    assert entities(res)["news-1"] == ENTITIES


def test_brat_single_pair_and_strict_discontinuous() -> None:
    assert docs(read_file(DATA / "brat" / "news-1.ann"))["news-1"] == [(WORDS_1, TAGS_1), (WORDS_2, TAGS_2)]
    with pytest.raises(InputError) as info:
        read_file(DATA / "brat" / "news-2.ann", strict=True)
    assert str(info.value).startswith(f"{DATA / 'brat' / 'news-2.ann'}:1: discontinuous span 0 7;16 20")


def test_webanno_inception_tsv_utf16() -> None:
    res = read_file(DATA / "inception.tsv")
    assert docs(res)["inception"] == [(WORDS_1, TAGS_1), (WORDS_2, TAGS_2)]
    assert res.texts["inception"] == TEXT
    assert entities(res)["inception"] == ENTITIES
    assert any("UTF-16" in n for n in res.notes)


def test_prodigy_rejected_and_ignored_skipped() -> None:
    res = read_file(DATA / "prodigy.jsonl")
    got = docs(res)
    assert got["news-1"] == [(WORDS_1, TAGS_1), (WORDS_2, TAGS_2)]
    assert got["1004"] == [(["بازار", "امروز", "آرام", "بود", "."], ["O"] * 5)]
    assert set(got) == {"news-1", "1004"}
    notes = "\n".join(res.notes)
    assert "1 example(s) answered 'reject' skipped" in notes
    assert "1 example(s) answered 'ignore' skipped" in notes


def test_partial_word_span_is_extended_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"text": "سفر به تهرانی‌ها", "spans": [{"start": 7, "end": 12, "label": "LOC"}]}) + "\n"
    )
    res = read_file(path, format="prodigy")
    assert res.sentences[0].tags == ["O", "O", "B-LOC"]
    assert any("extended to the words" in n for n in res.notes)


# ----------------------------------------------------------------------------------------- offsets


def test_utf16_table() -> None:
    assert utf16_to_codepoints("abc") is None
    assert utf16_to_codepoints("a😀b") == [0, 1, -1, 2, 3]


def test_resolve_offsets_conventions() -> None:
    text = "😀 تهران"
    assert resolve_offsets(text, [(2, 7, "LOC", "تهران")]) == ([(2, 7, "LOC")], False)
    assert resolve_offsets(text, [(3, 8, "LOC", "تهران")]) == ([(2, 7, "LOC")], True)
    with pytest.raises(ValueError, match="neither code-point nor UTF-16"):
        resolve_offsets(text, [(2, 7, "LOC", "مشهد")])


# ----------------------------------------------------------------------------------------- bad input


def _ls_task(**over) -> dict:
    task = {
        "id": 9,
        "data": {"text": "علی به تهران رفت"},
        "annotations": [
            {
                "completed_by": 1,
                "result": [
                    {"type": "labels", "value": {"start": 7, "end": 12, "text": "تهران", "labels": ["LOC"]}}
                ],
            }
        ],
    }
    task.update(over)
    return task


BAD = [
    ("ls.json", "labelstudio", "[" + json.dumps(_ls_task()) + ",\n{oops}]", "ls.json:2: invalid JSON"),
    (
        "ls.json",
        "labelstudio",
        json.dumps([_ls_task(), _ls_task(id=10, data={"text": "علی به مشهد رفت"})]),
        "ls.json: task 10 (record 2): entity 1: the text at [7, 12) is 'مشهد ' but the export says 'تهران'",
    ),
    (
        "ls.json",
        "labelstudio",
        json.dumps([_ls_task(data={"html": 1, "x": 2})]),
        "ls.json: task 9 (record 1): no text",
    ),
    ("x.ann", "brat", "T1\tPER 0 3\tعلی\nT2 LOC 7 12 تهران\n", "x.ann:2: malformed T line"),
    ("y.ann", "brat", "T1\tPER 0 3\tعلی\n", "y.ann: no text file y.txt beside it"),
    (
        "z.ann",
        "brat",
        "T1\tPER 0 4\tعلی\n",
        "z.ann:1: entity 1: the text at [0, 4) is 'علی ' but the export says 'علی'",
    ),
    (
        "w.tsv",
        "webanno",
        "#FORMAT=WebAnno TSV 3.3\n#T_SP=a.b.POS|PosValue\n\n\n#Text=علی\n1-1\t0-3\tعلی\t_\t\n",
        "w.tsv:1: no NamedEntity layer",
    ),
    (
        "w.tsv",
        "webanno",
        "#FORMAT=WebAnno TSV 3.3\n#T_SP=de.tudarmstadt.ukp.dkpro.core.api.ner.type.NamedEntity|identifier|value\n\n\n"
        "#Text=علی رفت\n1-1\t0-3\tعلی\t*\tPER\t\n1-2\t4-8\tرفت\t_\t_\t\n",
        "w.tsv:7: offsets 4-8 fall outside its sentence",
    ),
    (
        "p.jsonl",
        "prodigy",
        '{"text": "علی رفت", "spans": [{"start": 0, "label": "PER"}]}\n',
        "p.jsonl:1: record 1: span 1: missing 'end'",
    ),
    (
        "p.jsonl",
        "prodigy",
        '{"text": "علی رفت", "answer": "maybe"}\n',
        "p.jsonl:1: record 1: 'answer' must be one of",
    ),
]


@pytest.mark.parametrize(
    ("name", "fmt", "content", "message"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)]
)
def test_bad_input_file_record_error(tmp_path: Path, name: str, fmt: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    if name.endswith(".ann") and name != "y.ann":
        path.with_suffix(".txt").write_text("علی رفت", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_file(path, format=fmt)
    assert str(info.value).startswith(f"{tmp_path}/{message}"), str(info.value)


@pytest.mark.parametrize(("name", "fmt", "content", "message"), BAD[::3], ids=[b[1] for b in BAD[::3]])
def test_bad_input_cli_exit_2_no_output(
    tmp_path: Path, capsys, name: str, fmt: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    if name.endswith(".ann"):
        path.with_suffix(".txt").write_text("علی رفت", encoding="utf-8")
    out = tmp_path / "ds"
    code = main(["data", "build", str(path), "--format", fmt, "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert f"{tmp_path}/{message}" in err
    assert "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]


# ----------------------------------------------------------------------------------------- data build


def test_data_build_reads_every_tool_export(tmp_path: Path, capsys) -> None:
    inputs = [DATA / "labelstudio.json", DATA / "brat", DATA / "inception.tsv", DATA / "prodigy.jsonl"]
    out = tmp_path / "ds"
    code = main(["data", "build", *map(str, inputs), "--annotator", "first", "--out", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    build = json.loads((out / "build.json").read_text())
    assert [i["format"] for i in build["inputs"]] == ["labelstudio", "brat", "webanno", "prodigy"]
    assert build["options"]["reader_options"] == {"annotator": "first"}
    assert all(i["sha256"] for i in build["inputs"])
    before = build["inputs"][1]["sha256"]
    copy = tmp_path / "brat"
    shutil.copytree(DATA / "brat", copy)
    (copy / "news-1.ann").write_text((copy / "news-1.ann").read_text().replace("LOC", "ORG"))
    code = main(["data", "build", str(copy), "--out", str(tmp_path / "ds2"), "-q"])
    assert code == 0
    assert json.loads((tmp_path / "ds2" / "build.json").read_text())["inputs"][0]["sha256"] != before


def test_data_build_annotator_not_with_corpus(tmp_path: Path, capsys) -> None:
    code = main(["data", "build", "--corpus", "sample", "--annotator", "1", "--out", str(tmp_path / "x")])
    assert code == EXIT_USER_ERROR
    assert "--annotator applies to Label Studio" in capsys.readouterr().err
