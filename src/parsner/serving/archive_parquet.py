"""Parquet in, Parquet out: ``parsner predict --input news.parquet --output tagged.parquet``.

Every input column is written back as it was (same Arrow types, same values), with an ``entities`` column added:
``list<struct<text, label, start, end, score>>``, the dicts of the JSONL output. The text column is read once before
the model loads (a null or non-string there is refused with its file and row, or skipped with ``--skip-bad``), then
the files are streamed in batches of ``--batch-size`` rows into a Parquet writer. A Parquet file has its index at the
end, so an interrupted run cannot be continued: its temporary file is removed, as for every other ``--output``
(``--resume`` is for JSON Lines).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError, InputError
from parsner.serving.progress import Progress

PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet_name(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def parquet_files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and is_parquet_name(p))


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


def _bad_rows(texts: Sequence[Any], path: Path, first_row: int, field: str) -> Iterator[InputError]:
    """Rows whose text cannot be tagged, as errors naming the file and the row (numbered from 1)."""
    for k, text in enumerate(texts):
        if isinstance(text, str) and "\0" not in text:
            continue
        what = "contains a NUL character" if isinstance(text, str) else \
            f"is {'null' if text is None else type(text).__name__}, not text"
        yield InputError(path, None, f"row {first_row + k}: column {field!r} {what}; nothing was tagged "
                                     "(--skip-bad skips and counts such rows)")


def survey(files: Sequence[Path], field: str, entities_field: str, skip_bad: bool) -> tuple[int, int, Any]:
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
            for problem in _bad_rows(texts, path, row, field):
                if not skip_bad:
                    raise problem
                bad += 1
            good += len(texts)
            row += len(texts)
    return good - bad, bad, schema


def _tag(tagger: Any, table: Any, field: str, entities_field: str, batch_size: int) -> tuple[Any, int]:
    import pyarrow as pa

    from parsner.serving.archive import entity_arrow_type
    from parsner.serving.render import entity_record

    texts = table.column(field).to_pylist()
    keep = [isinstance(t, str) and "\0" not in t for t in texts]
    if not all(keep):
        table = table.filter(pa.array(keep))
        texts = [t for t, k in zip(texts, keep, strict=True) if k]
    docs = tagger.tag_documents(texts, batch_size=batch_size)
    ents = [[entity_record(e) for e in d.entities] for d in docs]
    return table.append_column(entities_field, pa.array(ents, type=entity_arrow_type())), sum(map(len, ents))


def run(args: argparse.Namespace, files: list[Path], load_tagger: Any) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from parsner.atomic import check_output_file, publish_file, record_output_file
    from parsner.serving.archive import entity_arrow_type

    t0 = time.perf_counter()
    check_options(args)
    if not files:
        raise InputError(args.input, None, "folder has no *.parquet files")
    check_output_file(args.output, overwrite=args.overwrite, inputs=[args.input, *files])
    total, bad, schema = survey(files, args.text_field, args.entities_field, args.skip_bad)
    if bad:
        print(f"parsner predict: skipping {bad:,} bad row(s)", file=sys.stderr)
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
                                    args.batch_size)
                    writer.write_table(table)
                    n_ents += n
                    bar.update(table.num_rows)
        bar.close()
        publish_file(tmp, out, overwrite=args.overwrite)
        record_output_file(out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"parsner predict: {total:,} row(s), {n_ents:,} entities" + (f", {bad:,} bad row(s) skipped" if bad else "")
          + f"; total {time.perf_counter() - t0:.1f} s; wrote {out}", file=sys.stderr)
    return 0
