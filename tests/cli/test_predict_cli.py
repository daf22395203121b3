"""``parsner predict``: inputs (args, file, dir, stdin), formats, streaming, errors and atomic output."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from helpers.tagger import check_entities, predict
from parsner.cli import main
from parsner.errors import EXIT_USER_ERROR

TEXTS = [
    "علی رضایی در دانشگاه تهران گفت.",
    "سازمان ملل متحد در نیویورک اعلام کرد که ۳۵ درصد کمک‌ها به ایران می‌رسد.",
]


def test_jsonl_from_arguments(model: str, capsys) -> None:
    code, out, err = predict(["--model", model, *TEXTS], capsys)
    assert code == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in recs] == ["arg:1", "arg:2"]
    assert [r["text"] for r in recs] == TEXTS
    for r in recs:
        check_entities(r["text"], r["entities"])
    assert sum(len(r["entities"]) for r in recs) > 0
    assert "2 text(s)" in err


def test_file_input_answers_every_line(model: str, tmp_path: Path, capsys) -> None:
    f = tmp_path / "in.txt"
    f.write_bytes(("\ufeff" + TEXTS[0] + "\r\n\n" + TEXTS[1] + "\n").encode("utf-8"))
    code, out, err = predict(["--model", model, "--input", str(f), "--batch-size", "1"], capsys)
    assert code == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in recs] == [f"{f}:1", f"{f}:2", f"{f}:3"]
    assert [r["text"] for r in recs] == [TEXTS[0], "", TEXTS[1]]  # BOM and CR are not text
    assert recs[1]["entities"] == []


def test_directory_input_one_text_per_file(model: str, tmp_path: Path, capsys) -> None:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "b.txt").write_text(TEXTS[1] + "\n" + TEXTS[0], encoding="utf-8")
    (d / "a.txt").write_text(TEXTS[0], encoding="utf-8")
    (d / "skip.md").write_text("not me", encoding="utf-8")
    code, out, err = predict(["--model", model, "--input", str(d)], capsys)
    assert code == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert [Path(r["id"]).name for r in recs] == ["a.txt", "b.txt"]
    assert recs[1]["text"] == TEXTS[1] + "\n" + TEXTS[0]
    check_entities(recs[1]["text"], recs[1]["entities"])


class _StreamingStdin:
    """A stdin whose lines record how much output already exists when each one is read."""

    def __init__(self, lines: list[str], out: io.StringIO) -> None:
        self.lines, self.out, self.seen = lines, out, []

    def isatty(self) -> bool:
        return False

    @property
    def buffer(self):
        def gen():
            for line in self.lines:
                self.seen.append(len(self.out.getvalue()))
                yield (line + "\n").encode("utf-8")

        return gen()


def test_stdin_results_stream_before_input_ends(model: str, monkeypatch) -> None:
    out = io.StringIO()
    stdin = _StreamingStdin([TEXTS[0], TEXTS[1], TEXTS[0]], out)
    monkeypatch.setattr("sys.stdin", stdin)
    monkeypatch.setattr("sys.stdout", out)
    assert main(["predict", "--model", model, "--input", "-", "--batch-size", "1"]) == 0
    assert stdin.seen[0] == 0
    assert 0 < stdin.seen[1] < stdin.seen[2] < len(out.getvalue())
    ids = [json.loads(x)["id"] for x in out.getvalue().splitlines()]
    assert ids == ["<stdin>:1", "<stdin>:2", "<stdin>:3"]


def test_html_output_file(model: str, tmp_path: Path, capsys) -> None:
    target = tmp_path / "out" / "page.html"
    argv = ["--model", model, "--format", "html", "--output", str(target), "<b>تهران</b>", *TEXTS]
    code, _, err = predict(argv, capsys)
    assert code == 0, err
    page = target.read_text(encoding="utf-8")
    assert '<html lang="fa" dir="rtl">' in page and page.count("<article>") == 3
    for label in ("LOC", "ORG", "PER"):  # the legend lists every type the model knows
        assert f"<b>{label}</b>" in page
    assert page.count("<b>") == 3 and page.count("&lt;") == 2  # the user's "<b>" is text, not markup
    assert not list(tmp_path.glob("out/.*tmp*"))


def test_conll_text_and_json_formats(model: str, capsys) -> None:
    code, out, _ = predict(["--model", model, "--format", "conll", TEXTS[0]], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "-DOCSTART-\tO"
    rows = [ln.split("\t") for ln in lines[2:] if ln]
    assert [w for w, _ in rows] == ["علی", "رضایی", "در", "دانشگاه", "تهران", "گفت", "."]
    assert all(re.fullmatch(r"O|[BI]-(LOC|ORG|PER)", t) for _, t in rows)

    code, out, _ = predict(["--model", model, "--format", "text", TEXTS[1]], capsys)
    assert code == 0
    assert re.sub(r"\[([^\]]*)\]\((LOC|ORG|PER)\)", r"\1", out.rstrip("\n")) == TEXTS[1]

    code, out, _ = predict(["--model", model, "--format", "json", *TEXTS], capsys)
    assert code == 0
    assert [r["text"] for r in json.loads(out)] == TEXTS


def test_bad_utf8_input_fails_cleanly_without_output(model: str, tmp_path: Path, capsys) -> None:
    f = tmp_path / "bad.txt"
    f.write_bytes(TEXTS[0].encode() + b"\n" + TEXTS[1].encode() + b"\nabc \xff\xfe def\n")
    target = tmp_path / "res.jsonl"
    argv = ["--model", model, "--input", str(f), "--output", str(target), "--batch-size", "1"]
    code, _, err = predict(argv, capsys)
    assert code == EXIT_USER_ERROR
    assert f"{f}:3" in err and "UTF-8" in err
    assert not target.exists() and list(tmp_path.iterdir()) == [f]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "{tmp}/missing", "x"], "not found"),
        (["--model", "{model}"], "nothing to tag"),
        (["--model", "{model}", "--input", "{tmp}/nope.txt"], "not found"),
        (["--model", "{model}", "--input", "{tmp}"], "no *.txt"),
        (["--model", "{model}", "--batch-size", "0", "x"], "--batch-size"),
    ],
)
def test_user_errors_exit_2(model: str, tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    argv = [a.format(tmp=tmp_path, model=model) for a in argv]
    code, out, err = predict(argv, capsys)
    assert code == EXIT_USER_ERROR
    assert message in err and out == ""


# ------------------------------------------------------------------------------------------ --min-score


def _entities(out: str) -> list[dict]:
    return [e for line in out.splitlines() for e in json.loads(line)["entities"]]


def test_min_score_keeps_only_entities_scored_at_least_it(model: str, tmp_path: Path, capsys) -> None:
    """--min-score 0.9 on a model whose calibration.json spreads scores over 0.5-1.0: only entities >= 0.9 stay,
    exactly those of the unfiltered run; the CoNLL output tags the dropped ones' words O."""
    import shutil

    from parsner.inference.calibration import Calibrator

    run = tmp_path / "calibrated"
    shutil.copytree(model, run)
    code, out, err = predict(["--model", str(run), *TEXTS], capsys)
    assert code == 0, err
    raw = sorted(e["score"] for e in _entities(out))
    assert len(raw) >= 2
    mid = raw[len(raw) // 2]  # half the raw scores calibrate to >= 0.9, half below
    Calibrator(x=[0.0, mid, 1.0], y=[0.5, 0.9, 1.0]).save(run)
    code, out, err = predict(["--model", str(run), *TEXTS], capsys)
    assert code == 0, err
    every = _entities(out)
    assert any(e["score"] < 0.9 for e in every) and any(e["score"] >= 0.9 for e in every)
    code, out, err = predict(["--model", str(run), "--min-score", "0.9", *TEXTS], capsys)
    assert code == 0, err
    kept = _entities(out)
    assert kept == [e for e in every if e["score"] >= 0.9]
    code, out, err = predict(["--model", str(run), "--min-score", "0.9", "--format", "conll", *TEXTS], capsys)
    assert code == 0, err
    begins = sum(line.split()[-1].startswith("B-") for line in out.splitlines() if line.strip()
                 and not line.startswith("#"))
    assert begins == len(kept)


@pytest.mark.parametrize("value", ["-0.1", "1.01", "abc", "nan", ""])
def test_bad_min_score_exits_2_before_loading(tmp_path: Path, capsys, value: str) -> None:
    code, out, err = predict(["--model", str(tmp_path / "no-model"), "--min-score", value, "x"], capsys)
    assert code == EXIT_USER_ERROR and out == ""
    assert "--min-score" in err and "from 0 to 1" in err


def test_min_score_applies_to_records_too(model: str, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(TEXTS)),
                   encoding="utf-8")
    counts = {}
    for floor in ("0", "1"):
        out = tmp_path / f"out-{floor}.jsonl"
        code, _, err = predict(["--model", model, "--input", str(src), "--output", str(out), "-q",
                                "--min-score", floor], capsys)
        assert code == 0, err
        counts[floor] = sum(len(json.loads(line)["entities"]) for line in out.read_text(encoding="utf-8").splitlines())
    assert counts["0"] > 0 and counts["1"] == 0  # raw span probabilities of a random model stay below 1
