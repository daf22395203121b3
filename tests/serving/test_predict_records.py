"""``parsner predict --input ARCHIVE``: records in and out, bad records, JSON never tagged as text, resume."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.archive import AWKWARD_LINES, make_records, strip_entities, write_jsonl
from helpers.tagger import build_model_dir, check_entities, predict
from helpers.train import assert_no_traceback
from parsner.errors import EXIT_USER_ERROR
from parsner.serving.archive import RecordOptions, batches, file_sources, iter_records, survey
from parsner.serving.progress import Progress


def test_records_come_back_byte_for_byte_with_entities(model: str, tmp_path: Path, capsys) -> None:
    src = tmp_path / "news.jsonl"
    # a byte-order mark, CRLF line ends and a blank line are not records; everything else is kept as written
    raw = "\ufeff" + AWKWARD_LINES[0] + "\r\n" + "\n".join(AWKWARD_LINES[1:3]) + "\n\n" + "\n".join(AWKWARD_LINES[3:])
    src.write_bytes(raw.encode("utf-8"))
    code, out, err = predict(["--model", model, "--input", str(src), "--batch-size", "2"], capsys)
    assert code == 0, err
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(AWKWARD_LINES)  # one output record per input record
    n_ents = 0
    for given, line in zip(AWKWARD_LINES, lines, strict=False):
        body, ents = strip_entities(line)
        assert body == given.strip()[:-1].rstrip()  # the input record's own bytes: ids, meta, escapes, 1.50, 2.5e3
        text = json.loads(given)["text"]
        check_entities(text, ents)  # offsets true on the record's text
        n_ents += len(ents)
        rec = json.loads(line)
        assert list(rec)[-1] == "entities" and {k: v for k, v in rec.items() if k != "entities"} == json.loads(given)
    assert n_ents > 0 and f"{len(AWKWARD_LINES)} record(s)" in err
    assert isinstance(json.loads(lines[3])["big"], int)


def test_gz_and_folder_equal_the_plain_file(model: str, tmp_path: Path, capsys) -> None:
    recs = make_records(30, seed=2)
    plain = write_jsonl(tmp_path / "all.jsonl", recs)
    code, expected, err = predict(["--model", model, "--input", str(plain), "--batch-size", "4"], capsys)
    assert code == 0, err
    folder = tmp_path / "archive"
    folder.mkdir()
    write_jsonl(folder / "b.jsonl", recs[10:20])
    with gzip.open(folder / "a.jsonl.gz", "wt", encoding="utf-8") as fh:  # sorted by name: a before b before c
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs[:10]))
    write_jsonl(folder / "c.jsonl", recs[20:])
    (folder / "notes.md").write_text("not records", encoding="utf-8")
    code, out, err = predict(["--model", model, "--input", str(folder), "--batch-size", "4"], capsys)
    assert code == EXIT_USER_ERROR and "notes.md (not records)" in err and "--skip-unreadable" in err and out == ""
    code, out, err = predict(["--model", model, "--input", str(folder), "--batch-size", "4", "--skip-unreadable"],
                             capsys)
    assert code == 0, err
    assert f"left out {folder / 'notes.md'}: not records" in err
    assert out == expected
    assert [json.loads(x)["id"] for x in out.splitlines()] == [r["id"] for r in recs]


@pytest.mark.parametrize("line, reason", [
    ('{"id": 7, "body": "متن"}', "no 'text' field"),
    ('{"id": 7, "text": 12}', "'text' is a number, not a string"),
    ('{"id": 7, "text": null}', "'text' is null"),
    ('{"id": 7, "text": "ناتمام', "invalid JSON"),
    ('["text", "متن"]', "must be a JSON object"),
    ('{"text": "a\\u0000b"}', "NUL"),
    ('{"text": "متن", "entities": []}', "already has an 'entities' field"),
])
def test_a_bad_record_stops_before_tagging_with_file_and_line(model: str, tmp_path: Path, capsys, line: str,
                                                               reason: str) -> None:
    recs = [json.dumps(r, ensure_ascii=False) for r in make_records(5)]
    src = write_jsonl(tmp_path / "in.jsonl", [*recs[:3], line, *recs[3:]])
    target = tmp_path / "out" / "tagged.jsonl"
    code, out, err = predict(["--model", model, "--input", str(src), "--output", str(target)], capsys)
    assert code == EXIT_USER_ERROR
    assert f"{src}:4: " in err and reason in err and "--skip-bad" in err, err
    assert out == "" and not (tmp_path / "out").exists()  # nothing written, not even a partial file
    assert "Loading" not in err  # refused before the model was loaded

    code, out, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--skip-bad"], capsys)
    assert code == 0, err
    assert "skipping 1 bad record(s)" in err and "1 bad record(s) skipped" in err
    got = [json.loads(x)["id"] for x in target.read_text(encoding="utf-8").splitlines()]
    assert got == [json.loads(r)["id"] for r in recs]


def test_invalid_utf8_and_a_damaged_gzip_are_named(model: str, tmp_path: Path, capsys) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"text": "ok"}\n{"text": "\xff\xfe"}\n')
    code, _, err = predict(["--model", model, "--input", str(src)], capsys)
    assert code == EXIT_USER_ERROR and f"{src}:2: not valid UTF-8" in err
    gz = tmp_path / "cut.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"text": "ok"}\n' * 2000)[:-40])
    code, out, err = predict(["--model", model, "--input", str(gz), "--skip-bad"], capsys)
    assert code == EXIT_USER_ERROR and str(gz) in err and "gzip" in err and out == ""


@pytest.mark.parametrize("case", ["format-text", "json-file", "json-line-in-txt", "file-name-as-text", "stdin"])
def test_json_is_never_tagged_as_text(model: str, tmp_path: Path, capsys, monkeypatch, case: str) -> None:
    rec = json.dumps({"id": 1, "text": "علی به تهران رفت"}, ensure_ascii=False)
    argv = ["--model", model]
    if case == "format-text":
        argv += ["--input", str(write_jsonl(tmp_path / "a.jsonl", [rec])), "--input-format", "text"]
    elif case == "json-file":
        argv += ["--input", str(write_jsonl(tmp_path / "a.json", [rec]))]
    elif case == "json-line-in-txt":
        argv += ["--input", str(write_jsonl(tmp_path / "a.txt", ["", rec]))]
    elif case == "file-name-as-text":
        argv += ["articles.jsonl"]
    else:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((rec + "\n").encode("utf-8"))))
        argv += ["--input", "-"]
    code, out, err = predict(argv, capsys)
    assert code == EXIT_USER_ERROR and out == "", err
    assert ("JSON" in err or "file name" in err) and "Traceback" not in err
    if case == "json-line-in-txt":
        assert f"{tmp_path / 'a.txt'}:2:" in err


def test_stdin_records_and_other_fields(model: str, capsys, monkeypatch) -> None:
    lines = ['{"id": "x", "body": "علی رضایی در تهران"}', '{"id": "y", "body": "سازمان ملل"}']
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(("\n".join(lines) + "\n").encode("utf-8"))))
    code, out, err = predict(["--model", model, "--input", "-", "--input-format", "jsonl", "--text-field", "body",
                              "--entities-field", "ner"], capsys)
    assert code == 0, err
    for given, line in zip(lines, out.splitlines(), strict=True):
        body, ents = strip_entities(line, "ner")
        assert body == given[:-1]
        check_entities(json.loads(given)["body"], ents)


def test_record_options_are_refused_for_text(model: str, tmp_path: Path, capsys) -> None:
    src = tmp_path / "t.txt"
    src.write_text("علی به تهران رفت\n", encoding="utf-8")
    for extra in (["--resume"], ["--skip-bad"], ["--engine", "ray"], ["--text-field", "body"]):
        code, out, err = predict(["--model", model, "--input", str(src), *extra], capsys)
        assert code == EXIT_USER_ERROR and "plain text" in err and out == "", (extra, err)
    code, _, err = predict(["--model", model, "--input", str(src), "--workers", "2"], capsys)
    assert code == EXIT_USER_ERROR


def test_batches_after_a_boundary_are_those_of_the_whole_run(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", make_records(50, seed=3))
    opts = RecordOptions(batch_size=4, max_chars=300)  # cut by characters too
    whole = [[r.line for r in b] for b in batches(iter_records(file_sources([src]), opts), opts)]
    assert any(len(b) < 4 for b in whole[:-1])
    for resume_at in (0, 1, 5, 17, 49, 50):
        found = survey([src], opts, resume_at=resume_at)
        assert found.records == 50 and found.boundary <= resume_at
        ends = [sum(len(b) for b in whole[:k + 1]) for k in range(len(whole))]
        assert found.boundary == max([0, *[e for e in ends if e <= resume_at]])
        tail = [[r.line for r in b] for b in batches(iter_records(file_sources([src]), opts), opts,
                                                     start=found.boundary)]
        assert tail == whole[len([e for e in ends if e <= found.boundary]):]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_has_count_total_and_rate_on_a_terminal(caplog) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="parsner")  # as under `parsner COMMAND` (no -q)
    stream = _Terminal()
    bar = Progress("tagging", 1000, "records", stream=stream, delay=0.0)
    bar.update(10)
    bar.update(90)
    bar.close()
    last = stream.getvalue().rsplit("\r", 1)[-1]
    assert last.startswith("tagging:  10%") and "100/1000" in last and "records/s" in last, last
    assert bar.n == 100
    resumed = Progress("checking records", 5_000_000, "MB", stream=_Terminal(), delay=0.0, scale=1e6, initial=1000)
    resumed.set(3_000_000)
    resumed.close()
    assert resumed.n == 3_000_000 and "3.0/5.0" in resumed.stream.getvalue()
    off = Progress("tagging", None, stream=_Terminal(), enabled=False)
    off.update(5)
    assert off.n == 5 and off.stream.getvalue() == ""


# ----------------------------------------------------------------------------------------- resume


def _interrupted(model: str, src: Path, target: Path, batch_size: int = 4) -> subprocess.CompletedProcess:
    """Start predict in a subprocess and SIGTERM it once its partial output holds some records."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=os.pathsep.join(sys.path))
    argv = [sys.executable, "-m", "parsner", "predict", "--model", model, "--input", str(src), "--output",
            str(target), "--batch-size", str(batch_size)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = target.with_name(target.name + ".partial")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.exists() and partial.stat().st_size > 0:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.slow
def test_resume_after_sigterm_is_byte_identical(model: str, tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", make_records(400, seed=4))
    full = tmp_path / "full.jsonl"
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(full), "--batch-size", "4"],
                           capsys)
    assert code == 0, err
    target = tmp_path / "out" / "tagged.jsonl"
    res = _interrupted(model, src, target)
    assert_no_traceback(res.stderr)
    assert res.returncode == 128 + signal.SIGTERM, res.stderr[-2000:]
    assert "--resume" in res.stderr and not target.exists()
    partial = target.with_name("tagged.jsonl.partial")
    done = partial.read_bytes().count(b"\n")
    assert 0 < done < 400
    with partial.open("ab") as fh:  # as if killed in the middle of a write: a torn last line
        fh.write(b'{"id": "doc-99", "te')

    base = ["--model", model, "--input", str(src), "--output", str(target), "--batch-size", "4"]
    code, _, err = predict(base, capsys)
    assert code == EXIT_USER_ERROR and "--resume" in err  # an interrupted run is not silently replaced
    code, _, err = predict([*base[:-1], "8", "--resume"], capsys)
    assert code == EXIT_USER_ERROR and "batch_size 4 -> 8" in err
    other = build_model_dir(tmp_path / "other", seed=2)
    code, _, err = predict(["--model", str(other), *base[2:], "--resume"], capsys)
    assert code == EXIT_USER_ERROR and "model" in err

    code, _, err = predict([*base, "--resume"], capsys)
    assert code == 0, err
    assert f"resuming after {done - done % 4:,} records" in err
    assert target.read_bytes() == full.read_bytes()
    assert not partial.exists() and not target.with_name("tagged.jsonl.partial.json").exists()
    assert "tagged.jsonl" in json.loads((target.parent / ".parsner-outputs.json").read_text())["files"]


