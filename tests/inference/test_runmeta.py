"""parsner.json has one owner (parsner.inference.runmeta): versioned, type-checked, lossless for unknown keys."""

from __future__ import annotations

import json

import pytest

from parsner.errors import ModelLoadError
from parsner.inference.runmeta import VERSION, RunMeta


def test_round_trip_keeps_unknown_keys(tmp_path) -> None:
    meta = RunMeta(max_length=256, labels=["O", "B-PER", "I-PER"], normalizer="parsbert", stand_in=True,
                   stand_in_description="tiny", extra={"backend": "onnx"})
    meta.save(tmp_path)
    data = json.loads((tmp_path / "parsner.json").read_text(encoding="utf-8"))
    assert data["version"] == VERSION and data["backend"] == "onnx"
    back = RunMeta.read(tmp_path)
    assert back == meta and back.stand_in_text == "tiny"


def test_missing_file_gives_defaults_and_older_files_still_read(tmp_path) -> None:
    assert RunMeta.read(tmp_path) == RunMeta()
    (tmp_path / "parsner.json").write_text(json.dumps({"max_length": 128, "stand_in": "random tiny"}), "utf-8")
    meta = RunMeta.read(tmp_path)  # no version, stand_in as a description: how earlier runs wrote it
    assert meta.max_length == 128 and meta.stand_in and meta.stand_in_text == "random tiny"
    assert RunMeta.from_dict({"stride": None}).stride == RunMeta().stride


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"version": 99}', "version 99 is not supported"),
        ('{"max_length": "512"}', "max_length is '512'"),
        ('{"constrained_decoding": 1}', "constrained_decoding"),
        ('{"labels": ["O", 3]}', "labels"),
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "not a valid parsner.json"),
    ],
)
def test_bad_files_are_named(tmp_path, text: str, match: str) -> None:
    (tmp_path / "parsner.json").write_text(text, encoding="utf-8")
    with pytest.raises(ModelLoadError, match=match):
        RunMeta.read(tmp_path)
