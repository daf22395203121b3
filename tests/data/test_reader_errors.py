"""The bad-input matrix, reader rows: each case is an InputError naming file, line and problem."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from parsner.data.readers import detect_format, read_file, read_jsonl
from parsner.errors import InputError


def raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def text(path: Path, s: str) -> Path:
    return raw(path, s.encode("utf-8"))


def expect(path: Path, line: int, fragment: str, **kwargs) -> InputError:
    """``read_file(path, **kwargs)`` fails at ``path:line`` with ``fragment`` in the message."""
    with pytest.raises(InputError) as info:
        read_file(path, **kwargs)
    err = info.value
    assert err.path == str(path)
    assert err.line == line
    assert str(err).startswith(f"{path}:{line}: ")
    assert fragment in str(err)
    return err


# ----------------------------------------------------------------------------------------- CoNLL rows


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("peyma", "تهران|B_LOC", "تهران"),
        ("arman", "تهران B-loc", "تهران"),
        ("parstwiner", "تهران\tB-LOC", "تهران"),
        ("tsv", "تهران\tB-LOC", "تهران"),
        ("conll", "تهران B-LOC", "تهران"),
    ],
)
def test_missing_tag_column(tmp_path: Path, fmt: str, good: str, bad: str) -> None:
    path = text(tmp_path / "c.txt", f"{good}\n{good}\n\n{bad}\n")
    expect(path, 4, "no tag", format=fmt)


def test_empty_tag(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "الف|O\nب|\n")
    expect(path, 2, "empty tag", format="peyma")


def test_empty_token(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "الف\tO\n\tO\n")
    expect(path, 2, "empty token", format="tsv")


def test_tsv_with_extra_columns(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "الف\tN\tO\n")
    expect(path, 1, "found 3", format="tsv")


def test_unknown_tag(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "علی B-PER\nرفت VERB\n")
    expect(path, 2, "'VERB'")


def test_iobes_tag_is_refused(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "علی S-PER\n")
    expect(path, 1, "S- prefix")


def test_invalid_transition_under_strict(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "الف O\n\nعلی B-PER\nرضایی I-PER\nتهران I-LOC\n")
    expect(path, 5, "I-LOC after I-PER", strict=True)
    assert read_file(path).repaired == 1  # the default repairs instead


def test_non_utf8_bytes(tmp_path: Path) -> None:
    good = "سلام O\n".encode()
    bad = "تهران".encode("cp1256") + b" B-LOC\n"  # a Windows-1256 line
    path = raw(tmp_path / "c.txt", good + good + b"\n" + bad)
    err = expect(path, 4, "not valid UTF-8")
    assert "0x" in str(err)
    with pytest.raises(InputError, match=r"c\.txt:4: not valid UTF-8"):
        detect_format(path)


def test_utf16_file(tmp_path: Path) -> None:
    path = raw(tmp_path / "c.txt", "سلام O\n".encode("utf-16"))
    expect(path, 1, "UTF-16")


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = raw(tmp_path / "c.txt", b"\xef\xbb\xbf" + "علی|B_PER\n".encode())
    r = read_file(path)
    assert r.sentences[0].tokens == ["علی"]  # no BOM glued to the first token
    assert r.sentences[0].tags == ["B-PER"]


def test_crlf_is_accepted(tmp_path: Path) -> None:
    path = raw(tmp_path / "c.txt", "علی\tB-PER\r\nرفت\tO\r\n\r\nبه\tO\r\n".encode())
    r = read_file(path)
    assert [s.tokens for s in r.sentences] == [["علی", "رفت"], ["به"]]
    assert [s.tags for s in r.sentences] == [["B-PER", "O"], ["O"]]
    assert [s.line for s in r.sentences] == [1, 4]


def test_nul_bytes(tmp_path: Path) -> None:
    path = raw(tmp_path / "c.txt", "سلام O\n\nتهران O\n".encode() + b"ab\x00c O\n")
    expect(path, 4, "NUL byte")


def test_empty_file(tmp_path: Path) -> None:
    path = raw(tmp_path / "c.txt", b"")
    expect(path, 1, "empty file")
    expect(path, 1, "empty file", format="peyma")


def test_bom_only_file_is_empty(tmp_path: Path) -> None:
    path = raw(tmp_path / "c.txt", b"\xef\xbb\xbf")
    expect(path, 1, "empty file", format="conll")


def test_only_blank_lines(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "\n  \n\t\n\r\n\n")
    expect(path, 1, "all blank")
    expect(path, 1, "all blank", format="tsv")


def test_only_docstart_lines(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "-DOCSTART- O\n\n-DOCSTART- O\n")
    expect(path, 1, "-DOCSTART-", format="conll")


@pytest.mark.parametrize("fmt", [None, "peyma", "conll", "tsv"])
def test_ten_megabyte_single_line(tmp_path: Path, fmt: str | None) -> None:
    path = text(tmp_path / "c.txt", "کلمه " * 2_000_000 + "O")
    t0 = time.perf_counter()
    expect(path, 1, "characters", format=fmt)
    assert time.perf_counter() - t0 < 10  # a clear error, not a hang


def test_ten_megabyte_line_after_good_lines(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "سلام|O\n\n" + "x" * 10_000_000 + "|O\n")
    expect(path, 3, "characters", format="peyma")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_file(tmp_path / "nope.txt")


def test_undetectable_format(tmp_path: Path) -> None:
    path = text(tmp_path / "c.txt", "\nسلام\nدنیا\n")
    expect(path, 2, "cannot detect the format")


# ------------------------------------------------------------------------------------- JSONL / doccano rows


def records(path: Path, *recs: object) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in recs]
    return text(path, "\n".join(lines) + "\n")


GOOD = {"text": "علی به تهران رفت", "entities": [{"start": 0, "end": 3, "label": "PER"}]}


def test_invalid_json(tmp_path: Path) -> None:
    path = records(tmp_path / "d.jsonl", GOOD, '{"text": "علی", "entities": [}')
    expect(path, 2, "record 2: invalid JSON")


def test_json_array_is_refused(tmp_path: Path) -> None:
    path = text(tmp_path / "d.json", json.dumps([GOOD], ensure_ascii=False))
    expect(path, 1, "JSON array")


def test_record_not_an_object(tmp_path: Path) -> None:
    path = records(tmp_path / "d.jsonl", GOOD, [1, 2])
    expect(path, 2, "must be a JSON object", format="jsonl")


def test_missing_text(tmp_path: Path) -> None:
    path = records(tmp_path / "d.jsonl", GOOD, "", {"txt": "x", "entities": []})
    expect(path, 3, "record 2: missing 'text'")


def test_non_string_text(tmp_path: Path) -> None:
    path = records(tmp_path / "d.jsonl", {"text": 42, "entities": []})
    expect(path, 1, "'text' must be a string", format="jsonl")


def test_empty_text(tmp_path: Path) -> None:
    path = records(tmp_path / "d.jsonl", {"text": " \n ", "entities": []})
    expect(path, 1, "'text' is empty")


def test_missing_entities(tmp_path: Path) -> None:
    path = records(tmp_path / "d.jsonl", {"text": "علی", "label": [[0, 3, "PER"]]})
    expect(path, 1, "--format doccano", format="jsonl")


@pytest.mark.parametrize(("start", "end"), [(0, 99), (-1, 3), (17, 20)])
def test_offsets_outside_the_text(tmp_path: Path, start: int, end: int) -> None:
    path = records(
        tmp_path / "d.jsonl",
        GOOD,
        {"text": "علی به تهران رفت", "entities": [{"start": start, "end": end, "label": "PER"}]},
    )
    expect(path, 2, "outside the text")


@pytest.mark.parametrize(("start", "end"), [(3, 3), (5, 2)])
def test_start_not_before_end(tmp_path: Path, start: int, end: int) -> None:
    path = records(
        tmp_path / "d.jsonl",
        {"text": "علی به تهران رفت", "entities": [{"start": start, "end": end, "label": "PER"}]},
    )
    expect(path, 1, "is not before end")


@pytest.mark.parametrize("bad", [1.0, "0", True, None])
def test_non_integer_offsets(tmp_path: Path, bad: object) -> None:
    path = records(
        tmp_path / "d.jsonl",
        {"text": "علی به تهران رفت", "entities": [{"start": bad, "end": 3, "label": "PER"}]},
    )
    expect(path, 1, "is not an integer")


def test_overlapping_spans(tmp_path: Path) -> None:
    t = "سازمان ملل متحد در نیویورک"
    path = records(
        tmp_path / "d.jsonl",
        {
            "text": t,
            "entities": [{"start": 0, "end": 15, "label": "ORG"}, {"start": 7, "end": 10, "label": "LOC"}],
        },
    )
    expect(path, 1, "overlapping spans")


def test_spans_in_one_word(tmp_path: Path) -> None:
    t = "ایران‌خودرو سهام فروخت"
    path = records(
        tmp_path / "d.jsonl",
        {
            "text": t,
            "entities": [{"start": 0, "end": 5, "label": "LOC"}, {"start": 6, "end": 11, "label": "ORG"}],
        },
    )
    expect(path, 1, "same word")


def test_span_on_whitespace_only(tmp_path: Path) -> None:
    t = "علی   رفت"
    path = records(tmp_path / "d.jsonl", {"text": t, "entities": [{"start": 4, "end": 5, "label": "PER"}]})
    expect(path, 1, "covers no word")


def test_unknown_label_under_label_map(tmp_path: Path) -> None:
    path = records(
        tmp_path / "d.jsonl",
        GOOD,
        {"text": "علی به تهران رفت", "entities": [{"start": 7, "end": 12, "label": "PLACE"}]},
    )
    expect(path, 2, "unknown entity type 'PLACE'", label_map="core3")
    assert read_file(path).sentences[-1].tags[2] == "B-PLACE"  # without a label map any type is accepted


def test_label_that_is_not_a_type(tmp_path: Path) -> None:
    path = records(
        tmp_path / "d.jsonl", {"text": "علی رفت", "entities": [{"start": 0, "end": 3, "label": "B-PER"}]}
    )
    expect(path, 1, "not an entity type")


def test_duplicate_ids(tmp_path: Path) -> None:
    path = records(tmp_path / "d.jsonl", {"id": "a", **GOOD}, {"id": "a", **GOOD})
    expect(path, 2, "duplicate id 'a' (first used at line 1)")


def test_bad_doccano_entry(tmp_path: Path) -> None:
    path = records(tmp_path / "d.jsonl", {"text": "علی رفت", "label": [[0, 3]]})
    expect(path, 1, "must be [start, end, label]", format="doccano")


def test_empty_jsonl_file(tmp_path: Path) -> None:
    path = raw(tmp_path / "d.jsonl", b"")
    expect(path, 1, "empty file")


def test_blank_jsonl_file(tmp_path: Path) -> None:
    path = text(tmp_path / "d.jsonl", "\n\n  \n")
    with pytest.raises(InputError, match=r"d\.jsonl:1: "):
        read_jsonl(path)


def test_non_utf8_jsonl(tmp_path: Path) -> None:
    path = raw(
        tmp_path / "d.jsonl", json.dumps(GOOD).encode() + b"\n" + b'{"text": "\xe1\xed", "entities": []}\n'
    )
    expect(path, 2, "not valid UTF-8", format="jsonl")


def test_duplicate_span_is_kept_once_with_a_note(tmp_path: Path) -> None:
    e = {"start": 0, "end": 3, "label": "PER"}
    path = records(tmp_path / "d.jsonl", {"text": "علی رفت", "entities": [e, e]})
    r = read_jsonl(path)
    assert r.sentences[0].tags == ["B-PER", "O"]
    assert any("duplicate span" in n for n in r.notes)


def test_text_without_words(tmp_path: Path) -> None:
    path = records(tmp_path / "d.jsonl", GOOD, {"text": "\u200c \u200f", "entities": []})
    expect(path, 2, "has no words")