def test_resume_refuses_a_changed_input(model: str, tmp_path: Path, capsys, monkeypatch) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", make_records(40, seed=5))
    target = tmp_path / "tagged.jsonl"
    from parsner.inference.tagger import Tagger

    real = Tagger.tag_documents
    calls = {"n": 0}

    def stop_on_third(self, texts, batch_size=32):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, texts, batch_size)

    monkeypatch.setattr(Tagger, "tag_documents", stop_on_third)
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--batch-size", "5"],
                           capsys)
    monkeypatch.undo()
    assert code == 128 + signal.SIGINT and "after 10 of 40 records" in err
    partial = target.with_name("tagged.jsonl.partial")
    assert partial.read_bytes().count(b"\n") == 10

    src.write_text(src.read_text(encoding="utf-8").replace("doc-39", "doc-X"), encoding="utf-8")
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--batch-size", "5",
                            "--resume"], capsys)
    assert code == EXIT_USER_ERROR and f"{src.resolve()} changed" in err
    assert partial.read_bytes().count(b"\n") == 10  # refused: the partial output is left as it was

    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--batch-size", "5",
                            "--overwrite"], capsys)
    assert code == 0, err  # --overwrite starts again
    assert len(target.read_text(encoding="utf-8").splitlines()) == 40 and not partial.exists()


