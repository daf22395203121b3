"""Pre-annotations (``parsner predict --format labelstudio|doccano|brat``) read back to the same entities."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.annotation import entities
from parsner.cli import main
from parsner.data.readers import read_file
from parsner.data.wordtok import tokenize_words
from parsner.serving.preannotate import BratWriter, DoccanoWriter, LabelStudioWriter, brat_name, uncertainty

VOCAB = [
    "تهران",
    "علی‌اکبر",
    "می‌شود",
    "۱۴۰۳",
    "٢٫٤",
    "درصد",
    "😀",
    "🇮🇷",
    "FIFA",
    "ایرنا",
    "«خبر»",
    "،",
    "رفت",
    "ك",
]


@dataclass
class Doc:
    text: str
    entities: list[dict] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


@st.composite
def tagged_docs(draw) -> Doc:
    """A random text with whole-word entities (as the tagger gives them) that do not cross a line."""
    n = draw(st.integers(1, 14))
    parts = draw(st.lists(st.sampled_from(VOCAB), min_size=n, max_size=n))
    seps = draw(st.lists(st.sampled_from([" ", " ", "  ", "\n", ". "]), min_size=n, max_size=n))
    text = "".join(w + s for w, s in zip(parts, seps, strict=True)).rstrip() or "تهران"
    words = tokenize_words(text)
    ents, i = [], 0
    while i < len(words):
        length = draw(st.integers(0, 3))
        if length and i + length <= len(words):
            a, b = words[i].start, words[i + length - 1].end
            if "\n" not in text[a:b]:
                label = draw(st.sampled_from(["PER", "LOC", "ORG", "DAT", "PCT"]))
                ents.append({"text": text[a:b], "label": label, "start": a, "end": b, "score": 0.5})
                i += length + 1  # a gap, so that two entities never merge into one
                continue
        i += 1
    scores = draw(st.lists(st.floats(0.05, 1.0), min_size=len(words), max_size=len(words)))
    return Doc(text, ents, scores)


def _spans(doc: Doc) -> set[tuple[int, int, str]]:
    return {(e["start"], e["end"], e["label"]) for e in doc.entities}


def _accepted(tasks: list[dict]) -> list[dict]:
    """What Label Studio exports after annotators submit the pre-annotations unchanged."""
    out = []
    for k, task in enumerate(tasks, 1):
        result = task["predictions"][0]["result"]
        out.append({"id": k, "data": task["data"], "annotations": [{"completed_by": 1, "result": result}]})
    return out


def _to_utf16(tasks: list[dict]) -> list[dict]:
    """The same export as an older Label Studio wrote it: offsets in UTF-16 code units."""
    for task in tasks:
        text = task["data"]["text"]
        for ann in task["annotations"]:
            for r in ann["result"]:
                v = r["value"]
                v["start"] = len(text[: v["start"]].encode("utf-16-le")) // 2
                v["end"] = len(text[: v["end"]].encode("utf-16-le")) // 2
    return tasks


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(tagged_docs(), min_size=1, max_size=4))
def test_round_trip_every_tool_format(tmp_path_factory: pytest.TempPathFactory, docs: list[Doc]) -> None:
    tmp = tmp_path_factory.mktemp("rt")
    ids = [f"in.txt:{k}" for k in range(1, len(docs) + 1)]
    want = [_spans(d) for d in docs]

    buf = io.StringIO()
    w = LabelStudioWriter(buf, model_version="m")
    w.begin()
    for i, d in zip(ids, docs, strict=True):
        w.write(i, d)
    w.end()
    tasks = _accepted(json.loads(buf.getvalue()))
    for name, data in (("ls.json", tasks), ("ls16.json", _to_utf16(json.loads(json.dumps(tasks))))):
        (tmp / name).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        res = read_file(tmp / name)
        assert res.format == "labelstudio"
        got = entities(res)
        assert [got[str(k)] for k in range(1, len(docs) + 1)] == want
        assert [res.texts[str(k)] for k in range(1, len(docs) + 1)] == [d.text for d in docs]

    buf = io.StringIO()
    w2 = DoccanoWriter(buf)
    for i, d in zip(ids, docs, strict=True):
        w2.write(i, d)
    (tmp / "d.jsonl").write_text(buf.getvalue(), encoding="utf-8")
    got = entities(read_file(tmp / "d.jsonl"))
    assert [got[i] for i in ids] == want

    folder = tmp / "brat"
    folder.mkdir()
    w3 = BratWriter(folder, labels=["O", "B-PER", "I-PER"])
    for i, d in zip(ids, docs, strict=True):
        w3.write(i, d)
    w3.end()
    res = read_file(folder)
    got = entities(res)
    assert [got[brat_name(i)] for i in ids] == want
    assert [res.texts[brat_name(i)] for i in ids] == [d.text for d in docs]


def test_uncertainty_is_the_least_certain_word() -> None:
    assert uncertainty(Doc("a b", scores=[0.9, 0.6])) == pytest.approx(0.4)
    assert uncertainty(Doc("", scores=[])) == 0.0


def test_brat_names() -> None:
    assert brat_name("news/a.txt") == "a"
    assert brat_name("in.txt:3") == "in-3"
    assert brat_name("arg:1") == "arg-1"
    assert brat_name("<stdin>:2") == "stdin-2"


# ----------------------------------------------------------------------------------------- the CLI loop


TEXTS = [
    "علی رضایی در دانشگاه تهران گفت.",
    "سازمان ملل متحد 😀 در نیویورک اعلام کرد که ۳۵ درصد کمک‌ها به ایران می‌رسد.",
    "هوا امروز آفتابی است.",
]


def _predict(model: str, tmp_path: Path, fmt: str, *extra: str) -> Path:
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / f"out.{fmt}"
    code = main(
        ["predict", "--model", model, "--input", str(inp), "--format", fmt, "--output", str(out), *extra]
    )
    assert code == 0
    return out


def test_predict_labelstudio_predictions(model: str, tmp_path: Path, capsys) -> None:
    out = _predict(model, tmp_path, "labelstudio")
    tasks = json.loads(out.read_text())
    assert [t["data"]["text"] for t in tasks] == TEXTS
    assert [t["data"]["doc_id"] for t in tasks] == [f"{tmp_path / 'in.txt'}:{k}" for k in (1, 2, 3)]
    for t in tasks:
        (pred,) = t["predictions"]
        assert pred["model_version"] == "run" and 0 <= pred["score"] <= 1
        for r in pred["result"]:
            v = r["value"]
            assert t["data"]["text"][v["start"] : v["end"]] == v["text"] and 0 <= r["score"] <= 1
    assert sum(len(t["predictions"][0]["result"]) for t in tasks) > 0
    # the annotators accept everything, export, and build: the same entities come back
    (tmp_path / "export.json").write_text(json.dumps(_accepted(tasks), ensure_ascii=False), encoding="utf-8")
    ds = tmp_path / "ds"
    assert main(["data", "build", str(tmp_path / "export.json"), "--out", str(ds), "-q"]) == 0
    got = entities(read_file(tmp_path / "export.json"))
    for k, t in enumerate(tasks, 1):
        want = {
            (r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
            for r in t["predictions"][0]["result"]
        }
        assert got[str(k)] == want


def test_predict_order_uncertainty(model: str, tmp_path: Path, capsys) -> None:
    plain = [json.loads(x) for x in _predict(model, tmp_path, "doccano").read_text().splitlines()]
    ordered = _predict(model, tmp_path, "labelstudio", "--order", "uncertainty")
    tasks = json.loads(ordered.read_text())
    scores = [t["predictions"][0]["score"] for t in tasks]
    assert scores == sorted(scores)  # least confident (most uncertain) first
    assert sorted(t["data"]["text"] for t in tasks) == sorted(r["text"] for r in plain)
    assert {r["id"]: r["label"] for r in plain} == {
        t["data"]["doc_id"]: [
            [r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]]
            for r in t["predictions"][0]["result"]
        ]
        for t in tasks
    }


def test_predict_brat_folder_reads_back(model: str, tmp_path: Path, capsys) -> None:
    out = _predict(model, tmp_path, "brat", "--order", "uncertainty")
    names = sorted(p.name for p in out.iterdir())
    assert "annotation.conf" in names and len([n for n in names if n.endswith(".ann")]) == 3
    assert all(n.startswith(("0000", "annotation")) for n in names)
    res = read_file(out)
    assert sorted(res.texts.values()) == sorted(TEXTS)
    code = main(["predict", "--model", model, "x", "--format", "brat", "--output", str(out)])
    assert code == 2 and "already exists" in capsys.readouterr().err
    code = main(["predict", "--model", model, "x", "--format", "brat"])
    assert code == 2 and "give --output DIR" in capsys.readouterr().err
