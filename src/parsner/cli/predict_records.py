"""``parsner predict --input ARCHIVE``: records in, records out, streamed, resumable, on one machine or on Ray.

Order of work: options and the output rule (an output inside a folder input is refused); the folder's listing (an
entry that would not be read is an error naming it, or with ``--skip-unreadable`` named on stderr and left out); with
``--resume``, the verification of the interrupted run's partial output against its manifest's sha256; then the check
pass (every record is read once, each line with a byte cap: a bad one stops the run here, naming file:line, before
the model is loaded and before any output exists); then, with ``--resume``, the manifest comparison; then the model;
then tagging, batch after batch, each batch's lines appended to the output as soon as it is tagged. Records from
stdin cannot be read twice: they are checked as they stream.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError, InputError, ParsnerError
from parsner.serving.archive import (
    DEFAULT_MAX_TEXT_CHARS,
    RecordOptions,
    Survey,
    add_entities,
    batches,
    check_output_outside,
    file_sources,
    iter_records,
    note_left_out,
    read_lines,
    record_files,
    survey,
)
from parsner.serving.archive_resume import (
    Prefix,
    RecordFile,
    check_resumable,
    manifest_path,
    model_folder_fingerprint,
    new_manifest,
    partial_path,
    read_manifest,
    resume_point,
    verified_prefix,
)
from parsner.serving.progress import Progress

#: The largest --max-chars: a 6 TB line cap, far beyond any memory, still a valid size for ``readline``.
MAX_TEXT_CHARS_LIMIT = 10**12


class PredictInterrupted(ParsnerError):
    """Tagging stopped by a signal; the records tagged so far wait in OUT.partial for --resume."""

    def __init__(self, signum: int, done: int, total: int | None, partial: Path | None) -> None:
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        of = f" of {total:,}" if total is not None else ""
        kept = (f"; they are kept in {partial}: run the same command with --resume to continue"
                if partial is not None else "")
        super().__init__(f"predict stopped by {name} after {done:,}{of} records{kept}")


@dataclass
class Plan:
    files: list[Path] | None  # None: records from stdin
    opts: RecordOptions
    survey: Survey | None
    start: int = 0  # records already in OUT.partial (a batch boundary)
    prefix: Prefix | None = None  # the verified part of OUT.partial that a resumed run keeps
    manifest: dict[str, Any] | None = None
    streamed_bad: int = 0  # bad records skipped while streaming stdin (files count theirs in the survey)


def record_options(args: argparse.Namespace) -> RecordOptions:
    if not args.text_field:
        raise ConfigError("--text-field must name a field")
    if not args.entities_field or args.entities_field == args.text_field:
        raise ConfigError("--entities-field must name a new field (not the text field)")
    max_chars = DEFAULT_MAX_TEXT_CHARS if args.max_chars is None else args.max_chars
    if not 1 <= max_chars <= MAX_TEXT_CHARS_LIMIT:  # the line cap it implies must fit a read call
        raise ConfigError(f"--max-chars must be between 1 and {MAX_TEXT_CHARS_LIMIT:,}")
    return RecordOptions(text_field=args.text_field, entities_field=args.entities_field, skip_bad=args.skip_bad,
                         batch_size=args.batch_size, max_text_chars=max_chars)


def output_options(args: argparse.Namespace, opts: RecordOptions) -> dict[str, Any]:
    """The options that change the output bytes (a resumed run must use the same)."""
    label_map = args.label_map
    if label_map is not None and Path(label_map).is_file():
        from parsner.atomic import file_sha256

        label_map = f"{label_map} sha256:{file_sha256(Path(label_map))}"
    options = {"text_field": opts.text_field, "entities_field": opts.entities_field, "skip_bad": opts.skip_bad,
               "batch_size": opts.batch_size, "max_chars": opts.max_chars, "max_text_chars": opts.max_text_chars,
               "normalizer": args.normalizer, "label_map": label_map, "quantize": bool(args.quantize)}
    if getattr(args, "min_score", None):  # only when given: manifests written before --min-score still resume
        options["min_score"] = args.min_score
    return options


def _check_options(args: argparse.Namespace) -> None:
    if args.texts:
        raise ConfigError("give TEXT arguments or records (--input FILE.jsonl), not both")
    if args.format != "jsonl":
        raise ConfigError(f"records come out as records (JSON Lines): --format {args.format} takes plain-text input")
    if args.order != "input":
        raise ConfigError("records keep their input order: --order uncertainty takes plain-text input")
    if args.input == "-":
        if args.resume:
            raise ConfigError("--resume needs an input that can be read again: give --input FILE|DIR, not stdin")
        if args.engine == "ray":
            raise ConfigError("--engine ray reads files: give --input FILE|DIR, not stdin")
        if sys.stdin is None or getattr(sys.stdin, "closed", False):
            raise InputError("<stdin>", None, "standard input is closed; pipe the records in or use --input FILE")
    if args.engine == "ray":
        from parsner.serving.ray_engine import check_options

        check_options(args)
    else:
        given = [o for o, v in (("--workers", args.workers), ("--ray-address", args.ray_address),
                                ("--gpus-per-worker", args.gpus_per_worker),
                                ("--cpus-per-worker", args.cpus_per_worker)) if v is not None]
        if given:
            raise ConfigError(f"{given[0]} is an option of --engine ray")
    if args.resume and args.output is None:
        raise ConfigError("--resume continues an --output FILE; give the --output of the interrupted run")


def _check_partial(args: argparse.Namespace) -> dict[str, Any] | None:
    """The manifest to resume from (None: start afresh), after the rules for an interrupted run's leftovers."""
    out: Path = args.output
    partial, manifest = partial_path(out), manifest_path(out)
    saved = read_manifest(out)
    if not partial.exists():
        if args.resume:
            print(f"parsner predict: note: no interrupted run to resume ({partial} not found); starting",
                  file=sys.stderr)
        return None
    if saved is None:
        raise ConfigError(f"{partial} exists and was not written by parsner (no {manifest.name}); remove it "
                          "yourself or choose another --output")
    if args.resume:
        return saved
    if args.overwrite:
        return None
    raise ConfigError(f"{partial} holds the records of an interrupted run: continue it with --resume, or start "
                      "again with --overwrite")


