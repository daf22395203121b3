"""A feature-CRF run folder is checked before crfsuite's C code reads it: damage is a ModelLoadError, never a signal.

``model.crfsuite`` is truncated, has bytes flipped in its header, chunk headers and offsets (each refused), and
random damage anywhere (refused, or harmless: crfsuite must then open and tag without dying). ``crf.json`` values
outside what training writes are refused naming the key. Loading runs in child processes, so a crash shows as a
negative return code instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.train import make_sentences, run_cli, save_dataset
from parsner.data.wordfeatures import MAX_AFFIX, MAX_NAME_WORDS, MAX_WINDOW, FeatureSpec, FeatureSpecError

pytest.importorskip("pycrfsuite", reason="the feature CRF needs python-crfsuite: pip install 'parsner[crf]'")

MISSING = object()  # a key left out of crf.json
TEXT = "حمید رحمانی در تهران با بانک مرکزی دیدار کرد"
# Loads every folder named on the command line through the public Tagger; one JSON line per folder.
LOAD_ALL = """
import json, sys
from parsner import Tagger
from parsner.errors import ModelLoadError
for d in sys.argv[2:]:
    try:
        ents = Tagger.from_pretrained(d)(sys.argv[1])
        print(json.dumps({"dir": d, "entities": len(ents)}), flush=True)
    except ModelLoadError as exc:
        print(json.dumps({"dir": d, "error": str(exc)}), flush=True)
