"""Records in, records out: tag the text field of JSON Lines records and hand every record back with its entities.

An archive is a ``.jsonl`` / ``.jsonl.gz`` file or a folder of them (read in sorted name order). Each non-blank line
is one JSON object; its ``text_field`` is tagged, and the output line is the input line itself, byte for byte, with
``"entities": [...]`` added before its closing brace. The record is never parsed and dumped again, so ids, nested
metadata, Persian keys, number formats and escapes come out exactly as they went in. Entities are the dicts of
``parsner predict --format jsonl`` (``text``, ``label``, ``start``, ``end``, ``score``), offsets into the record's text.

Records go through the model in batches whose composition depends only on the input (``batch_size`` records, fewer
when their texts pass :data:`MAX_CHARS_PER_CALL`): padding a text beside different neighbours changes its scores in
the last float bits, so the local engine, the Ray engine and a resumed run all cut the same batches.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from parsner.errors import ConfigError, InputError
from parsner.serving.progress import Progress

#: Names read as records. ``.json`` is refused: a JSON document is not one object per line.
RECORD_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
JSON_SUFFIXES = (".json", ".json.gz")
#: A batch is also cut when its texts reach this many characters, so a run of long articles stays cache-sized.
MAX_CHARS_PER_CALL = 200_000
_WS = " \t\r\n"  # JSON's insignificant whitespace
_JSON_TYPES = {dict: "an object", list: "an array", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


class BadRecord(ValueError):
    """A record that cannot be tagged; ``where`` is ``file:line``."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        super().__init__(f"{source}:{line}: {reason}")

    def as_input_error(self) -> InputError:
        return InputError(self.source, self.line, f"{self.reason}; nothing was tagged (--skip-bad skips and counts "
                                                  "such records)")


@dataclass(frozen=True)
class RecordOptions:
    """How records are read: which field is text, where entities go, and what happens to bad records."""

    text_field: str = "text"
    entities_field: str = "entities"
    skip_bad: bool = False
    batch_size: int = 32
    max_chars: int = MAX_CHARS_PER_CALL


@dataclass
class Record:
    source: str
    line: int
    json: str  # the input line without its line break and surrounding whitespace
    text: str


def is_records_name(path: Path) -> bool:
    return path.name.lower().endswith(RECORD_SUFFIXES)


def is_json_name(path: Path) -> bool:
    return path.name.lower().endswith(JSON_SUFFIXES)


def record_files(path: Path) -> list[Path]:
    """The record files of ``path``: itself, or a folder's ``*.jsonl[.gz]`` files in sorted name order."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and is_records_name(p))
    if not files:
        raise InputError(path, None, "folder has no *.jsonl or *.jsonl.gz files")
    return files


def input_kind(source: str | None, input_format: str = "auto") -> str:
    """``"records"`` or ``"text"`` for ``--input`` (refusing what must not be tagged as text)."""
    if source is None:
        return "text"
    if source == "-":
        return "records" if input_format == "jsonl" else "text"
    path = Path(source)
    parquet = path.is_dir() and any(p.name.lower().endswith((".parquet", ".pq")) for p in path.iterdir())
    if parquet and any(p.is_file() and is_records_name(p) for p in path.iterdir()):
        raise ConfigError(f"{path} holds both Parquet and JSON Lines files; put them in separate folders")
    if parquet or path.name.lower().endswith((".parquet", ".pq")):
        if input_format == "text":
            raise ConfigError(f"{path} holds Parquet, which is never tagged as text; its --text-field column is")
        return "records"
    if path.is_dir():
        records = any(p.is_file() and is_records_name(p) for p in path.iterdir())
        texts = any(p.is_file() and p.suffix == ".txt" for p in path.iterdir())
        if input_format == "auto" and records and texts:
            raise ConfigError(f"{path} holds both *.txt texts and *.jsonl records; put them in separate folders")
        return "records" if input_format == "jsonl" or (input_format == "auto" and records) else "text"
    if is_records_name(path) or is_json_name(path):
        if input_format == "text":
            raise ConfigError(f"{path} holds JSON, which is never tagged as text; give its records as --input "
                              f"{path} (the --text-field of each record is tagged)")
        if input_format == "auto" and is_json_name(path):
            raise ConfigError(f"{path}: a .json file is not text to tag; records are read from JSON Lines "
                              f"(.jsonl, one object per line): rename it or pass --input-format jsonl")
        return "records"
    return "records" if input_format == "jsonl" else "text"


def looks_like_record(line: bytes | str) -> bool:
    """True for a line that is a JSON object (text input whose lines are records, by mistake)."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.strip(_WS).removeprefix("\ufeff")
    if not (text.startswith("{") and text.endswith("}")):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------- reading