def plan_run(args: argparse.Namespace, *, progress: bool) -> Plan:
    """Everything checked before the model is loaded (see the module docstring)."""
    _check_options(args)
    opts = record_options(args)
    if args.input == "-":
        if args.output is not None:
            from parsner.atomic import check_output_file

            check_output_file(args.output, overwrite=args.overwrite)
        return Plan(None, opts, None)
    listing = record_files(Path(args.input), args.skip_unreadable)
    files = listing.files
    saved = prefix = None
    if args.output is not None:
        from parsner.atomic import check_output_file

        check_output_file(args.output, overwrite=args.overwrite, inputs=[args.input, *files])
        check_output_outside(args.output, Path(args.input))
        saved = _check_partial(args)
        if saved is not None:
            prefix = verified_prefix(args.output, saved)
    note_left_out(listing)
    total = sum(f.stat().st_size for f in files)
    bar = Progress("checking records", total, "MB", enabled=progress, scale=1e6)
    found = survey(files, opts, resume_at=prefix.lines if prefix is not None else 0, progress=bar)
    bar.close()
    if found.bad:
        print(f"parsner predict: skipping {found.bad:,} bad record(s); first: {found.first_bad[0]}", file=sys.stderr)
    plan = Plan(files, opts, found)
    if args.output is None:
        return plan
    options = output_options(args, opts)
    fingerprint = model_folder_fingerprint(args.model)
    if saved is not None and prefix is not None:
        check_resumable(saved, found, fingerprint, options)
        resume_point(args.output, found, prefix)
        plan.start, plan.prefix, plan.manifest = found.boundary, prefix, saved
    else:
        plan.manifest = new_manifest(found, [str(args.input)], str(args.model), fingerprint, options)
    return plan


class _Stdout:
    """Records to stdout, flushed after every batch (a pipe sees them as they are tagged)."""

    keep = False

    def __init__(self) -> None:
        stream = sys.stdout
        if hasattr(stream, "reconfigure") and (stream.encoding or "").lower().replace("-", "") != "utf8":
            stream.reconfigure(encoding="utf-8")
        self.stream = stream

    def write(self, lines: Sequence[str]) -> None:
        if lines:
            self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.flush()

    def abandon(self) -> None:
        pass