"""


@pytest.fixture(scope="module")
def crf_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crf_trust")
    data = save_dataset(root / "data", {"train": make_sentences(80, 1), "validation": make_sentences(20, 2),
                                        "test": make_sentences(5, 3)})
    cfg = root / "crf.yaml"
    cfg.write_text(f"data: {data}\nmodel: crf\nseed: 5\ncrf_max_iterations: 20\ncluster_sizes: [4, 8]\n"
                   "cluster_min_count: 2\nlogging_steps: 10\n", encoding="utf-8")
    res = run_cli(["train", "--config", str(cfg), "--out", str(root / "run")])
    assert res.returncode == 0, res.stderr
    return root / "run"


def _variant(run: Path, dest: Path, model: bytes | None = None, spec: str | None = None) -> Path:
    shutil.copytree(run, dest)
    if model is not None:
        (dest / "model.crfsuite").write_bytes(model)
    if spec is not None:
        (dest / "crf.json").write_text(spec, encoding="utf-8")
    return dest


def _load_in_child(dirs: list[Path]) -> dict[str, dict]:
    """Each folder loaded (and used) in one child process; it must end normally, never by a signal."""
    res = subprocess.run([sys.executable, "-c", LOAD_ALL, TEXT, *map(str, dirs)], capture_output=True, text=True,
                         timeout=300, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, f"the loading process ended with {res.returncode}: {res.stderr[-2000:]}"
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == len(dirs)
    return {row["dir"]: row for row in rows}


def _header_fields(model: bytes) -> dict[str, int]:
    names = ("size", "version", "num_features", "num_labels", "num_attrs",
             "off_features", "off_labels", "off_attrs", "off_labelrefs", "off_attrrefs")
    values = struct.unpack_from("<I4xIIIIIIIII", model, 4)
    return dict(zip(names, values, strict=True))


def _flip(model: bytes, at: int, mask: int = 0x80) -> bytes:
    out = bytearray(model)
    out[at] ^= mask
    return bytes(out)


def _damaged_models(model: bytes) -> dict[str, bytes]:
    """Truncations (0 bytes, every 1/20, one byte short) and flips of every field crfsuite follows."""
    out = {f"cut{n}": model[:n] for n in sorted({0, 1, 47, 48, *(len(model) * k // 20 for k in range(1, 20)),
                                                 len(model) - 1})}
    out["padded"] = model + b"\0" * 8
    h = _header_fields(model)
    out["magic"], out["type"] = _flip(model, 0, 0x01), _flip(model, 8, 0x01)
    for k, name in enumerate(("size", "version", None, "num_labels", "num_attrs", "off_features", "off_labels",
                              "off_attrs", "off_labelrefs", "off_attrrefs")):
        if name is None:
            continue  # num_features: crfsuite writes 0 there and never reads it
        at = 4 if name == "size" else 12 + 4 * (k - 1)
        out[f"{name}+1"] = _flip(model, at, 0x01)  # near: a misaligned chunk, a count off by one
        out[f"{name}-high"] = _flip(model, at + 3)  # far: past the end of the file
    for chunk in ("off_features", "off_labels", "off_attrs", "off_labelrefs", "off_attrrefs"):
        off = h[chunk]
        out[f"{chunk}:magic"] = _flip(model, off, 0x01)
        out[f"{chunk}:size"] = _flip(model, off + 7)
    out["features:count"] = _flip(model, h["off_features"] + 11)
    for table in ("off_labels", "off_attrs"):  # CQDB: byte-order mark, backward-array offset, first table ref
        out[f"{table}:order"] = _flip(model, h[table] + 12, 0x01)
        out[f"{table}:bwd"] = _flip(model, h[table] + 23)
        out[f"{table}:tables"] = bytes(model[:h[table] + 24]) + b"\xff" * 2048 + model[h[table] + 24 + 2048:]
    first_list = struct.unpack_from("<I", model, h["off_attrrefs"] + 12)[0]
    out["attrref:list-offset"] = _flip(model, h["off_attrrefs"] + 15)
    out["attrref:list-count"] = _flip(model, first_list + 3)
    return out


@pytest.mark.slow
def test_a_truncated_or_damaged_model_is_refused_never_a_signal(crf_run: Path, tmp_path: Path) -> None:
    model = (crf_run / "model.crfsuite").read_bytes()
    variants = _damaged_models(model)
    dirs = {name: _variant(crf_run, tmp_path / name.replace(":", "_"), model=data) for name, data in variants.items()}
    rows = _load_in_child([crf_run, *dirs.values()])
    assert rows[str(crf_run)]["entities"] >= 2  # the intact run loads and tags
    for name, d in dirs.items():
        row = rows[str(d)]
        assert "error" in row, f"{name}: loaded"
        assert row["error"].startswith(f"{d / 'model.crfsuite'}: ") and "\n" not in row["error"], row
    # the command line: one message, exit 2, for a spread of them
    for name in ("cut0", "cut47", f"cut{len(model) // 2}", f"cut{len(model) - 1}", "size-high", "off_attrs+1",
                 "off_labels:tables", "attrref:list-count"):
        res = run_cli(["predict", "--model", str(dirs[name]), TEXT], timeout=120)
        assert res.returncode == 2, (name, res.returncode, res.stderr)
        assert "model.crfsuite: damaged or not a CRFsuite model" in res.stderr, (name, res.stderr)


@pytest.mark.slow
def test_random_damage_anywhere_is_refused_or_harmless(crf_run: Path, tmp_path: Path) -> None:
    """Flips inside chunk bodies (weights, hashes, strings) can leave a model that loads: it must still tag."""
    run = _variant(crf_run, tmp_path / "run")
    script = """
import random, sys
from pathlib import Path
from parsner.errors import ModelLoadError
from parsner.inference.crf_tagger import CrfRunner
run = Path(sys.argv[1]); model = (run / "model.crfsuite").read_bytes(); rng = random.Random(int(sys.argv[2]))
words = [["حمید", "رحمانی", "به", "تهران", "رفت"], ["بانک", "مرکزی"], ["ناشناخته"]]
counts = {"refused": 0, "tagged": 0}
for k in range(int(sys.argv[3])):
    data = bytearray(model)
    for _ in range(1 if k % 2 else rng.randint(2, 6)):
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    (run / "model.crfsuite").write_bytes(bytes(data))
    try:
        runner = CrfRunner(run, [])
    except ModelLoadError:
        counts["refused"] += 1
        continue
    runner.tag_words(words)  # what the check lets through tags (differently, maybe) without an exception
    counts["tagged"] += 1
