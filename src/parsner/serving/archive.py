"""Records in, records out: tag the text field of JSON Lines records and hand every record back with its entities.

An archive is a ``.jsonl`` file (also ``.gz``, ``.bz2``, ``.xz``) or a folder of them (read in sorted name order; a
folder entry that is not read, such as a subfolder or a ``.json`` file, is an error naming it unless the caller asks
to leave such entries out, and then they are named too). Each non-blank line is one JSON object; its ``text_field``
is tagged, and the output line is the input line itself, byte for byte, with ``"entities": [...]`` added before its
closing brace. The record is never parsed and dumped again, so ids, nested metadata, Persian keys, number formats
and escapes come out exactly as they went in. Entities are the dicts of ``parsner predict --format jsonl`` (``text``,
``label``, ``start``, ``end``, ``score``), offsets into the record's text.

Memory is bounded by design, whatever one record holds: a line is read with a byte cap (:func:`max_line_bytes`, from
the text limit ``max_text_chars``), and a longer line is read past unkept and refused as a bad record, as is a text
over the limit, a lone surrogate (:mod:`parsner.surrogates`), a duplicate key and nesting deeper than
:mod:`parsner.data.strictjson` allows.

Records go through the model in batches whose composition depends only on the input (``batch_size`` records, fewer
when their texts pass :data:`MAX_CHARS_PER_CALL`): padding a text beside different neighbours changes its scores in
the last float bits, so the local engine, the Ray engine and a resumed run all cut the same batches.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import json
import logging
import lzma
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from parsner import surrogates
from parsner.data import strictjson
from parsner.errors import ConfigError, InputError
from parsner.serving.progress import Progress

log = logging.getLogger(__name__)

#: Compressed files are read as their content; the suffix says how.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
#: Names read as records. ``.json`` is refused: a JSON document is not one object per line.
RECORD_SUFFIXES = tuple(base + comp for base in (".jsonl", ".ndjson") for comp in ("", *COMPRESSIONS))
JSON_SUFFIXES = tuple(".json" + comp for comp in ("", *COMPRESSIONS))
#: A batch is also cut when its texts reach this many characters, so a run of long articles stays cache-sized.
MAX_CHARS_PER_CALL = 200_000
#: Characters one record's text may hold (``--max-chars``): a long book, far beyond a news article. Tagging a text
#: of this length peaked at 1.06 GB RSS with the tiny test model in the worst case measured (500,000 one-letter
#: words, each an entity); about 0.6 GB for ordinary Persian prose.
DEFAULT_MAX_TEXT_CHARS = 1_000_000
#: A line's byte cap per character of text: ``\u0627``, the form ``json.dumps`` writes by default, is 6 bytes.
LINE_BYTES_PER_CHAR = 6
#: ... plus room for the record's other fields (ids, metadata).
LINE_SLACK_BYTES = 1 << 20
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
    max_chars: int = MAX_CHARS_PER_CALL  # per tagging call (a batch cut), not per record
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS  # per record: a longer text is a bad record

    @property
    def max_line_bytes(self) -> int:
        return max_line_bytes(self.max_text_chars)


def max_line_bytes(max_text_chars: int) -> int:
    """The most bytes one input line may hold (its line break not counted) for texts of ``max_text_chars``."""
    return max_text_chars * LINE_BYTES_PER_CHAR + LINE_SLACK_BYTES


@dataclass(frozen=True)
class TooLong:
    """A line longer than the byte cap, read past without being kept; ``size`` is its length in bytes."""

    size: int


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


@dataclass
class Listing:
    """What a folder input holds: the files to read and each entry left out, with why."""

    files: list[Path]
    left_out: list[tuple[Path, str]]


def list_folder(path: Path, accept: Callable[[Path], bool], what: str) -> Listing:
    """Every entry of ``path``: a readable file ``accept`` takes is read; anything else is left out with a reason.

    Nothing is left out silently: the caller refuses a non-empty ``left_out`` or names each entry it skips.
    """
    files: list[Path] = []
    left: list[tuple[Path, str]] = []
    for p in sorted(path.iterdir()):
        if p.is_dir():
            left.append((p, "a folder (folders inside the input are not read)"))
        elif not p.is_file():
            left.append((p, "not a regular file"))
        elif not accept(p):
            json_doc = is_json_name(p) and what == "records"
            left.append((p, "a .json file (one JSON document, not one record per line; rename it .jsonl if it "
                            "is JSON Lines)" if json_doc else f"not {what}"))
        else:
            try:
                with open(p, "rb"):
                    pass
            except OSError as exc:
                left.append((p, f"cannot be read ({exc.strerror or exc})"))
                continue
            files.append(p)
    return Listing(files, left)


def check_listing(path: Path, listing: Listing, skip_unreadable: bool, what: str) -> list[Path]:
    """The files of a folder input; an entry left out is an error naming it unless ``skip_unreadable``."""
    if listing.left_out and not skip_unreadable:
        named = "; ".join(f"{p.name} ({why})" for p, why in listing.left_out[:5])
        more = len(listing.left_out) - 5
        named += f"; and {more:,} more" if more > 0 else ""
        raise InputError(path, None, f"the folder holds {len(listing.left_out):,} entr"
                                     f"{'y' if len(listing.left_out) == 1 else 'ies'} that would not be read: "
                                     f"{named}; move them out, or pass --skip-unreadable to tag the rest")
    if not listing.files:
        raise InputError(path, None, f"folder has no {what} to read")
    return listing.files


def record_files(path: Path, skip_unreadable: bool = False) -> Listing:
    """The record files of ``path``: itself, or a folder's ``*.jsonl[.gz|.bz2|.xz]`` files in sorted name order.

    Raises :class:`InputError` for a folder holding other entries (named) unless ``skip_unreadable``; then the
    listing's ``left_out`` says which were left out, for the caller to name.
    """
    if not path.is_dir():
        return Listing([path], [])
    what = "records (*.jsonl, *.ndjson, also .gz, .bz2, .xz)"
    listing = list_folder(path, is_records_name, "records")
    check_listing(path, listing, skip_unreadable, what)
    return listing


def note_left_out(listing: Listing) -> None:
    """Warn of each folder entry that --skip-unreadable left out (nothing is left out silently, even under -q)."""
    for path, why in listing.left_out:
        log.warning("--skip-unreadable: left out %s: %s", path, why)


def check_output_outside(output: Path, source: Path) -> None:
    """Refuse an output inside a folder input: the next run would find it (and its lock and records) there."""
    if not source.is_dir():
        return
    folder, target = source.resolve(), output.resolve()
    if folder in target.parents:
        raise ConfigError(f"--output {output} is inside the input folder {source}, where the next run would find "
                          "it; write it somewhere else")


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
        return isinstance(strictjson.loads(text), dict)
    except ValueError:  # JSONRefused too: nesting too deep to read is not a record to tag either
        return False


# ----------------------------------------------------------------------------------------- reading


@contextlib.contextmanager
def open_lines(path: Path) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """``(lines, raw)``: a binary line source (decompressed by suffix) and the raw file (its ``tell()`` is progress)."""
    if not path.is_file():
        raise InputError(path, None, "input file not found" if not path.exists() else "not a regular file")
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise InputError(path, None, f"cannot be read ({exc.strerror or exc})") from None
    with raw:
        kind = COMPRESSIONS.get(path.suffix.lower())
        if kind is None:
            yield raw, raw
            return
        fh: Any = gzip.GzipFile(fileobj=raw, mode="rb") if kind == "gzip" else \
            bz2.BZ2File(raw, mode="rb") if kind == "bz2" else lzma.LZMAFile(raw, mode="rb")
        with fh:
            yield fh, raw


def read_lines(fh: BinaryIO, limit: int, *, hasher: Any = None,
               on_chunk: Callable[[], None] | None = None) -> Iterator[tuple[int, bytes | TooLong]]:
    """``(line number, bytes)`` of a binary stream, each line at most ``limit`` bytes before its line break.

    A longer line is read past in 1 MiB pieces and comes as :class:`TooLong`, so memory stays bounded whatever the
    input holds. ``hasher`` sees every byte read; ``on_chunk`` is called while a long line is skipped (progress).
    Only ``\\n`` ends a line: U+2028/U+2029/U+0085, which ``str.splitlines`` would split on, are text in JSON strings.
    """
    n = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        n += 1
        if hasher is not None:
            hasher.update(raw)
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield n, raw
            continue
        size = len(raw)
        while not raw.endswith(b"\n"):
            raw = fh.readline(1 << 20)
            if not raw:
                break
            size += len(raw)
            if hasher is not None:
                hasher.update(raw)
            if on_chunk is not None:
                on_chunk()
        yield n, TooLong(size - raw.endswith(b"\n"))


def iter_lines(path: Path, on_progress: Callable[[int], None] | None = None, *,
               limit: int | None = None, hasher: Any = None) -> Iterator[tuple[int, bytes | TooLong]]:
    """:func:`read_lines` of a file (``limit`` default: that of :class:`RecordOptions`); a damaged compressed stream
    is an :class:`InputError` naming the file and the line where it broke."""
    n = 0
    limit = RecordOptions().max_line_bytes if limit is None else limit
    try:
        with open_lines(path) as (fh, raw):
            tick = None if on_progress is None else (lambda: on_progress(raw.tell()))
            for n, line in read_lines(fh, limit, hasher=hasher, on_chunk=tick):
                if tick is not None and n % 1024 == 0:
                    tick()
                yield n, line
            if tick is not None:
                tick()
    except (EOFError, zlib.error, lzma.LZMAError, OSError) as exc:  # gzip's BadGzipFile and bz2's errors are OSErrors
        kind = COMPRESSIONS.get(path.suffix.lower())
        what = f"damaged {kind} stream" if kind else "read error"
        raise InputError(path, n + 1, f"{what} ({exc})") from None


def parse_line(raw: bytes | TooLong, source: str, line: int, opts: RecordOptions) -> Record | None:
    """The record on one input line (None for a blank line), or :class:`BadRecord` saying why it cannot be tagged."""
    if isinstance(raw, TooLong):
        raise BadRecord(source, line, f"the line holds {raw.size:,} bytes; a record may hold {opts.max_line_bytes:,} "
                                      f"({LINE_BYTES_PER_CHAR} per character of --max-chars {opts.max_text_chars:,}, "
                                      "plus 1 MiB for its other fields): raise --max-chars to read it")
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
        obj = strictjson.loads(stripped)
    except ValueError as exc:  # JSONRefused; also Python's cap on the digits of an integer
        where = f", column {exc.column}" if isinstance(exc, strictjson.JSONRefused) and exc.column else ""
        what = exc.message.removeprefix("malformed JSON: ") if isinstance(exc, strictjson.JSONRefused) else str(exc)
        raise BadRecord(source, line, f"invalid JSON ({what}{where})") from None
    if not isinstance(obj, dict):
        raise BadRecord(source, line, f"a record must be a JSON object, not {_JSON_TYPES.get(type(obj), 'that')}")
    # Strictly decoded UTF-8 holds no surrogate: only a JSON escape can make one, so a line without a backslash
    # skips that scan (most archives, written with ensure_ascii=False).
    return Record(source, line, stripped, _text_of(obj, source, line, opts, escapes="\\" in stripped))


def text_problem(text: str, max_chars: int, *, escapes: bool = True) -> str | None:
    """Why a text to tag cannot be given to the model (over ``max_chars``, a NUL, a lone surrogate), or None: the
    one rule for JSON Lines records and Parquet rows. ``escapes=False`` skips the surrogate scan for a record whose
    line holds no backslash (strictly decoded UTF-8 cannot hold a surrogate; only a JSON escape makes one)."""
    if len(text) > max_chars:
        return f"has {len(text):,} characters; the limit is {max_chars:,} (--max-chars)"
    if "\0" in text:
        return "contains a NUL character; is this text?"
    why = surrogates.problem(text) if escapes else None  # refused, not replaced: parsner.surrogates says why
    return None if why is None else f"holds {why}"


def _text_of(obj: dict[str, Any], source: str, line: int, opts: RecordOptions, escapes: bool = True) -> str:
    """The record's text to tag, or :class:`BadRecord` when the model cannot be given it."""
    field = opts.text_field
    value = obj.get(field)
    if field not in obj:
        raise BadRecord(source, line, f"no {field!r} field (choose the text field with --text-field)")
    if not isinstance(value, str):
        raise BadRecord(source, line, f"{field!r} is {_JSON_TYPES.get(type(value), 'not text')}, not a string")
    why = text_problem(value, opts.max_text_chars, escapes=escapes)
    if why is not None:
        raise BadRecord(source, line, f"{field!r} {why}")
    if opts.entities_field in obj:
        raise BadRecord(source, line, f"already has an {opts.entities_field!r} field, which parsner would replace "
                                      "(name the new field with --entities-field)")
    return value


