"""Archive tagging never crashes, hangs or loses a record: what the check pass refuses (lone surrogates, duplicate
keys, deep nesting, texts and lines over the limits), what a folder input reads or names, memory bounded whatever
one record holds, and ``--resume`` verifying the whole partial output."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import shutil
from pathlib import Path

import pytest

from helpers.archive import make_records, run_measured, write_huge_gzip, write_jsonl
from helpers.tagger import predict
from helpers.train import assert_no_traceback
from parsner.errors import EXIT_USER_ERROR

#: Peak RSS allowed for a run over an archive holding one huge text (the tiny model loaded: about 0.4 GB).
RSS_LIMIT = 1_500_000_000


def _lines(n: int, seed: int = 0) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in make_records(n, seed=seed)]


# ----------------------------------------------------------------------------------------- bad records


@pytest.mark.parametrize("line, reason", [
    ('{"id": 41, "text": "علی \\ud800 رفت"}', "'text' holds a lone surrogate U+D800 at character 5"),
    ('{"id": 41, "text": "😀 \\ude00"}', "lone surrogate U+DE00"),
    ('{"id": 41, "text": "علی", "text": "رضا"}', 'invalid JSON (duplicate key "text" in one object'),
    ('{"id": 41, "meta": ' + "[" * 100_000 + "]" * 100_000 + ', "text": "علی"}', "nested deeper than 64 levels"),
    ('{"id": 41, "n": ' + "1" * 5000 + ', "text": "علی"}', "invalid JSON"),
    ('{"id": 41, "text": "' + '\\"' * 1_000_000, "invalid JSON (Unterminated string starting at, column 20)"),
    ('{"id": 41, "text": "' + "ب" * 1001 + '"}', "'text' has 1,001 characters; the limit is 1,000 (--max-chars)"),
])
def test_the_check_pass_refuses_what_would_crash_later(model: str, tmp_path: Path, capsys, line: str,
                                                       reason: str) -> None:
    """Line 41 of 60: refused with file:line before the model loads (no output), or skipped and counted."""
    recs = _lines(59)
    src = write_jsonl(tmp_path / "in.jsonl", [*recs[:40], line, *recs[40:]])
    target = tmp_path / "out" / "tagged.jsonl"
    base = ["--model", model, "--input", str(src), "--output", str(target), "-q"]
    if "--max-chars" in reason:
        base += ["--max-chars", "1000"]  # the other records hold at most a few hundred characters
    code, out, err = predict(base, capsys)
    assert code == EXIT_USER_ERROR and out == "", err
    assert f"{src}:41: " in err and reason in err and "--skip-bad" in err, err
    assert "Loading" not in err and not (tmp_path / "out").exists()

    code, _, err = predict([*base, "--skip-bad"], capsys)
    assert code == 0, err
    assert "skipping 1 bad record(s)" in err and "in.jsonl:41: " in err and reason in err
    got = [json.loads(x)["id"] for x in target.read_text(encoding="utf-8").splitlines()]
    assert got == [json.loads(r)["id"] for r in recs]


def test_a_line_over_the_byte_cap_is_read_past_not_kept() -> None:
    """The reader holds at most ``limit`` bytes of a line: a longer one is hashed, skipped and reported by size."""
    from parsner.serving.archive import TooLong, read_lines

    data = b'{"text": "a"}\n' + b"x" * 10_000 + b"\n" + b'{"text": "b"}\n' + b"y" * 5000
    h = hashlib.sha256()
    got = list(read_lines(io.BytesIO(data), 100, hasher=h))
    assert got == [(1, b'{"text": "a"}\n'), (2, TooLong(10_000)), (3, b'{"text": "b"}\n'), (4, TooLong(5000))]
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()  # the input's fingerprint still covers every byte
    assert list(read_lines(io.BytesIO(b"x" * 100 + b"\n" + b"z" * 100), 100)) == [(1, b"x" * 100 + b"\n"),
                                                                                (2, b"z" * 100)]


@pytest.mark.slow
def test_a_huge_gzipped_text_is_refused_in_bounded_memory(model: str, tmp_path: Path) -> None:
    """300 MB of text in one record of a 1 MB .jsonl.gz: refused by file:line (a line over the byte cap is never held
    in memory), or skipped with --skip-bad while the records around it are tagged; peak RSS stays bounded."""
    recs = _lines(2, seed=9)
    src = write_huge_gzip(tmp_path / "huge.jsonl.gz", 300_000_000, before=recs[0], after=recs[1])
    assert src.stat().st_size < 5_000_000
    target = tmp_path / "out" / "tagged.jsonl"
    argv = ["predict", "--model", model, "--input", str(src), "--output", str(target), "-q"]
    code, err, rss = run_measured(argv, tmp_path)
    print(f"check pass refusing a 300 MB text: peak RSS {rss / 1e6:.0f} MB")
    assert code == EXIT_USER_ERROR, err[-3000:]
    assert f"{src}:2: the line holds 299,880,026 bytes; a record may hold 7,048,576" in err, err[-3000:]
    assert rss < RSS_LIMIT and not target.exists()

    code, err, rss = run_measured([*argv, "--skip-bad"], tmp_path)
    print(f"tagging around a skipped 300 MB text: peak RSS {rss / 1e6:.0f} MB")
    assert code == 0, err[-3000:]
    assert "1 bad record(s) skipped" in err and rss < RSS_LIMIT
    assert [json.loads(x)["id"] for x in target.read_text(encoding="utf-8").splitlines()] == ["doc-0", 1]


@pytest.mark.slow
def test_deep_nesting_in_a_child_process_is_a_refusal_not_a_crash(model: str, tmp_path: Path) -> None:
    """A million brackets: exit 2 naming file:line (no RecursionError, no signal), for records and for text."""
    deep = '{"text": "x", "m": ' + "[" * 1_000_000 + "]" * 1_000_000 + "}"
    src = write_jsonl(tmp_path / "deep.jsonl", [deep])
    code, err, _ = run_measured(["predict", "--model", model, "--input", str(src), "-q"], tmp_path)
    assert code == EXIT_USER_ERROR and f"{src}:1: invalid JSON (JSON nested deeper than 64 levels" in err, err[-2000:]
    assert_no_traceback(err)
    txt = write_jsonl(tmp_path / "deep.txt", ['{"a": ' + "[" * 5000 + "]" * 5000 + "}"])
    code, err, _ = run_measured(["predict", "--model", model, "--input", str(txt), "-q"], tmp_path)
    assert code in (0, EXIT_USER_ERROR), err[-2000:]  # tagged as the text it is, or refused: never a crash
    assert_no_traceback(err)


# ----------------------------------------------------------------------------------------- folders


def _archive_folder(folder: Path, recs: list[str]) -> None:
    """Seven .jsonl records in each of four files (plain, gzip, bz2, xz), then a .json file and a subfolder."""
    folder.mkdir()
    body = [("".join(r + "\n" for r in recs[k * 7:(k + 1) * 7])).encode("utf-8") for k in range(4)]
    (folder / "a.jsonl").write_bytes(body[0])
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(body[1]))
    (folder / "c.jsonl.bz2").write_bytes(bz2.compress(body[2]))
    (folder / "d.ndjson.xz").write_bytes(lzma.compress(body[3]))
    (folder / "e.json").write_text(json.dumps([json.loads(r) for r in recs[:3]], ensure_ascii=False),
                                   encoding="utf-8")
    (folder / "more").mkdir()
    write_jsonl(folder / "more" / "f.jsonl", recs[:5])


def test_a_folder_reads_every_file_or_names_it(model: str, tmp_path: Path, capsys) -> None:
    recs = _lines(28, seed=10)
    plain = write_jsonl(tmp_path / "all.jsonl", recs)
    code, expected, err = predict(["--model", model, "--input", str(plain), "--batch-size", "4"], capsys)
    assert code == 0, err
    folder = tmp_path / "archive"
    _archive_folder(folder, recs)
    code, out, err = predict(["--model", model, "--input", str(folder), "--batch-size", "4"], capsys)
    assert code == EXIT_USER_ERROR and out == ""
    assert "2 entries that would not be read" in err and "e.json (a .json file" in err and "more (a folder" in err
    assert "--skip-unreadable" in err

    code, out, err = predict(["--model", model, "--input", str(folder), "--batch-size", "4", "--skip-unreadable"],
                             capsys)
    assert code == 0, err
    assert out == expected  # .jsonl, .gz, .bz2 and .xz all read, in name order: 28 of 28 records
    assert f"left out {folder / 'e.json'}: a .json file" in err and f"left out {folder / 'more'}: a folder" in err
    assert "28 record(s)" in err

    (folder / "e.json").unlink()
    shutil.rmtree(folder / "more")
    xz = folder / "d.ndjson.xz"
    xz.write_bytes(xz.read_bytes()[:-30])
    code, out, err = predict(["--model", model, "--input", str(folder)], capsys)
    assert code == EXIT_USER_ERROR and f"{xz}:" in err and "damaged xz stream" in err and out == ""


def test_an_output_inside_the_input_folder_is_refused(model: str, tmp_path: Path, capsys) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "text": ["علی به تهران رفت", "مریم"]}), folder / "a.parquet")
    for target in (folder / "tagged.parquet", folder / "sub" / "tagged.parquet"):
        code, _, err = predict(["--model", model, "--input", str(folder), "--output", str(target)], capsys)
        assert code == EXIT_USER_ERROR and "inside the input folder" in err, err
    assert sorted(p.name for p in folder.iterdir()) == ["a.parquet"]  # nothing written, not even a lock

    (folder / "notes.md").write_text("not Parquet", encoding="utf-8")
    target = tmp_path / "tagged.parquet"
    code, _, err = predict(["--model", model, "--input", str(folder), "--output", str(target)], capsys)
    assert code == EXIT_USER_ERROR and "notes.md (not a Parquet file" in err and not target.exists()
    code, _, err = predict(["--model", model, "--input", str(folder), "--output", str(target), "--skip-unreadable",
                            "-q"], capsys)
    assert code == 0 and f"left out {folder / 'notes.md'}" in err and pq.read_table(target).num_rows == 2

    jl = tmp_path / "jl"
    jl.mkdir()
    write_jsonl(jl / "a.jsonl", _lines(3))
    code, _, err = predict(["--model", model, "--input", str(jl), "--output", str(jl / "tagged.txt")], capsys)
    assert code == EXIT_USER_ERROR and "inside the input folder" in err
    assert [p.name for p in jl.iterdir()] == ["a.jsonl"]


def test_a_parquet_text_over_max_chars_is_a_bad_row(model: str, tmp_path: Path, capsys) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "text": ["علی به تهران رفت", "ب" * 100, "مریم"]}), src)
    target = tmp_path / "out.parquet"
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--max-chars", "50"],
                           capsys)
    assert code == EXIT_USER_ERROR and f"{src}: row 2: column 'text' has 100 characters; the limit is 50" in err
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--max-chars", "50",
                            "--skip-bad", "-q"], capsys)
    assert code == 0 and pq.read_table(target).column("id").to_pylist() == [1, 3]


# ----------------------------------------------------------------------------------------- resume


def _interrupt_after(model: str, src: Path, target: Path, capsys, monkeypatch, calls_before_stop: int) -> Path:
    from parsner.inference.tagger import Tagger

    real, calls = Tagger.tag_documents, {"n": 0}

    def stop(self, texts, batch_size=32):
        calls["n"] += 1
        if calls["n"] == calls_before_stop:
            raise KeyboardInterrupt
        return real(self, texts, batch_size)

    monkeypatch.setattr(Tagger, "tag_documents", stop)
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--batch-size", "5",
                            "-q"], capsys)
    monkeypatch.undo()
    assert code == 130, err
    return target.with_name(target.name + ".partial")


@pytest.mark.parametrize("edit", ["changed", "deleted", "cut", "old-manifest"])
def test_resume_verifies_the_whole_partial_file(model: str, tmp_path: Path, capsys, monkeypatch, edit: str) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", _lines(40, seed=11))
    target = tmp_path / "tagged.jsonl"
    partial = _interrupt_after(model, src, target, capsys, monkeypatch, calls_before_stop=5)
    lines = partial.read_bytes().split(b"\n")
    assert len(lines) == 21 and lines[-1] == b""  # 20 records, 4 batches
    manifest = target.with_name("tagged.jsonl.partial.json")
    if edit == "changed":  # same length, one character of line 3's entities: only a hash of every line sees it
        lines[2] = lines[2].replace(b'"score": 0.', b'"score": 1.', 1)
        assert lines[2] != partial.read_bytes().split(b"\n")[2]
    elif edit == "deleted":
        del lines[6]
    elif edit == "cut":
        lines = [*lines[:3], b""]
    else:  # a manifest from before the partial file was hashed
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        doc.pop("written", None)
        manifest.write_text(json.dumps(doc), encoding="utf-8")
    partial.write_bytes(b"\n".join(lines))
    before = partial.read_bytes()
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--batch-size", "5",
                            "--resume"], capsys)
    assert code == EXIT_USER_ERROR and f"--resume: {partial}" in err and "--overwrite" in err, err
    assert partial.read_bytes() == before and not target.exists()  # refused: nothing changed


def test_resume_cuts_what_the_manifest_does_not_vouch_for(model: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """Lines after the verified prefix (a batch written just before kill -9) are tagged again: same bytes."""
    src = write_jsonl(tmp_path / "in.jsonl", _lines(40, seed=12))
    full = tmp_path / "full.jsonl"
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(full), "--batch-size", "5", "-q"],
                           capsys)
    assert code == 0, err
    target = tmp_path / "tagged.jsonl"
    partial = _interrupt_after(model, src, target, capsys, monkeypatch, calls_before_stop=3)
    with partial.open("ab") as fh:  # as if the next batch had been written but not yet recorded, then a torn line
        fh.write(b"\n".join(full.read_bytes().split(b"\n")[10:15]) + b'\n{"id": "doc-1')
    code, _, err = predict(["--model", model, "--input", str(src), "--output", str(target), "--batch-size", "5",
                            "--resume"], capsys)
    assert code == 0, err
    assert "resuming after 10 records" in err and target.read_bytes() == full.read_bytes()
