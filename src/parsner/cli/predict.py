"""``parsner predict``: tag raw Persian text with a trained model and stream the results.

Inputs: TEXT arguments (one text each), ``--input FILE`` (one text per line), ``--input DIR`` (each ``*.txt``
file is one text) or ``--input -`` (stdin, one text per line). Every input line is answered, empty ones
too, so output records line up with input lines. Results are written as they are produced (in groups of
``--batch-size`` texts); ``--output FILE`` is written through a temporary file and renamed at the end, so a
failed run leaves no half-written file.

Records (``--input FILE.jsonl``, ``.jsonl.gz``/``.bz2``/``.xz``, a folder of them, or ``--input-format jsonl``) go to
:mod:`parsner.cli.predict_records`: each record comes back whole with its entities added, streamed, resumable, on
this machine or on Ray (``--engine ray``). JSON is never tagged as text.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from parsner import surrogates
from parsner.errors import ConfigError, InputError, ModelLoadError
from parsner.serving.preannotate import TOOL_FORMATS
from parsner.serving.render import FORMATS, OutputWriter

#: Texts in one tagging call are also capped by characters, so a directory of long articles streams too.
MAX_CHARS_PER_CALL = 200_000


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="find the entities in raw Persian text (json, jsonl, conll, html, text; labelstudio, doccano, "
        "brat pre-annotations)",
        description=(
            "Tag raw text with a trained model. Entity offsets index the ORIGINAL text (before any "
            "normalisation). --input FILE: one text per line; --input DIR: each *.txt file is one text; "
            "--input -: stdin, one text per line. --input FILE.jsonl[.gz] (or a folder of them, or .parquet): "
            "records, each written back whole with its entities (resumable; --engine ray for a cluster)."
        ),
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to tag")
    p.add_argument("--model", required=True, help="trained run directory (parsner train --out) or hub id")
    p.add_argument("--input", metavar="FILE|DIR|-",
                   help="read texts from a file, a directory or stdin; *.jsonl (also .gz, .bz2, .xz), *.parquet "
                        "and folders of them are records")
    p.add_argument(
        "--format",
        choices=(*FORMATS, *TOOL_FORMATS),
        default="jsonl",
        help="output format (default: jsonl); labelstudio/doccano/brat write pre-annotations for those tools "
        "(brat: --output is a new folder of .txt/.ann pairs)",
    )
    p.add_argument(
        "--order",
        choices=("input", "uncertainty"),
        default="input",
        help="document order: as given (default, streamed) or the least certain first (active learning)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="texts / model windows per batch (default 32)")
    p.add_argument("--min-score", default=None, metavar="X",
                   help="drop entities whose (calibrated) score is below X, from 0 to 1 (default: keep all); "
                        "their words are tagged O in every output")
    p.add_argument("--output", type=Path, metavar="FILE", help="write here instead of stdout")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --output FILE (only one parsner wrote and nobody changed since)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--quantize", action="store_true", help="dynamic int8 quantisation (CPU only)")
    p.add_argument("--label-map", metavar="FILE|PRESET", default=None,
                   help="map the model's types (a preset or a YAML/JSON file of TYPE: TYPE or LABEL_N: TAG)")
    p.add_argument("--normalizer", default="auto", metavar="auto|parsbert|parsbert-zwnj|none|FILE",
                   help="text preprocessing before the tokenizer (default auto: the model's normalizer.json, "
                        "else parsbert for HooshvareLab ParsBERT ids, parsbert-zwnj for bert-fa-zwnj-*, else none)")
    p.add_argument("--title", default="ParsNER", help="page title for --format html")
    _register_records(p)
    p.set_defaults(func=run)


def _register_records(p: argparse.ArgumentParser) -> None:
    """Options for JSON Lines records (archives) and the engines that tag them."""
    g = p.add_argument_group("records (--input FILE.jsonl, FILE.jsonl.gz or a folder of them)")
    g.add_argument("--input-format", choices=("auto", "jsonl", "text"), default="auto",
                   help="auto (default): *.jsonl[.gz] and folders of them are records, other files text; jsonl: "
                        "read --input (also stdin) as records; text: tag lines of a non-JSON file even if they "
                        "look like JSON")
    g.add_argument("--text-field", default="text", metavar="FIELD", help="the field of each record to tag")
    g.add_argument("--entities-field", default="entities", metavar="FIELD",
                   help="the field added to each record (default entities; a record that has it is refused)")
    g.add_argument("--skip-bad", action="store_true",
                   help="skip and count records that cannot be tagged (no text field, not a string, invalid JSON, "
                        "a text over --max-chars) instead of stopping on the first, with its file:line")
    g.add_argument("--max-chars", type=int, default=None, metavar="N",
                   help="characters one record's text may hold (default 1000000); a longer one is a bad record, "
                        "and a line longer than 6 bytes per character plus 1 MiB is refused without being read "
                        "into memory")
    g.add_argument("--skip-unreadable", action="store_true",
                   help="a folder input: leave out (and name on stderr) the entries that are not read as records "
                        "(subfolders, .json files, other files), instead of stopping with their names")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its --output FILE.partial (same input, model, options)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default): this process; ray: an actor pool on Ray (pip install 'parsner[ray]'), "
                        "same output")
    g.add_argument("--workers", type=int, default=None, help="--engine ray: actors, each holding one model (default 1)")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="--engine ray: join this cluster (auto, or HOST:PORT; with Ray's token authentication, "
                        "the default since Ray 2.60, set RAY_AUTH_MODE=token and the cluster's token for HOST:PORT); "
                        "default: start a private Ray on this machine")
    g.add_argument("--gpus-per-worker", type=float, default=None, metavar="G",
                   help="--engine ray: GPUs per actor (e.g. 1; refused when the cluster has fewer)")
    g.add_argument("--cpus-per-worker", type=float, default=None, metavar="C",
                   help="--engine ray: CPUs per actor (default: the cluster's CPUs / --workers, at most 1 on a "
                        "joined cluster); also each actor's torch threads")


def iter_inputs(texts: list[str], source: str | None, *, sniff: bool = False) -> Iterator[tuple[str, str]]:
    """``(id, text)`` pairs: ``arg:N``, ``FILE:LINE``, ``<stdin>:LINE`` or the path of a ``*.txt`` file.

    ``sniff``: refuse stdin whose first line is a JSON record (files are checked before the model loads).
    """
    for i, text in enumerate(texts, 1):
        yield f"arg:{i}", text
    if source is None:
        return
    if source == "-":
        if sys.stdin is None or getattr(sys.stdin, "closed", False):
            raise InputError("<stdin>", None, "standard input is closed; pipe the texts in or use --input FILE")
        lines = _lines(sys.stdin.buffer, "<stdin>")
        yield from _refuse_records(lines) if sniff else lines
        return
    path = Path(source)
    if path.is_dir():
        for f in _txt_files(path):
            data = f.read_bytes()
            yield str(f), _decode(data, f, None).removeprefix("\ufeff")
    else:
        with _open_input(path) as fh:
            yield from _lines(fh, str(path))


def _txt_files(path: Path) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.suffix == ".txt" and p.is_file())
    if not files:
        raise InputError(path, None, "directory has no *.txt files")
    return files


@contextlib.contextmanager
def _open_input(path: Path) -> Iterator:
    if not path.exists():
        raise InputError(path, None, "input file not found")
    with open(path, "rb") as fh:
        yield fh


def _decode(data: bytes, path: str | Path, line: int | None) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}" + ("" if line is None else " of the line")
        bad = data[exc.start : exc.start + 4]
        raise InputError(path, line, f"not valid UTF-8 ({where}: {bad!r})") from None
    _refuse_nul(text, path, line)
    return text


def _refuse_nul(text: str, path: str | Path, line: int | None) -> None:
    """NUL is not text (a binary file, or a corrupt one): refused, as `parsner data build` does.

    So is a lone surrogate (refused, not replaced: :mod:`parsner.surrogates`). Strictly decoded UTF-8 cannot
    hold one, so only text handed to :func:`run` from Python (``main([...])``) meets this check.
    """
    k = text.find("\0")
    if k >= 0:
        raise InputError(path, line, f"contains a NUL byte (character {k + 1}); is this a text file?")
    why = surrogates.problem(text)
    if why is not None:
        raise InputError(path, line, f"contains {why}")


def _lines(fh, name: str) -> Iterator[tuple[str, str]]:
    for n, raw in enumerate(fh, 1):
        text = _decode(raw, name, n).rstrip("\n").removesuffix("\r")
        if n == 1:
            text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the text
        yield f"{name}:{n}", text


def _refuse_records(items: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    from parsner.serving.archive import looks_like_record

    checked = False
    for doc_id, text in items:
        if not checked and text.strip():
            checked = True
            if looks_like_record(text):
                raise InputError("<stdin>", int(doc_id.rsplit(":", 1)[1]), _RECORD_AS_TEXT)
        yield doc_id, text


def _batches(items: Iterator[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    batch: list[tuple[str, str]] = []
    chars = 0
    for item in items:
        batch.append(item)
        chars += len(item[1])
        if len(batch) >= size or chars >= MAX_CHARS_PER_CALL:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def _check_text_options(args: argparse.Namespace) -> None:
    """Plain-text input: refuse the options that only records have, and JSON passed where text is expected."""
    from parsner.serving.archive import looks_like_record

    given = [opt for opt, on in (("--resume", args.resume), ("--skip-bad", args.skip_bad),
                                 ("--skip-unreadable", args.skip_unreadable),
                                 ("--max-chars", args.max_chars is not None),
                                 ("--engine ray", args.engine != "local"), ("--text-field", args.text_field != "text"),
                                 ("--entities-field", args.entities_field != "entities"),
                                 ("--workers", args.workers is not None),
                                 ("--ray-address", args.ray_address is not None),
                                 ("--gpus-per-worker", args.gpus_per_worker is not None),
                                 ("--cpus-per-worker", args.cpus_per_worker is not None)) if on]
    if given:
        what = f"--input {args.input}" if args.input else "TEXT arguments"
        raise ConfigError(f"{given[0]} reads records (--input FILE.jsonl); {what} is plain text")
    for i, text in enumerate(args.texts, 1):
        if re.fullmatch(r"\S+\.(jsonl?|ndjson|parquet|txt)(\.(gz|bz2|xz))?", text.strip()):
            raise ConfigError(f"TEXT {i} {text!r} is a file name, not text to tag: read it with --input {text}")
    if args.input_format == "auto" and args.input not in (None, "-") and Path(args.input).is_file():
        with _open_input(Path(args.input)) as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    if looks_like_record(line):
                        raise InputError(args.input, n, _RECORD_AS_TEXT)
                    break


_RECORD_AS_TEXT = ("this line is a JSON record, not text: name the file .jsonl, or pass --input-format jsonl to "
                   "tag its records (--input-format text tags the lines as they are)")


def _check_inputs(args: argparse.Namespace) -> None:
    """Fail on a missing input before the (slow) model load."""
    if not args.texts and args.input is None:
        raise ConfigError("nothing to tag: give TEXT arguments or --input FILE|DIR|-")
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    _check_text_options(args)
    if args.format == "brat":
        if args.output is None:
            raise ConfigError("--format brat writes a folder of .txt/.ann pairs: give --output DIR (a new folder)")
        if args.output.exists():
            raise ConfigError(f"{args.output} already exists; --format brat writes a new folder")
    for i, text in enumerate(args.texts, 1):
        _refuse_nul(text, f"arg:{i}", None)
    if args.input == "-" and (sys.stdin is None or getattr(sys.stdin, "closed", False)):
        raise InputError("<stdin>", None, "standard input is closed; pipe the texts in or use --input FILE")
    if args.output is not None:
        from parsner.atomic import check_output_file

        check_output_file(args.output, overwrite=args.overwrite,
                          inputs=[None if args.input in (None, "-") else args.input])
    if args.input not in (None, "-"):
        path = Path(args.input)
        if not path.exists():
            raise InputError(path, None, "input not found")
        if path.is_dir():
            _txt_files(path)
    _check_model(args)


def _check_model(args: argparse.Namespace) -> None:
    """Device, label map and model path, checked before the model load (text and records alike)."""
    if args.engine == "local":
        from parsner.cli import check_device

        check_device(args.device)
    if args.label_map is not None:
        from parsner.labels import load_label_map

        load_label_map(args.label_map)
    model = Path(args.model)
    # A hub id is "name" or "org/name"; anything else that does not exist is a missing directory.
    looks_local = model.is_absolute() or args.model.startswith(".") or args.model.count("/") > 1
    if looks_local and not model.exists():
        raise ModelLoadError(f"{args.model}: model directory not found")


def run(args: argparse.Namespace) -> int:
    from parsner.cli import check_min_score
    from parsner.serving.archive import input_kind

    args.min_score = check_min_score(args.min_score)
    if args.input not in (None, "-") and not Path(args.input).exists():
        raise InputError(args.input, None, "input not found")
    if input_kind(args.input, args.input_format) == "records":
        if args.batch_size < 1:
            raise ConfigError("--batch-size must be >= 1")
        _check_model(args)
        from parsner.cli.predict_records import run_records

        return run_records(args)
    _check_inputs(args)
    from parsner.inference.tagger import Tagger

    t0 = time.perf_counter()
    tagger = Tagger.from_pretrained(args.model, device=args.device, quantize=args.quantize,
                                    normalizer=args.normalizer, label_map=args.label_map,
                                    min_score=args.min_score or 0.0)
    load_s = time.perf_counter() - t0
    with _output_for(args) as out:
        writer = _writer(args, out, tagger.labels)
        writer.begin()
        n_docs = n_ents = 0
        interactive = args.input == "-" and sys.stdin.isatty() and args.order == "input"
        held = []  # --order uncertainty: every document is needed before the first is written
        inputs = iter_inputs(args.texts, args.input, sniff=args.input_format == "auto")
        for batch in _batches(inputs, 1 if interactive else args.batch_size):
            docs = tagger.tag_documents([t for _, t in batch], batch_size=args.batch_size)
            for (doc_id, _), doc in zip(batch, docs, strict=True):
                if args.order == "uncertainty":
                    held.append((doc_id, doc))
                else:
                    writer.write(doc_id, doc)
                n_docs += 1
                n_ents += len(doc.entities)
        if held:
            from parsner.serving.preannotate import uncertainty

            for doc_id, doc in sorted(held, key=lambda item: -uncertainty(item[1])):
                writer.write(doc_id, doc)
        writer.end()
    total = time.perf_counter() - t0
    print(
        f"parsner predict: {n_docs} text(s), {n_ents} entit{'y' if n_ents == 1 else 'ies'}; "
        f"model load {load_s:.1f} s, total {total:.1f} s"
        + (f"; wrote {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 0


def _writer(args: argparse.Namespace, out: TextIO | Path, labels: list[str]) -> Any:
    """The streaming writer of ``--format`` (a folder for brat, a text stream otherwise)."""
    from parsner.serving import preannotate

    if args.format == "brat":
        return preannotate.BratWriter(Path(out), labels=labels, rank_prefix=args.order == "uncertainty")  # type: ignore[arg-type]
    if args.format == "labelstudio":
        version = Path(args.model).name or str(args.model)
        return preannotate.LabelStudioWriter(out, model_version=version)  # type: ignore[arg-type]
    if args.format == "doccano":
        return preannotate.DoccanoWriter(out)  # type: ignore[arg-type]
    return OutputWriter(args.format, out, labels=labels, title=args.title)  # type: ignore[arg-type]


@contextlib.contextmanager
def _output_for(args: argparse.Namespace) -> Iterator[Any]:
    """A new folder for brat (renamed into place when complete), else :func:`_output`."""
    if args.format != "brat":
        with _output(args.output, overwrite=args.overwrite) as out:
            yield out
        return
    from parsner.atomic import atomic_dir

    with atomic_dir(args.output) as tmp:
        yield tmp


@contextlib.contextmanager
def _output(path: Path | None, *, overwrite: bool = False) -> Iterator[TextIO]:
    """stdout (UTF-8), or ``path`` written through a temporary file renamed into place on success."""
    if path is None:
        stream = sys.stdout
        if hasattr(stream, "reconfigure") and (stream.encoding or "").lower().replace("-", "") != "utf8":
            stream.reconfigure(encoding="utf-8")
        yield stream
        stream.flush()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            yield fh
        from parsner.atomic import publish_file, record_output_file

        publish_file(tmp, path, overwrite=overwrite)
        record_output_file(path)  # so a later --overwrite may replace it
    finally:
        if tmp.exists():
            tmp.unlink()