def add_entities(record_json: str, entities: Sequence[dict[str, Any]], entities_field: str = "entities") -> str:
    """The record's own JSON text with ``entities_field`` added before its closing brace (no newline)."""
    from parsner.serving.render import entity_record

    body = record_json[:-1].rstrip(_WS)  # parse_line checked that this is an object: it ends with "}"
    sep = "" if body.endswith("{") else ", "
    ents = json.dumps([entity_record(e) for e in entities], ensure_ascii=False)
    return f"{body}{sep}{json.dumps(entities_field, ensure_ascii=False)}: {ents}}}"


def iter_records(sources: Iterable[tuple[str, Iterable[tuple[int, bytes | TooLong]]]], opts: RecordOptions,
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


def file_sources(files: Sequence[Path], opts: RecordOptions | None = None
                 ) -> Iterator[tuple[str, Iterable[tuple[int, bytes | TooLong]]]]:
    limit = (opts or RecordOptions()).max_line_bytes
    for f in files:
        yield str(f), iter_lines(f, limit=limit)


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

    def hashed(f: Path) -> Iterator[tuple[int, bytes | TooLong]]:
        h = hashes[str(f)] = hashlib.sha256()
        tick = None if progress is None else (lambda pos: progress.set(base + pos))
        for n, raw in iter_lines(f, tick, limit=opts.max_line_bytes, hasher=h):
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
