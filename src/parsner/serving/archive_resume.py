"""Resumable record output: ``OUT.partial`` grows as records are tagged, ``OUT.partial.json`` says what made it.

The partial file holds complete output lines in input order, one per taggable record, flushed after every batch.
When the run ends it is renamed to ``OUT`` (and recorded in the folder's ``.parsner-outputs.json``, so a later
``--overwrite`` may replace it), and the manifest is removed: an ``OUT`` that exists is always complete.
Interrupted (SIGTERM, Ctrl-C, a crash, ``kill -9``), both stay, and ``--resume`` continues.

What was written is verified, not trusted: the manifest's ``written`` entry holds the line count, byte count and
sha256 of the partial file's first bytes, saved after a batch is flushed (and synced) at most once a second and when
the run stops. ``--resume`` hashes that prefix of the partial file again: a line edited, deleted or added by hand, or
a file cut short, is refused by name before anything is changed. Lines after the verified prefix (a batch written
just before ``kill -9``, a torn last line) are cut away and tagged again. It also checks that the inputs (sha256 of
their content), the model (sha256 of its files) and the options that change the output are those in the manifest,
then appends the rest from that batch boundary. The bytes then equal those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parsner.atomic import atomic_write_text, file_sha256, publish_file, record_output_file
from parsner.errors import ConfigError
from parsner.serving.archive import Survey

MANIFEST_KIND = "parsner-predict-partial"
#: The manifest's record of what was written is saved at most this often (and always when the run stops): a
#: ``kill -9`` loses at most this long of tagging, which --resume does again.
SAVE_EVERY_S = 1.0


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


def model_folder_fingerprint(model: str) -> str:
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
            "bad_records": survey.bad, "model": model, "model_sha256": fingerprint, "options": options,
            "written": written_entry(0, 0, hashlib.sha256())}


def written_entry(lines: int, size: int, hasher: Any) -> dict[str, Any]:
    """The manifest's account of the partial file's first ``size`` bytes: ``lines`` records, their sha256."""
    return {"lines": lines, "bytes": size, "sha256": hasher.hexdigest()}


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


@dataclass
class Prefix:
    """The verified start of ``OUT.partial``: ``lines`` records in ``size`` bytes, hashed by ``hasher``."""

    lines: int
    size: int
    hasher: Any
    last_start: int  # byte offset of the last of those lines (0 when there is none)


def verified_prefix(out: Path, saved: dict[str, Any]) -> Prefix:
    """The part of ``OUT.partial`` the manifest vouches for, hashed again; anything else is refused by name.

    Reads the partial file once, in 1 MiB blocks; nothing is changed here (a refusal leaves every file as it was).
    """
    path, manifest = partial_path(out), manifest_path(out)
    w = saved.get("written")
    if not (isinstance(w, dict) and isinstance(w.get("lines"), int) and isinstance(w.get("bytes"), int)
            and isinstance(w.get("sha256"), str)):
        raise ConfigError(f"--resume: {manifest} does not say what {path} should hold (written by an older "
                          "parsner?), so it cannot be verified; start again with --overwrite")
    lines, size = w["lines"], w["bytes"]
    if path.stat().st_size < size:
        raise ConfigError(f"--resume: {path} is shorter than the {lines:,} records parsner wrote there "
                          f"({path.stat().st_size:,} of {size:,} bytes): it was cut or edited; nothing was changed "
                          "(start again with --overwrite)")
    h = hashlib.sha256()
    seen = last_start = pos = 0
    with open(path, "rb") as fh:
        while pos < size:
            chunk = fh.read(min(1 << 20, size - pos))
            if not chunk:
                break
            h.update(chunk)
            seen += chunk.count(b"\n")
            end = len(chunk) - 1 if pos + len(chunk) == size else len(chunk)  # the prefix's last byte ends its line
            k = chunk.rfind(b"\n", 0, end)
            if k >= 0:
                last_start = pos + k + 1
            pos += len(chunk)
    if h.hexdigest() != w["sha256"] or seen != lines:
        raise ConfigError(f"--resume: {path} is not what parsner wrote: its first {lines:,} lines differ from the "
                          f"sha256 recorded in {manifest.name} (edited by hand or damaged); nothing was changed "
                          "(start again with --overwrite)")
    return Prefix(lines, size, h, last_start)


class RecordFile:
    """Output lines appended to ``OUT.partial``, renamed to ``OUT`` by :meth:`finish`.

    ``keep=True`` (a resumable run) leaves the partial file and its manifest when the run stops early, the manifest
    saying what the partial file holds (:func:`written_entry`); otherwise (records from stdin, which cannot be read
    twice) they are removed, as for every other ``--output``. ``prefix``: the verified start of an interrupted run's
    partial file, kept; what follows it is cut away.
    """

    def __init__(self, out: Path, *, overwrite: bool, keep: bool, manifest: dict[str, Any] | None,
                 prefix: Prefix | None = None) -> None:
        self.out, self.overwrite, self.keep = out, overwrite, keep
        self.path = partial_path(out)
        self.manifest_file = manifest_path(out)
        self.manifest = manifest
        out.parent.mkdir(parents=True, exist_ok=True)
        if prefix is None:
            self.path.unlink(missing_ok=True)
            if manifest is not None:  # first, so that a partial file is always explained by its manifest
                atomic_write_text(self.manifest_file, json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
            self.fh = open(self.path, "xb")
            self.lines, self.size, self.hasher = 0, 0, hashlib.sha256()
        else:
            self.fh = open(self.path, "r+b")
            self.fh.truncate(prefix.size)
            self.fh.seek(prefix.size)
            self.lines, self.size, self.hasher = prefix.lines, prefix.size, prefix.hasher.copy()
        self.resumed = prefix is not None
        self.written = 0
        self.closed = False
        self.saved_at = time.monotonic()
        self.saved_size = self.size

    def write(self, lines: Sequence[str]) -> None:
        if lines:
            data = ("\n".join(lines) + "\n").encode("utf-8")
            self.fh.write(data)
            self.fh.flush()  # a killed process loses at most the batch it was tagging
            # counted only once the write returned: an interrupted write is never vouched for
            self.hasher.update(data)
            self.lines += len(lines)
            self.size += len(data)
            self.written += len(lines)
        if time.monotonic() - self.saved_at >= SAVE_EVERY_S:
            self.save_state()

    def save_state(self) -> None:
        """Record in the manifest what the partial file holds (synced first: the manifest never vouches for more)."""
        if self.manifest is None or not self.keep or self.size == self.saved_size:
            self.saved_at = time.monotonic()
            return
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.manifest["written"] = written_entry(self.lines, self.size, self.hasher)
        atomic_write_text(self.manifest_file, json.dumps(self.manifest, ensure_ascii=False, indent=1) + "\n")
        self.saved_at, self.saved_size = time.monotonic(), self.size

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
            if self.keep:
                with contextlib.suppress(OSError):  # a full disk: the last saved state still holds
                    self.save_state()
            self.fh.close()
            self.closed = True
        if not self.keep or not (self.resumed or self.written):
            self.path.unlink(missing_ok=True)
            self.manifest_file.unlink(missing_ok=True)


def resume_point(out: Path, survey: Survey, prefix: Prefix) -> int:
    """Byte offset in ``OUT.partial`` where a resumed run appends: the end of the verified prefix.

    The prefix must end at a batch boundary of this input (the survey's), and its last line must be the output of
    the record just before it (the same input line plus entities); anything else means the partial file is not this
    input's output.
    """
    path = partial_path(out)
    if survey.boundary != prefix.lines:
        raise ConfigError(f"--resume: the {prefix.lines:,} records in {path} do not end a batch of this input (batch "
                          f"boundary {survey.boundary:,}); the partial output does not belong to it (start again "
                          "with --overwrite)")
    if survey.boundary_json is not None:
        body = survey.boundary_json[:-1].rstrip(" \t\r\n").encode("utf-8")
        with open(path, "rb") as fh:
            fh.seek(prefix.last_start)
            kept = fh.read(min(len(body), prefix.size - prefix.last_start))
        if kept != body:
            raise ConfigError(f"--resume: line {survey.boundary} of {path} is not the output of the input's record "
                              f"{survey.boundary}; the partial output does not belong to this input (start again "
                              "with --overwrite)")
    return prefix.size