def _sources(plan: Plan) -> Iterator[tuple[str, Any]]:
    if plan.files is not None:
        return file_sources(plan.files, plan.opts)
    return iter([("<stdin>", read_lines(sys.stdin.buffer, plan.opts.max_line_bytes))])


def _tag_local(args: argparse.Namespace, plan: Plan, sink: Any, bar: Progress, tagger: Any) -> tuple[int, int]:
    """Tag batch after batch in this process; returns (records, entities) written."""
    n_recs = n_ents = 0
    def count_bad(_: Any) -> None:
        plan.streamed_bad += 1

    records = iter_records(_sources(plan), plan.opts, count_bad)
    for batch in batches(records, plan.opts, start=plan.start):
        docs = tagger.tag_documents([r.text for r in batch], batch_size=plan.opts.batch_size)
        sink.write([add_entities(r.json, d.entities, plan.opts.entities_field) for r, d in zip(batch, docs,
                                                                                              strict=True)])
        n_recs += len(batch)
        n_ents += sum(len(d.entities) for d in docs)
        bar.update(len(batch))
    return n_recs, n_ents


def _load_tagger(args: argparse.Namespace) -> Any:
    from parsner.inference.tagger import Tagger

    return Tagger.from_pretrained(args.model, device=args.device, quantize=args.quantize,
                                  normalizer=args.normalizer, label_map=args.label_map,
                                  min_score=getattr(args, "min_score", None) or 0.0)


def run_records(args: argparse.Namespace) -> int:
    from parsner.runlock import RunLock
    from parsner.serving.archive_parquet import holds_parquet

    if args.input != "-" and holds_parquet(Path(args.input)):
        from parsner.serving.archive_parquet import parquet_files, run

        record_options(args)  # the same option checks as for JSON Lines
        listing = parquet_files(Path(args.input), args.skip_unreadable)
        return run(args, listing, _load_tagger)
    t0 = time.perf_counter()
    plan = plan_run(args, progress=not args.quiet)
    # Taken after the checks, so that a refused run leaves no trace (the lock would create OUT's folder); a second
    # run on the same OUT then stops here, before it touches OUT.partial.
    lock = RunLock(args.output, what="a parsner predict run") if args.output is not None else contextlib.nullcontext()
    with lock:
        return _run(args, plan, t0)


def _run(args: argparse.Namespace, plan: Plan, t0: float) -> int:
    from parsner.cli import Terminated

    show = not args.quiet
    check_s = time.perf_counter() - t0
    tagger = _load_tagger(args) if args.engine == "local" else None
    load_s = time.perf_counter() - t0 - check_s
    sink: Any = _Stdout() if args.output is None else RecordFile(
        args.output, overwrite=args.overwrite, keep=plan.files is not None, manifest=plan.manifest,
        prefix=plan.prefix)
    total = plan.survey.records if plan.survey is not None else None
    bar = Progress("tagging", total, "records", enabled=show, initial=plan.start)
    if plan.start:
        print(f"parsner predict: resuming after {plan.start:,} records already in {partial_path(args.output)}",
              file=sys.stderr)
    try:
        if args.engine == "ray":
            from parsner.serving.ray_engine import tag_archive

            n_recs, n_ents = tag_archive(args, plan, sink, bar)
        else:
            n_recs, n_ents = _tag_local(args, plan, sink, bar, tagger)
    except (Terminated, KeyboardInterrupt) as exc:
        sink.abandon()
        bar.close()
        signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        kept = None if args.output is None or not partial_path(args.output).exists() else partial_path(args.output)
        raise PredictInterrupted(signum, bar.n, total, kept) from None
    except BaseException:
        sink.abandon()
        bar.close()
        raise
    bar.close()
    sink.finish()
    bad = plan.survey.bad if plan.survey is not None else plan.streamed_bad
    print(
        f"parsner predict: {n_recs:,} record(s), {n_ents:,} entit{'y' if n_ents == 1 else 'ies'}"
        + (f", {bad:,} bad record(s) skipped" if bad else "")
        + (f", {plan.start:,} from the interrupted run" if plan.start else "")
        + f"; check {check_s:.1f} s" + (f", model load {load_s:.1f} s" if tagger is not None else "")
        + f", total {time.perf_counter() - t0:.1f} s"
        + (f"; wrote {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 0
