"""``parsner.data.strictjson``: what every reader of outside JSON refuses, and what it must still read."""

from __future__ import annotations

import json

import pytest

from parsner.data.strictjson import DEFAULT_MAX_DEPTH, JSONRefused, check_depth, loads


@pytest.mark.parametrize("doc", [
    {"text": "علی به تهران رفت", "entities": [{"start": 0, "end": 3}], "متا": {"منبع": "ایرنا"}},
    {"text": 'brackets in strings: [[[[{{{{ and "quotes" and \\ backslashes ]]]]'},
    [[[[[]]]]],
    "a string",
    12.5,
    None,
])
def test_what_json_reads_strictjson_reads_the_same(doc: object) -> None:
    for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False), json.dumps(doc, indent=2)):
        assert loads(text) == doc
        assert loads(text.encode("utf-8")) == doc


def test_depth_is_counted_outside_strings_only() -> None:
    inside = json.dumps({"t": "[" * 10_000})
    assert loads(inside) == {"t": "[" * 10_000}
    at_limit = "[" * DEFAULT_MAX_DEPTH + "]" * DEFAULT_MAX_DEPTH
    assert loads(at_limit) is not None
    with pytest.raises(JSONRefused, match=f"nested deeper than {DEFAULT_MAX_DEPTH}") as info:
        loads("[" * (DEFAULT_MAX_DEPTH + 1) + "]" * (DEFAULT_MAX_DEPTH + 1))
    assert (info.value.line, info.value.column) == (1, DEFAULT_MAX_DEPTH + 1)
    with pytest.raises(JSONRefused, match="nested deeper than 3"):
        check_depth('{"a": {"b": [{"c": 1}]}}', max_depth=3)


@pytest.mark.parametrize(("data", "says"), [
    ("[" * 200_000, "nested deeper than 64"),
    ('{"text": "a", "text": "b"}', 'duplicate key "text"'),
    ('{"a": {"متن": 1, "متن": 2}}', 'duplicate key "متن"'),
    (b'{"text": "\xd8"}', "not UTF-8 (byte 10"),
    ('{"text": ', "malformed JSON"),
    ('{"n": ' + "9" * 5000 + "}", "unreadable JSON"),
])
def test_hostile_json_is_one_clear_refusal(data: str | bytes, says: str) -> None:
    with pytest.raises(JSONRefused, match=says.replace("(", r"\(")):
        loads(data)


def test_an_unterminated_run_of_escaped_quotes_is_refused_in_linear_time() -> None:
    """Every escaped quote could start a string: a scan that retried from each one would take minutes here."""
    line = '{"text": "' + '\\"' * 2_000_000
    with pytest.raises(JSONRefused, match="Unterminated string"):
        loads(line)
    with pytest.raises(JSONRefused, match="malformed"):
        loads("[" + "[]," * 70 + '"' + '\\"' * 2_000_000)


def test_a_refusal_is_a_value_error_with_its_place() -> None:
    with pytest.raises(ValueError) as info:
        loads('{\n  "a": [1,\n  }')
    assert isinstance(info.value, JSONRefused)
    assert info.value.line == 3 and "(line 3, column" in str(info.value)
