"""Parquet in, Parquet out: ``parsner predict --input news.parquet --output tagged.parquet``.

Every input column is written back as it was (same Arrow types, same values), with an ``entities`` column added:
``list<struct<text, label, start, end, score>>``, the dicts of the JSONL output. The text column is read once before
the model loads (a null, a non-string, a text over ``--max-chars``, a NUL or a lone surrogate there is refused with
its file and row, or skipped with ``--skip-bad``), then
the files are streamed in batches of ``--batch-size`` rows into a Parquet writer. A Parquet file has its index at the
end, so an interrupted run cannot be continued: its temporary file is removed, as for every other ``--output``
(``--resume`` is for JSON Lines). A folder input reads each of its ``*.parquet`` files; any other entry is an error
naming it (``--skip-unreadable`` leaves such entries out, naming each), and an output inside it is refused.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError, InputError
from parsner.serving.archive import (
    DEFAULT_MAX_TEXT_CHARS,
    Listing,
    check_listing,
    check_output_outside,
    list_folder,
    note_left_out,
    text_problem,
)
from parsner.serving.progress import Progress

log = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet_name(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def holds_parquet(path: Path) -> bool:
    """True for a Parquet file, or a folder with one (``archive.input_kind`` refuses a folder mixing formats)."""
    if path.is_dir():
        return any(is_parquet_name(p) for p in path.iterdir())
    return is_parquet_name(path)


def parquet_files(path: Path, skip_unreadable: bool = False) -> Listing:
    """``path`` itself, or a folder's ``*.parquet`` files; another entry is an error naming it unless
    ``skip_unreadable`` (then the listing's ``left_out`` names it)."""
    if not path.is_dir():
        return Listing([path], [])
    listing = list_folder(path, is_parquet_name, "a Parquet file (*.parquet, *.pq)")
    check_listing(path, listing, skip_unreadable, "*.parquet files")
    return listing


def check_options(args: argparse.Namespace) -> None:
    if args.output is None or not is_parquet_name(args.output):
        raise ConfigError("Parquet input is written as Parquet: give --output FILE.parquet")
    for option, given in (("--resume", args.resume), ("--engine ray", args.engine != "local"),
                          (f"--format {args.format}", args.format != "jsonl"), ("TEXT arguments", bool(args.texts))):
        if given:
            raise ConfigError(f"{option} is not available for Parquet input (for Ray: parsner.tag_dataset with "
                              "ray.data.read_parquet)")


def _open(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError for a file that is not Parquet
        raise InputError(path, None, f"not a readable Parquet file ({exc})") from None


def row_problem(text: Any, max_chars: int) -> str | None:
    """Why a row's text cannot be tagged (the JSON Lines rules: ``archive.text_problem``), or None."""
    if not isinstance(text, str):
        return f"is {'null' if text is None else type(text).__name__}, not text"
    return text_problem(text, max_chars)


def _bad_rows(texts: Sequence[Any], path: Path, first_row: int, field: str, max_chars: int) -> Iterator[InputError]:
    """Rows whose text cannot be tagged, as errors naming the file and the row (numbered from 1)."""
    for k, text in enumerate(texts):
        what = row_problem(text, max_chars)
        if what is not None:
            yield InputError(path, None, f"row {first_row + k}: column {field!r} {what}; nothing was tagged "
                                         "(--skip-bad skips and counts such rows)")


def survey(files: Sequence[Path], field: str, entities_field: str, skip_bad: bool,
           max_chars: int = DEFAULT_MAX_TEXT_CHARS) -> tuple[int, int, Any]:
    """(rows to tag, bad rows, the common schema), reading only the text column; refuses a bad row by file:row."""
    schema = None
    good = bad = 0
    for path in files:
        pf = _open(path)
        names = pf.schema_arrow.names
        if field not in names:
            raise InputError(path, None, f"no column {field!r} (columns: {', '.join(names)}); choose it with "
                                         "--text-field")
        if entities_field in names:
            raise InputError(path, None, f"already has a column {entities_field!r}; name the new one with "
                                         "--entities-field")
        if schema is None:
            schema = pf.schema_arrow
        elif not pf.schema_arrow.equals(schema):
            raise InputError(path, None, "its columns differ from the first file's; one output needs one schema")
        row = 1
        for batch in pf.iter_batches(batch_size=65_536, columns=[field]):
            texts = batch.column(0).to_pylist()
            for problem in _bad_rows(texts, path, row, field, max_chars):
                if not skip_bad:
                    raise problem
                bad += 1
            good += len(texts)
            row += len(texts)
    return good - bad, bad, schema


def _tag(tagger: Any, table: Any, field: str, entities_field: str, batch_size: int,
         max_chars: int) -> tuple[Any, int]:
    import pyarrow as pa

    from parsner.serving.archive import entity_arrow_type
    from parsner.serving.render import entity_record

    texts = table.column(field).to_pylist()
    keep = [row_problem(t, max_chars) is None for t in texts]  # the rows the survey counted as bad are left out
    if not all(keep):
        table = table.filter(pa.array(keep))
        texts = [t for t, k in zip(texts, keep, strict=True) if k]
    docs = tagger.tag_documents(texts, batch_size=batch_size)
    ents = [[entity_record(e) for e in d.entities] for d in docs]
    return table.append_column(entities_field, pa.array(ents, type=entity_arrow_type())), sum(map(len, ents))


def run(args: argparse.Namespace, listing: Listing, load_tagger: Any) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from parsner.atomic import check_output_file, publish_file, record_output_file
    from parsner.serving.archive import entity_arrow_type

    t0 = time.perf_counter()
    check_options(args)
    files = listing.files
    max_chars = DEFAULT_MAX_TEXT_CHARS if args.max_chars is None else args.max_chars
    check_output_file(args.output, overwrite=args.overwrite, inputs=[args.input, *files])
    check_output_outside(args.output, Path(args.input))
    note_left_out(listing)
    total, bad, schema = survey(files, args.text_field, args.entities_field, args.skip_bad, max_chars)
    if bad:
        log.warning("skipping %s bad row(s)", f"{bad:,}")
    tagger = load_tagger(args)
    out: Path = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    bar = Progress("tagging", total, "rows", enabled=not args.quiet)
    n_ents = 0
    try:
        with pq.ParquetWriter(tmp, schema.append(pa.field(args.entities_field, entity_arrow_type()))) as writer:
            for path in files:
                for batch in _open(path).iter_batches(batch_size=args.batch_size):
                    table, n = _tag(tagger, pa.Table.from_batches([batch]), args.text_field, args.entities_field,
                                    args.batch_size, max_chars)
                    writer.write_table(table)
                    n_ents += n
                    bar.update(table.num_rows)
        bar.close()
        publish_file(tmp, out, overwrite=args.overwrite)
        record_output_file(out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s row(s), %s entities%s; total %.1f s; wrote %s", f"{total:,}", f"{n_ents:,}",
             f", {bad:,} bad row(s) skipped" if bad else "", time.perf_counter() - t0, out)
    return 0
