"""Lone surrogates (``"\\ud800"`` in JSON: valid JSON, not text) are refused where they are read.

Training data: ``parsner data build`` stops at the record (file:line, exit 2, no traceback, nothing
written) for every JSON-based reader. Text to tag: refused too (the Tagger raises ValueError, ``predict``
exits 2, ``serve`` answers 422), never replaced, so that entity offsets and texts stay the caller's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.tagger import build_model_dir, check_entities
from parsner import surrogates
from parsner.cli import main
from parsner.errors import EXIT_USER_ERROR, InputError

TEXT = "علی به تهران رفت"  # تهران is [7, 12)
ENT = (7, 12, "LOC")


def esc(s: str) -> str:
    """``s`` as the inside of a JSON string literal (non-ASCII kept), where ``<X>`` stands for ``\\uX``."""
    return json.dumps(s, ensure_ascii=False)[1:-1].replace("<", "\\u").replace(">", "")


# Each case: the record's text (with <D800>-style escapes), the entity offsets in the decoded text, and a
# JSON key or label replaced, when the surrogate sits outside the text.
BAD_TEXTS = {
    "high at start": ("<D800>" + TEXT, 8, 13),
    "low at end": (TEXT + "<DFFF>", 7, 12),
    "inside the entity": ("علی به ته<DC00>ران رفت", 7, 13),
    "high then plain letter": ("علی <D83D>x به تهران رفت", 9, 14),
    "pair reversed": ("<DE00><D83D>" + TEXT, 9, 14),
    "pair split by a letter": ("<D83D>a<DE00>" + TEXT, 10, 15),
    "high then a non-surrogate escape": ("<D83D><0041>" + TEXT, 9, 14),
    "two highs": ("<D83D><D83D>" + TEXT, 9, 14),
    "lower-case hex": ("<d800>" + TEXT, 8, 13),
}


def _jsonl(text: str, start: int, end: int, key: str = "text", label: str = "LOC") -> str:
    return (
        f'{{"{esc(key)}": "{esc(text)}", "entities": '
        f'[{{"start": {start}, "end": {end}, "label": "{esc(label)}"}}]}}'
    )


def build(inputs: list[Path], out: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["data", "build", *map(str, inputs), "--out", str(out), *extra])
    _, err = capsys.readouterr()
    return code, err


def refused(code: int, err: str, path: Path, line: int, out: Path) -> None:
    assert code == EXIT_USER_ERROR, err
    assert f"{path}:{line}: " in err and "lone surrogate" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
    assert not out.exists() and not list(out.parent.glob(f"{out.name}*"))


# ----------------------------------------------------------------------------------------- detection


def _decoded_has_surrogate(obj: Any) -> bool:
    if isinstance(obj, str):
        return surrogates.find(obj) >= 0
    if isinstance(obj, dict):
        return any(_decoded_has_surrogate(k) or _decoded_has_surrogate(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(map(_decoded_has_surrogate, obj))
    return False


@pytest.mark.parametrize(
    "raw",
    [
        '"\\ud800"', '"\\udc00"', '"\\uDBFF"', '"\\ud83d\\ude00"', '"\\uD83D\\uDE00"', '"\\ude00\\ud83d"',
        '"\\ud83d\\ud83d\\ude00"', '"\\ud83d\\u0041"', '"\\\\ud800"', '"\\\\\\ud800"', '"\\\\\\\\ud800"',
        '{"\\ud800": 1}', '["a", "\\n\\ud800"]', '"\\u00e9\\u06cc"', '"x\\ud7ff\\ue000"', '"\\"\\ud800"',
        '"\\ud83d\\\\ude00"', '"😀"',
    ],
)
def test_json_scan_agrees_with_the_json_module(raw: str) -> None:
    assert (surrogates.find_in_json(raw) >= 0) == _decoded_has_surrogate(json.loads(raw))


def test_text_problem_names_the_character() -> None:
    assert surrogates.problem("علی 😀") is None
    assert surrogates.problem("ab\udc80") == f"a lone surrogate U+DC80 at character 3: {surrogates.WHAT}"
    assert surrogates.find("\ud83d\ude00") == 0  # two code points are no pair in a Python str


# ----------------------------------------------------------------------------------------- data build


@pytest.mark.parametrize("case", sorted(BAD_TEXTS))
def test_jsonl_text_with_a_lone_surrogate_is_refused_when_read(tmp_path: Path, capsys, case: str) -> None:
    text, start, end = BAD_TEXTS[case]
    src = tmp_path / "data.jsonl"
    good = _jsonl(TEXT, *ENT[:2])
    src.write_text(f"{good}\n\n{_jsonl(text, start, end)}\n{good}\n", encoding="utf-8")
    out = tmp_path / "out"
    code, err = build([src], out, capsys)
    refused(code, err, src, 3, out)
    assert "record 2" in err


@pytest.mark.parametrize(
    ("where", "record"),
    [
        ("key", _jsonl(TEXT, 7, 12, key="te<D800>xt")),
        ("label", _jsonl(TEXT, 7, 12, label="LO<DC00>C")),
        ("id", '{"id": "d' + esc("<D800>") + '", "text": "' + TEXT + '", "entities": []}'),
        ("unused field", '{"text": "' + TEXT + '", "entities": [], "meta": "' + esc("<DBFF>") + '"}'),
    ],
)
def test_a_lone_surrogate_outside_the_text_is_refused_too(tmp_path: Path, capsys, where: str, record: str) -> None:
    src = tmp_path / "data.jsonl"
    src.write_text(record + "\n", encoding="utf-8")
    out = tmp_path / "out"
    refused(*build([src], out, capsys), src, 1, out)


def test_the_message_says_where_and_what(tmp_path: Path) -> None:
    from parsner.data.readers import read_file

    src = tmp_path / "data.jsonl"
    src.write_text(_jsonl("ab<D800>" + TEXT, 10, 15) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_file(src)
    assert info.value.line == 1
    assert "record 1: the escape \\uD800 at column 13 is a lone surrogate" in str(info.value)


def test_whole_characters_and_escaped_backslashes_still_build(tmp_path: Path, capsys) -> None:
    src = tmp_path / "data.jsonl"
    pair = _jsonl("<D83D><DE00> " + TEXT, 9, 14)  # an escaped emoji: one character, offsets in characters
    literal = '{"text": "' + TEXT + ' \\\\ud800", "entities": [{"start": 7, "end": 12, "label": "LOC"}]}'
    src.write_text(f"{pair}\n{literal}\n", encoding="utf-8")
    out = tmp_path / "out"
    code, err = build([src], out, capsys, "--split-ratios", "1,0,0")
    assert code == 0, err
    texts = [json.loads(line)["text"] for line in (out / "texts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert texts == ["😀 " + TEXT, TEXT + " \\ud800"]


def _doccano(text: str, start: int, end: int) -> str:
    return f'{{"text": "{esc(text)}", "label": [[{start}, {end}, "LOC"]]}}'


def _prodigy(text: str, start: int, end: int) -> str:
    return f'{{"text": "{esc(text)}", "spans": [{{"start": {start}, "end": {end}, "label": "LOC"}}]}}'


def _ls_min(text: str, start: int, end: int) -> str:
    return f'{{"text": "{esc(text)}", "label": [{{"start": {start}, "end": {end}, "labels": ["LOC"]}}]}}'


def _ls_task(text: str, start: int, end: int) -> str:
    value = f'{{"start": {start}, "end": {end}, "labels": ["LOC"]}}'
    result = f'{{"from_name": "label", "to_name": "text", "type": "labels", "value": {value}}}'
    return f'{{"data": {{"text": "{esc(text)}"}}, "annotations": [{{"result": [{result}]}}]}}'


@pytest.mark.parametrize(
    ("fmt", "name", "record"),
    [("doccano", "d.jsonl", _doccano), ("prodigy", "p.jsonl", _prodigy)],
)
def test_every_jsonl_reader_refuses_it(tmp_path: Path, capsys, fmt: str, name: str, record) -> None:
    src = tmp_path / name
    lines = [record(TEXT, 7, 12), record(TEXT + "<D800>", 7, 12)]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    refused(*build([src], out, capsys, "--format", fmt), src, 2, out)


@pytest.mark.parametrize("record", [_ls_min, _ls_task], ids=["json-min", "json"])
def test_label_studio_names_the_line_inside_the_array(tmp_path: Path, capsys, record) -> None:
    src = tmp_path / "export.json"
    items = [record(TEXT, 7, 12), record(TEXT, 7, 12), record("ته<DC00>ران", 0, 6)]
    src.write_text("[\n" + ",\n".join(items) + "\n]\n", encoding="utf-8")
    out = tmp_path / "out"
    refused(*build([src], out, capsys), src, 4, out)


def test_pretraining_text_refuses_it(tmp_path: Path) -> None:
    from parsner.data.pretext import read_texts

    src = tmp_path / "texts.jsonl"
    src.write_text('{"text": "سلام"}\n{"text": "' + esc("a<D800>") + '"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="lone surrogate") as info:
        read_texts([str(src)])
    assert info.value.line == 2


def test_utf8_encoded_surrogates_in_text_files_are_not_utf8(tmp_path: Path, capsys) -> None:
    """CESU-style bytes (ED A0 80) are refused by the strict decoder: no other check is needed."""
    src = tmp_path / "train.txt"
    src.write_bytes("تهران|B_LOC\n".encode() + b"x\xed\xa0\x80|O\n")
    out = tmp_path / "out"
    code, err = build([src], out, capsys)
    assert code == EXIT_USER_ERROR and f"{src}:2: " in err and "not valid UTF-8" in err
    assert not out.exists()


# ----------------------------------------------------------------------------------------- text to tag


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("surrogate") / "run", seed=3)


@pytest.fixture(scope="module")
def tagger(model_dir: Path):
    from parsner.inference.tagger import Tagger

    return Tagger.from_pretrained(model_dir, device="cpu")


@pytest.mark.parametrize(
    ("text", "char"),
    [("\ud800" + TEXT, 1), (TEXT + "\udfff", 17), ("علی به ته\udc00ران", 10), ("\ude00\ud83d", 1)],
)
def test_the_tagger_refuses_text_with_a_lone_surrogate(tagger, text: str, char: int) -> None:
    with pytest.raises(ValueError, match=f"text 1: a lone surrogate U\\+{ord(text[char - 1]):04X} at character {char}"):
        tagger.tag_documents([TEXT, text])
    with pytest.raises(ValueError, match="lone surrogate"):
        tagger(text)
    with pytest.raises(ValueError, match="sentence 0, word 1: a lone surrogate"):
        tagger.predict_words([["علی", text]])


def test_the_tagger_keeps_offsets_true_for_astral_characters(tagger) -> None:
    text = "😀 " + TEXT + " 😀"
    for e in tagger(text):
        check_entities(text, [e])
    assert tagger.tag_documents([text])[0].text == text


def test_predict_refuses_it_with_exit_2_and_no_output(model_dir: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "out.jsonl"
    code = main(["predict", "--model", str(model_dir), TEXT, "ته\ud800ران", "--output", str(target)])
    out, err = capsys.readouterr()
    assert code == EXIT_USER_ERROR and "argument 5 holds a lone surrogate U+D800 at character 3" in err
    assert out == "" and not target.exists()
    # surrogateescape'd argv bytes (what Python makes of non-UTF-8 bytes) still say which bytes
    code = main(["predict", "--model", str(model_dir), "a\udced\udca0\udc80"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "not valid UTF-8: b'a\\xed\\xa0\\x80'" in err


def test_predict_refuses_utf8_encoded_surrogates_in_files(model_dir: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(TEXT.encode() + b"\n" + b"\xed\xa0\x80" + TEXT.encode() + b"\n")
    target = tmp_path / "out.jsonl"
    code = main(["predict", "--model", str(model_dir), "--input", str(src), "--output", str(target)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and f"{src}:2: not valid UTF-8" in err and "Traceback" not in err
    assert not target.exists()


def test_predict_run_refuses_a_surrogate_that_passed_the_command_line(model_dir: Path, capsys) -> None:
    """``run()`` called with parsed args (no argv check) still refuses, naming the argument."""
    from parsner.cli import build_parser
    from parsner.errors import InputError as Err

    args = build_parser().parse_args(["predict", "--model", str(model_dir), "x\ud800"])
    with pytest.raises(Err, match="arg:1: contains a lone surrogate U\\+D800 at character 2"):
        args.func(args)


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ('{"text": "a\\ud800b"}', "invalid_text", '"text" holds a lone surrogate U+D800 at character 2'),
        ('{"texts": ["ok", "\\udc00"]}', "invalid_text", '"texts"[1] holds a lone surrogate U+DC00'),
        ('{"texts": ["\\ude00\\ud83d"]}', "invalid_text", '"texts"[0] holds a lone surrogate U+DE00'),
        ('{"te\\ud800xt": "x"}', "bad_shape", "got keys"),
    ],
)
def test_serve_refuses_it_with_422(body: str, code: str, fragment: str) -> None:
    from parsner.serving.server import ApiError, ServeOptions, parse_ner_request

    with pytest.raises(ApiError) as info:
        parse_ner_request(body.encode(), ServeOptions())
    assert info.value.status == 422 and info.value.code == code
    assert fragment in info.value.message
    info.value.message.encode("utf-8")  # the error answer itself can be sent


def test_serve_accepts_whole_characters() -> None:
    from parsner.serving.server import ServeOptions, parse_ner_request

    texts, single = parse_ner_request(b'{"text": "\\ud83d\\ude00 ok"}', ServeOptions())
    assert texts == ["😀 ok"] and single


@pytest.mark.parametrize("name", ["map.json", "map.yaml"])
def test_a_label_map_holding_one_is_refused(tmp_path: Path, capsys, name: str) -> None:
    label_map = tmp_path / name
    label_map.write_text('{"PE\\ud800RS": "PER"}\n', encoding="utf-8")  # JSON and YAML read the escape alike
    src = tmp_path / "data.jsonl"
    src.write_text(_jsonl(TEXT, 7, 12) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    code, err = build([src], out, capsys, "--label-map", str(label_map))
    assert code == EXIT_USER_ERROR and f"{label_map}: the entry 'PE\\ud800RS'" in err and "lone surrogate" in err
    assert "Traceback" not in err and not out.exists()