print(counts["refused"], counts["tagged"])
"""
    res = subprocess.run([sys.executable, "-c", script, str(run), "7", "1500"], capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, f"ended with {res.returncode}: {res.stderr[-2000:]}"
    refused, tagged = map(int, res.stdout.split())
    assert refused + tagged == 1500 and refused > 1000  # most damage is structural and said as such


def test_the_check_costs_little_and_accepts_what_training_writes(crf_run: Path) -> None:
    import time

    from parsner.inference.crf_tagger import check_crfsuite_model

    model = (crf_run / "model.crfsuite").read_bytes()
    t0 = time.perf_counter()
    tags = check_crfsuite_model(model)
    assert time.perf_counter() - t0 < 1.0
    meta = json.loads((crf_run / "parsner.json").read_text(encoding="utf-8"))
    assert set(tags) <= set(meta["labels"]) and "O" in tags


@pytest.mark.parametrize(("change", "key"), [
    ({"window": 1e8}, "window"),
    ({"window": 100000000}, "window"),
    ({"affix": -5}, "affix"),
    ({"affix": 9}, "affix"),
    ({"window": "2"}, "window"),
    ({"window": True}, "window"),
    ({"window": 2.0}, "window"),
    ({"clusters": "4_1"}, "clusters"),
    ({"clusters": {"تهران": "4_1"}}, "clusters"),
    ({"clusters": {"تهران": [4, 1]}}, "clusters"),
    ({"clusters": {"تهران": ["4_1", "8_2"], "مشهد": ["4_1"]}}, "clusters"),
    ({"gazetteer": {"بانک مرکزی": "ORG"}}, "gazetteer"),
    ({"gazetteer": [["بانک مرکزی", "ORG"]]}, "gazetteer"),
    ({"gazetteer": {" ".join(["نام"] * (MAX_NAME_WORDS + 1)): ["PER"]}}, "gazetteer"),
    ({"gazetteer": {"": ["PER"]}}, "gazetteer"),
    ({"extra": 1}, "extra"),
    ({"window": None}, "window"),
    ({"window": MISSING}, "window"),
    ({"clusters": MISSING}, "clusters"),
])
def test_bad_feature_settings_are_refused_naming_the_key(crf_run: Path, tmp_path: Path, change: dict,
                                                         key: str) -> None:
    from parsner.errors import ModelLoadError
    from parsner.inference.crf_tagger import read_feature_spec

    spec = json.loads((crf_run / "crf.json").read_text(encoding="utf-8"))
    spec.update(change)
    spec = {k: v for k, v in spec.items() if v is not MISSING}
    (tmp_path / "crf.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ModelLoadError) as info:
        read_feature_spec(tmp_path)
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / 'crf.json'}: ") and f"key {key!r}" in msg and "\n" not in msg, msg


@pytest.mark.parametrize(("text", "says"), [
    ('{"window": 2, "window": 3, "affix": 4, "clusters": {}, "gazetteer": {}}', "duplicate key"),
    ("[" * 100_000, "nested deeper"),
    ('{"window": 2, "affix": 4, "clusters": {"a": ["\\ud800"]}, "gazetteer": {}}', "lone surrogate"),
    ("[1, 2]", "'(top level)'"),
    ("not json", "not valid CRF feature settings"),
])
def test_malformed_feature_json_is_refused(tmp_path: Path, text: str, says: str) -> None:
    from parsner.errors import ModelLoadError
    from parsner.inference.crf_tagger import read_feature_spec

    (tmp_path / "crf.json").write_text(text, encoding="utf-8")
    with pytest.raises(ModelLoadError) as info:
        read_feature_spec(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'crf.json'}: ") and says in str(info.value)


def test_predict_refuses_a_huge_window_at_once(crf_run: Path, tmp_path: Path) -> None:
    spec = json.loads((crf_run / "crf.json").read_text(encoding="utf-8"))
    run = _variant(crf_run, tmp_path / "run", spec=json.dumps({**spec, "window": 1e8}))
    res = run_cli(["predict", "--model", str(run), TEXT], timeout=60)  # it used to hang here
    assert res.returncode == 2 and "crf.json: not valid CRF feature settings (key 'window': " in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_feature_spec_limits_are_training_limits() -> None:
    from dataclasses import fields

    from parsner.training.config import CrfOptions

    meta = {f.name: f.metadata for f in fields(CrfOptions)}
    assert (meta["crf_window"]["ge"], meta["crf_window"]["le"]) == (0, MAX_WINDOW)
    assert (meta["crf_affix"]["ge"], meta["crf_affix"]["le"]) == (0, MAX_AFFIX)
    assert meta["gazetteer_max_words"]["le"] == MAX_NAME_WORDS
    # every value training can write reads back unchanged
    spec = FeatureSpec(window=MAX_WINDOW, affix=0, clusters={"a": ["4_1", "8_3"]}, gazetteer={"x y": ["PER"]})
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(FeatureSpecError, match="key 'window'"):
        FeatureSpec.from_dict({**spec.to_dict(), "window": MAX_WINDOW + 1})


def test_random_flips_shuffle_nothing_into_the_feature_settings() -> None:
    """Only whole numbers in range and string lists pass; anything else is a FeatureSpecError."""
    rng = random.Random(3)
    junk = [None, True, 1.5, -1, 10**9, "", "x", [], {}, ["a", 1], {"a": "b"}, [[1]]]
    for _ in range(300):
        spec = {"window": 2, "affix": 4, "clusters": {"a": ["4_1"]}, "gazetteer": {"b c": ["PER"]}}
        key = rng.choice(list(spec))
        spec[key] = rng.choice(junk)
        try:
            got = FeatureSpec.from_dict(spec)
        except FeatureSpecError as exc:
            assert exc.key == key
            continue
        assert key in ("clusters", "gazetteer") and spec[key] == {}  # an empty table: no such features
        assert getattr(got, key) == {}


def test_a_sentence_without_end_is_tagged_in_pieces_as_if_whole(crf_run: Path) -> None:
    """Text with no sentence ends reaches the CRF as one "sentence": tagged in pieces, memory stays bounded
    (120,000 words: 891 MB whole, 57 MB in pieces), and the tags are those of the whole-sentence Viterbi path."""
    from parsner.data.wordfeatures import sentence_features
    from parsner.inference.crf_tagger import PIECE_WORDS, CrfRunner

    rng = random.Random(0)
    vocab = ["حمید", "رحمانی", "به", "تهران", "رفت", "و", "بانک", "مرکزی", "با", "دیدار", "کرد", "مریم", "در"]
    words = [rng.choice(vocab) for _ in range(2 * PIECE_WORDS + 500)]
    runner = CrfRunner(crf_run, [])
    [(tags, scores)] = runner.tag_words([words])
    runner._tagger.set(sentence_features(words, runner.spec))
    assert tags == list(runner._tagger.tag()) and len(scores) == len(words)
    assert all(0 < s <= 1 for s in scores)
    assert runner.tag_words([[], ["تهران"]])[0] == ([], [])


def test_a_changed_weight_is_caught_by_the_digest_training_recorded(crf_run: Path, tmp_path: Path) -> None:
    """A change the layout check cannot see (one weight, still finite) is refused through parsner.json's sha256;
    a run from before the digest was recorded still loads."""
    meta = json.loads((crf_run / "parsner.json").read_text(encoding="utf-8"))
    model = bytearray((crf_run / "model.crfsuite").read_bytes())
    assert len(meta["crfsuite_sha256"]) == 64
    off = _header_fields(bytes(model))["off_features"] + 12  # the chunk header, then the first feature's weight
    weight = struct.unpack_from("<d", model, off + 12)[0]
    struct.pack_into("<d", model, off + 12, weight + 1.0)
    changed = _variant(crf_run, tmp_path / "changed", model=bytes(model))
    older = _variant(crf_run, tmp_path / "older")
    del meta["crfsuite_sha256"]
    (older / "parsner.json").write_text(json.dumps(meta), encoding="utf-8")
    rows = _load_in_child([changed, older])
    assert "sha256 differs" in rows[str(changed)]["error"] and rows[str(changed)]["error"].startswith(str(changed))
    assert "entities" in rows[str(older)]
