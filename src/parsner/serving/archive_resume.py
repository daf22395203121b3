"""Resumable record output: ``OUT.partial`` grows as records are tagged, ``OUT.partial.json`` says what made it.

The partial file holds complete output lines in input order, one per taggable record, flushed after every batch.
When the run ends it is renamed to ``OUT`` (and recorded in the folder's ``.parsner-outputs.json``, so a later
``--overwrite`` may replace it), and the manifest is removed: an ``OUT`` that exists is always complete.
Interrupted (SIGTERM, Ctrl-C, a crash, ``kill -9``), both stay, and ``--resume`` continues: it keeps the complete
lines up to the last batch boundary (a torn last line is cut away), checks that the inputs (sha256 of their content),
the model (sha256 of its files) and the options that change the output are those in the manifest, and appends
the rest. The bytes then equal those of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from parsner.atomic import atomic_write_text, file_sha256, publish_file, record_output_file
from parsner.errors import ConfigError
from parsner.serving.archive import Survey

MANIFEST_KIND = "parsner-predict-partial"


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.json")


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest of an interrupted run writing ``out``, or None when there is none (or it is not parsner's)."""
    try:
        doc = json.loads(manifest_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("kind") == MANIFEST_KIND else None


def model_fingerprint(model: str) -> str:
    """sha256 over the names and contents of a model folder's files (a hub id: its cached snapshot, else the id).

    Content, not paths or times: a copied or touched model resumes; retrained or re-exported weights do not.
    """
    folder = Path(model)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(model, local_files_only=True))
        except Exception:  # not cached, not a hub id: the id is all there is to compare
            return "id:" + model
    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        h.update(f"{f.name}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


def new_manifest(survey: Survey, inputs: Sequence[str], model: str, fingerprint: str,
                 options: dict[str, Any]) -> dict[str, Any]:
    from parsner._version import __version__

    return {"kind": MANIFEST_KIND, "parsner_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "input": list(inputs), "files": [asdict(f) for f in survey.files], "records": survey.records,
            "bad_records": survey.bad, "model": model, "model_sha256": fingerprint, "options": options}


def check_resumable(saved: dict[str, Any], survey: Survey, fingerprint: str, options: dict[str, Any]) -> None:
    """Refuse to resume when the inputs, the model or an output-changing option differ from the manifest's."""
    where = "the interrupted run"
    before = {f.get("path"): f for f in saved.get("files", []) if isinstance(f, dict)}
    now = {f.path: f for f in survey.files}
    if set(before) != set(now):
        gone, new = sorted(set(before) - set(now)), sorted(set(now) - set(before))
        what = "; ".join(filter(None, [gone and f"missing now: {', '.join(gone)}",
                                       new and f"new: {', '.join(new)}"]))
        raise ConfigError(f"--resume: the input files are not those of {where} ({what}); start again with --overwrite")
    for path, info in now.items():
        if before[path].get("sha256") != info.sha256:
            raise ConfigError(f"--resume: {path} changed since {where} (its content differs); start again with "
                              "--overwrite")
    if saved.get("model_sha256") != fingerprint:
        raise ConfigError(f"--resume: the model is not that of {where} ({saved.get('model')}: its files differ); "
                          "resume with that model or start again with --overwrite")
    old = saved.get("options", {})
    changed = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in options.items() if old.get(k) != v]
    if changed:
        raise ConfigError(f"--resume: options differ from {where} ({'; '.join(changed)}); use the same options or "
                          "start again with --overwrite")


# ----------------------------------------------------------------------------------------- the partial file


def complete_lines(path: Path) -> int:
    """The number of complete (newline-terminated) lines of ``path``; a torn last line is not counted."""
    n = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


def line_span(path: Path, index: int) -> tuple[int, bytes]:
    """``(offset after line index, that line)`` for 0-based ``index`` (``(0, b"")`` for index -1)."""
    if index < 0:
        return 0, b""
    seen = 0
    pos = 0
    tail = b""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            start = 0
            while True:
                k = chunk.find(b"\n", start)
                if k < 0:
                    tail += chunk[start:]
                    break
                if seen == index:
                    return pos + k + 1, tail + chunk[start:k]
                seen += 1
                tail = b""
                start = k + 1
            pos += len(chunk)
    raise ValueError(f"{path} has no line {index + 1}")


class RecordFile:
    """Output lines appended to ``OUT.partial``, renamed to ``OUT`` by :meth:`finish`.

    ``keep=True`` (a resumable run) leaves the partial file and its manifest when the run stops early; otherwise
    (records from stdin, which cannot be read twice) they are removed, as for every other ``--output``.
    """

    def __init__(self, out: Path, *, overwrite: bool, keep: bool, manifest: dict[str, Any] | None,
                 resume_offset: int | None = None) -> None:
        self.out, self.overwrite, self.keep = out, overwrite, keep
        self.path = partial_path(out)
        self.manifest_file = manifest_path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if resume_offset is None:
            self.path.unlink(missing_ok=True)
            if manifest is not None:  # first, so that a partial file is always explained by its manifest
                atomic_write_text(self.manifest_file, json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
            self.fh = open(self.path, "xb")
        else:
            self.fh = open(self.path, "r+b")
            self.fh.truncate(resume_offset)
            self.fh.seek(resume_offset)
        self.resumed = resume_offset is not None
        self.written = 0
        self.closed = False

    def write(self, lines: Sequence[str]) -> None:
        if lines:
            self.fh.write(("\n".join(lines) + "\n").encode("utf-8"))
            self.written += len(lines)
        self.fh.flush()  # a killed process loses at most the batch it was tagging

    def finish(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        self.closed = True
        publish_file(self.path, self.out, overwrite=self.overwrite)
        record_output_file(self.out)
        self.manifest_file.unlink(missing_ok=True)

    def abandon(self) -> None:
        """The run stopped: keep the partial output for --resume (if it holds any), or remove it."""
        if not self.closed:
            self.fh.close()
            self.closed = True
        if not self.keep or not (self.resumed or self.written):
            self.path.unlink(missing_ok=True)
            self.manifest_file.unlink(missing_ok=True)


def resume_point(out: Path, survey: Survey) -> int:
    """Byte offset in ``OUT.partial`` where a resumed run appends (after the survey's batch boundary).

    The kept last line must be the output of the record just before the boundary (the same input line plus
    entities); anything else means the partial file is not this input's output.
    """
    path = partial_path(out)
    offset, line = line_span(path, survey.boundary - 1)
    if survey.boundary_json is not None:
        body = survey.boundary_json[:-1].rstrip(" \t\r\n")
        if not line.decode("utf-8", "replace").startswith(body):
            raise ConfigError(f"--resume: line {survey.boundary} of {path} is not the output of the input's record "
                              f"{survey.boundary}; the partial output does not belong to this input (start again "
                              "with --overwrite)")
    return offset