def test_a_partial_file_parsner_did_not_write_is_left_alone(model: str, tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", make_records(3))
    target = tmp_path / "tagged.jsonl"
    partial = target.with_name("tagged.jsonl.partial")
    partial.write_text("mine\n", encoding="utf-8")
    for extra in ([], ["--overwrite"], ["--resume"]):
        code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), *extra], capsys)
        assert code == EXIT_USER_ERROR and "not written by parsner" in err
    assert partial.read_text(encoding="utf-8") == "mine\n" and not target.exists()


# ----------------------------------------------------------------------------------------- Parquet


def test_parquet_in_parquet_out_keeps_every_column(model: str, tmp_path: Path, capsys) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from parsner.inference.tagger import Tagger

    rows = make_records(25, seed=8)
    table = pa.table({"id": pa.array(range(25), pa.int64()), "text": [r["text"] for r in rows],
                      "meta": [{"منبع": "ایرنا", "rank": i} for i in range(25)]})
    src = tmp_path / "news.parquet"
    pq.write_table(table, src)
    target = tmp_path / "out" / "tagged.parquet"
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--batch-size", "4"],
                           capsys)
    assert code == 0, err
    got = pq.read_table(target)
    assert got.column_names == ["id", "text", "meta", "entities"]
    assert got.select(["id", "text", "meta"]).equals(table)
    want = Tagger.from_pretrained(model, device="cpu")([r["text"] for r in rows], batch_size=4)
    for ents, ref in zip(got.column("entities").to_pylist(), want, strict=True):
        assert [(e["start"], e["end"], e["label"]) for e in ents] == [(e["start"], e["end"], e["label"]) for e in ref]

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "text": ["علی به تهران رفت", None, "مریم"]}), bad)
    out2 = tmp_path / "bad-out.parquet"
    code, _, err = predict(["--model", model, "--input", str(bad), "--output", str(out2)], capsys)
    assert code == EXIT_USER_ERROR and f"{bad}: row 2: column 'text' is null" in err and not out2.exists()
    code, _, err = predict(["--model", model, "--input", str(bad), "--output", str(out2), "--skip-bad"], capsys)
    assert code == 0 and pq.read_table(out2).column("id").to_pylist() == [1, 3]
    code, _, err = predict(["--model", model, "--input", str(bad), "--output", str(tmp_path / "x.jsonl")], capsys)
    assert code == EXIT_USER_ERROR and "--output FILE.parquet" in err