@contextlib.contextmanager
def open_lines(path: Path) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """``(lines, raw)``: a binary line source (gunzipped for ``.gz``) and the raw file (its ``tell()`` is progress)."""
    if not path.is_file():
        raise InputError(path, None, "input file not found")
    with open(path, "rb") as raw:
        if path.name.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz, raw  # type: ignore[misc]
        else:
            yield raw, raw


def iter_lines(path: Path, on_progress: Callable[[int], None] | None = None) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of a file; a damaged gzip stream is an :class:`InputError` naming the file.

    Only ``\\n`` ends a line: U+2028/U+2029/U+0085, which ``str.splitlines`` would split on, are text in JSON strings.
    """
    n = 0
    try:
        with open_lines(path) as (fh, raw):
            for n, line in enumerate(fh, 1):
                if on_progress is not None and n % 1024 == 0:
                    on_progress(raw.tell())
                yield n, line
            if on_progress is not None:
                on_progress(raw.tell())
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(path, n + 1, f"damaged gzip stream ({exc})") from None


def parse_line(raw: bytes, source: str, line: int, opts: RecordOptions) -> Record | None:
    """The record on one input line (None for a blank line), or :class:`BadRecord` saying why it cannot be tagged."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRecord(source, line, f"not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 4]!r})") \
            from None
    stripped = text.strip(_WS)
    if line == 1:
        stripped = stripped.removeprefix("\ufeff").lstrip(_WS)  # a byte-order mark is not part of the record
    if not stripped:
        return None
    try:
        obj = json.loads(stripped)
    except ValueError as exc:
        raise BadRecord(source, line, f"invalid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise BadRecord(source, line, f"a record must be a JSON object, not {_JSON_TYPES.get(type(obj), 'that')}")
    value = obj.get(opts.text_field)
    if opts.text_field not in obj:
        raise BadRecord(source, line, f"no {opts.text_field!r} field (choose the text field with --text-field)")
    if not isinstance(value, str):
        raise BadRecord(source, line, f"{opts.text_field!r} is {_JSON_TYPES.get(type(value), 'not text')}, "
                                      "not a string")
    if "\0" in value:
        raise BadRecord(source, line, f"{opts.text_field!r} contains a NUL character; is this text?")
    if opts.entities_field in obj:
        raise BadRecord(source, line, f"already has an {opts.entities_field!r} field, which parsner would replace "
                                      "(name the new field with --entities-field)")
    return Record(source, line, stripped, value)


def add_entities(record_json: str, entities: Sequence[dict[str, Any]], entities_field: str = "entities") -> str:
    """The record's own JSON text with ``entities_field`` added before its closing brace (no newline)."""
    from parsner.serving.render import entity_record

    body = record_json[:-1].rstrip(_WS)  # parse_line checked that this is an object: it ends with "}"
    sep = "" if body.endswith("{") else ", "
    ents = json.dumps([entity_record(e) for e in entities], ensure_ascii=False)
    return f"{body}{sep}{json.dumps(entities_field, ensure_ascii=False)}: {ents}}}"


def iter_records(sources: Iterable[tuple[str, Iterable[tuple[int, bytes]]]], opts: RecordOptions,
                 on_bad: Callable[[BadRecord], None] | None = None) -> Iterator[Record]:
    """The taggable records of ``(name, lines)`` sources; a bad one raises, or goes to ``on_bad`` with skip_bad."""
    for name, lines in sources:
        for n, raw in lines:
            try:
                rec = parse_line(raw, name, n, opts)
            except BadRecord as bad:
                if not opts.skip_bad:
                    raise bad.as_input_error() from None
                if on_bad is not None:
                    on_bad(bad)
                continue
            if rec is not None:
                yield rec


def file_sources(files: Sequence[Path]) -> Iterator[tuple[str, Iterable[tuple[int, bytes]]]]:
    for f in files:
        yield str(f), iter_lines(f)


def batches(records: Iterable[Record], opts: RecordOptions, start: int = 0) -> Iterator[list[Record]]:
    """Batches of records, cut by count and characters from the first record on; those before ``start`` are dropped.

    ``start`` must be a batch boundary (see :func:`survey`), so a resumed run tags the very batches of the first one.
    """
    batch: list[Record] = []
    chars = done = 0
    for rec in records:
        batch.append(rec)
        chars += len(rec.text)
        if len(batch) >= opts.batch_size or chars >= opts.max_chars:
            if done >= start:
                yield batch
            done += len(batch)
            batch, chars = [], 0
    if batch and done >= start:
        yield batch


# ----------------------------------------------------------------------------------------- the check pass


@dataclass
class FileInfo:
    path: str  # resolved
    size: int
    mtime_ns: int
    sha256: str  # of the (decompressed) content: a recompressed or touched file is the same input
    lines: int


@dataclass
class Survey:
    """What the check pass found: per-file fingerprints, taggable and bad records, and one batch boundary."""

    files: list[FileInfo] = field(default_factory=list)
    records: int = 0
    bad: int = 0
    first_bad: list[str] = field(default_factory=list)
    boundary: int = 0  # the last batch boundary <= the ``resume_at`` asked for
    boundary_json: str | None = None  # the record just before that boundary (to check the kept output against)


def survey(files: Sequence[Path], opts: RecordOptions, *, resume_at: int = 0,
           progress: Progress | None = None) -> Survey:
    """Read every record once before any tagging: refuse a bad one (file:line) or count it, and fingerprint the files.

    For an archive of many GB this pass costs a small fraction of tagging it (it parses JSON; the model runs a
    transformer over every word) and buys two things: a bad record stops the run in seconds, not after hours of
    tagging, and the record count makes the progress bar's ETA exact.
    """
    out = Survey()
    base = 0
    hashes: dict[str, Any] = {}
    counts: dict[str, int] = {}

    def note_bad(bad: BadRecord) -> None:
        out.bad += 1
        if len(out.first_bad) < 5:
            out.first_bad.append(str(bad))

    def hashed(f: Path) -> Iterator[tuple[int, bytes]]:
        h = hashes[str(f)] = hashlib.sha256()
        tick = None if progress is None else (lambda pos: progress.set(base + pos))
        for n, raw in iter_lines(f, tick):
            h.update(raw)
            counts[str(f)] = n
            yield n, raw

    sizes = [f.stat().st_size for f in files]
    done = chars = 0
    n_batch = 0
    last_json = None
    for k, f in enumerate(files):
        for rec in iter_records([(str(f), hashed(f))], opts, note_bad):
            out.records += 1
            n_batch += 1
            chars += len(rec.text)
            last_json = rec.json
            if n_batch >= opts.batch_size or chars >= opts.max_chars:
                done += n_batch
                if done <= resume_at:
                    out.boundary, out.boundary_json = done, last_json
                n_batch = chars = 0
        base += sizes[k]
        st = f.stat()
        out.files.append(FileInfo(str(f.resolve()), st.st_size, st.st_mtime_ns,
                                  hashes.get(str(f), hashlib.sha256()).hexdigest(), counts.get(str(f), 0)))
    if n_batch and done + n_batch <= resume_at:
        out.boundary, out.boundary_json = done + n_batch, last_json
    return out


def entity_arrow_type() -> Any:
    """The Arrow type of the ``entities`` column (explicit: a batch without entities would infer list<null>)."""
    import pyarrow as pa

    return pa.list_(pa.struct([("text", pa.string()), ("label", pa.string()), ("start", pa.int64()),
                               ("end", pa.int64()), ("score", pa.float64())]))
