"""Build the HuggingFace ``DatasetDict`` that training and evaluation use, write it with its records, load it back.

``build_dataset`` reads annotated files (any format :mod:`parsner.data.readers` knows), has
:mod:`parsner.data.splits` assign sentences to ``train``/``validation``/``test`` (a splits file, the inputs' folder
and file names, or a seeded split by document), builds the columns, and writes atomically into DIR:

* the ``DatasetDict`` (``save_to_disk``) with the features of ``docs/ARCHITECTURE.md``;
* ``stats.json``  - sentences, tokens and entities per type per split, repaired tags and notes per input;
* ``audit.json``  - exact duplicates inside each split and train/validation/test overlap;
* ``README.md``   - a dataset card (HF conventions) filled from the two files above;
* ``build.json``  - the inputs (path, sha256, format) and every build option, so a build can be replayed, and the
  licence of the data (:mod:`parsner.data.licence`: each source's terms, the most restrictive one on top).

``load_dataset_dir`` and ``read_json`` read such a folder back. The numbers in ``stats.json``/``audit.json`` come
from :mod:`parsner.data.datastats`, the card from :mod:`parsner.data.dataset_card`. ``datasets`` is imported inside
the functions that need it, so ``import parsner.data.dataset`` stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsner._version import __version__
from parsner.atomic import atomic_dir, check_output_dir, file_sha256
from parsner.data.dataset_card import render_dataset_card
from parsner.data.datastats import _audit_from_columns, _label_warnings, _stats_from_columns
from parsner.data.licence import CORPUS_TERMS, USER_FILES, Terms, combine, file_terms, given_terms
from parsner.data.records import ReadResult, Sentence
from parsner.data.splits import BLOCK_SIZE, assign_splits, named_splits, parse_split_ratios
from parsner.errors import ConfigError, InputError
from parsner.labels import label_list, load_label_map

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from datasets import DatasetDict, Features

Log = Callable[[str], None]

#: One read input: its result, and the sha256 and size of its file (None for an already-read result).
ReadInput = tuple[ReadResult, str | None, int | None]


# --------------------------------------------------------------------------------------------- report


@dataclass
class BuildReport:
    """What a build wrote and found. ``stats``/``audit``/``build`` are the contents of the JSON files."""

    out: Path
    splits: dict[str, int]  # sentences per split
    label_names: list[str]
    stats: dict[str, Any]
    audit: dict[str, Any]
    build: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase


# --------------------------------------------------------------------------------------------- build


def dataset_features(names: list[str]) -> Features:
    """The on-disk features of a ParsNER dataset (``docs/ARCHITECTURE.md``)."""
    from datasets import ClassLabel, Features, List, Value

    return Features(
        {
            "id": Value("string"),
            "tokens": List(Value("string")),
            "ner_tags": List(ClassLabel(names=names)),
            "source": Value("string"),
            "line": Value("int32"),
            "doc_id": Value("string"),
            "offsets": List(List(Value("int32"))),
        }
    )


def _resolve_label_map(label_map: str | Path | Mapping[str, str] | None) -> dict[str, str] | None:
    """The label map as a dict: given as one, or loaded from a preset name or a YAML/JSON file."""
    if label_map is None or isinstance(label_map, Mapping):
        return dict(label_map) if label_map is not None else None
    try:
        return load_label_map(label_map)
    except UnicodeDecodeError as exc:
        raise InputError(label_map, None, f"not valid UTF-8 (byte {exc.start}: "
                                          f"{exc.object[exc.start:exc.start + 4]!r})") from None


def _check_out(
    out: Path,
    overwrite: bool,
    inputs: Sequence[Path | str | ReadResult],
    splits_path: Path | None,
    label_map: str | Path | Mapping[str, str] | None,
) -> None:
    """The output rule of :mod:`parsner.atomic`, checked before anything is read (no input may be replaced)."""
    file_inputs = [Path(x) for x in inputs if not isinstance(x, ReadResult)]
    map_file = label_map if isinstance(label_map, str | Path) and Path(label_map).is_file() else None
    check_output_dir(out, kind="dataset", overwrite=overwrite, inputs=[*file_inputs, splits_path, map_file])


def _check_tokens(result: ReadResult) -> None:
    """Tokens that every later step (CoNLL output, evaluation files) can write back: no tabs, no line breaks."""
    for sent in result.sentences:
        for k, tok in enumerate(sent.tokens, 1):
            bad = next((c for c in ("\t", "\n", "\r", "\0") if c in tok), None)
            if bad is not None:
                raise InputError(sent.source, sent.line, f"token {k} of the sentence, {tok!r}, contains {bad!r}; "
                                 "a token cannot hold tabs or line breaks")


def _fingerprint(path: Path) -> tuple[str, int]:
    """sha256 and size of an input: a file, or a brat collection (its .ann and .txt files) for a folder."""
    if not path.is_dir():
        return file_sha256(path), path.stat().st_size
    files = sorted(f for f in path.rglob("*") if f.suffix in (".ann", ".txt") and f.is_file())
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative_to(path)}\0{file_sha256(f)}\n".encode())
    return digest.hexdigest(), sum(f.stat().st_size for f in files)


def _read_inputs(
    inputs: Sequence[Path | str | ReadResult],
    fmt: str | None,
    strict: bool,
    label_map: dict[str, str] | None,
    log: Log,
    reader_options: Mapping[str, Any] | None = None,
) -> list[ReadInput]:
    """Read every input; returns ``(result, sha256, size)`` per input, in order."""
    from parsner.data.readers import read_file

    out: list[ReadInput] = []
    seen: set[Path] = set()
    for item in inputs:
        if isinstance(item, ReadResult):
            out.append((item, None, None))
            continue
        path = Path(item)
        if not path.exists():
            raise InputError(path, None, "no such file")
        if path.is_dir() and next(path.rglob("*.ann"), None) is None:
            raise InputError(path, None, "is a directory; pass the annotated files inside it")
        key = path.resolve()
        if key in seen:
            raise InputError(path, None, "given twice")
        seen.add(key)
        t0 = time.perf_counter()
        result = read_file(path, format=fmt, strict=strict, label_map=label_map, **(reader_options or {}))
        if not result.sentences:
            raise InputError(path, None, "no annotated sentences in this file")
        _check_tokens(result)
        extra = f", {result.repaired:,} tags repaired" if result.repaired else ""
        log(
            f"  read {path} [{result.format}]: {len(result.sentences):,} sentences{extra} "
            f"({time.perf_counter() - t0:.1f}s)"
        )
        out.append((result, *_fingerprint(path)))
    return out


def _flatten(read: Sequence[ReadInput]) -> tuple[list[Sentence], list[int]]:
    """Every input's sentences in order, and the input index of each."""
    sentences: list[Sentence] = []
    input_of: list[int] = []
    for k, (res, _, _) in enumerate(read):
        sentences.extend(res.sentences)
        input_of.extend([k] * len(res.sentences))
    return sentences, input_of


def _label_names(sentences: Sequence[Sentence]) -> list[str]:
    return label_list(sorted({t[2:] for s in sentences for t in s.tags if t != "O"}))


def _columns(
    sentences: Sequence[Sentence], split_idx: Mapping[str, list[int]], names: list[str]
) -> dict[str, dict[str, list]]:
    """The dataset's columns per split (features of ``docs/ARCHITECTURE.md``), ids ``<split>-<n>``."""
    tag_id = {n: i for i, n in enumerate(names)}
    columns: dict[str, dict[str, list]] = {}
    for split, idxs in split_idx.items():
        col: dict[str, list] = {
            k: [] for k in ("id", "tokens", "ner_tags", "source", "line", "doc_id", "offsets")
        }
        for n, i in enumerate(idxs):
            s = sentences[i]
            col["id"].append(f"{split}-{n}")
            col["tokens"].append(list(s.tokens))
            col["ner_tags"].append([tag_id[t] for t in s.tags])
            col["source"].append(s.source)
            col["line"].append(s.line)
            col["doc_id"].append(s.doc_id)
            col["offsets"].append([list(o) for o in s.offsets] if s.offsets is not None else [])
        columns[split] = col
    return columns


def _stat_columns(
    sentences: Sequence[Sentence], split_idx: Mapping[str, list[int]], columns: Mapping[str, dict[str, list]]
) -> dict[str, tuple[list, list, list]]:
    """What stats and the audit read per split: tokens, string tags, doc ids."""
    return {
        split: (
            [sentences[i].tokens for i in idxs],
            [sentences[i].tags for i in idxs],
            columns[split]["doc_id"],
        )
        for split, idxs in split_idx.items()
    }


def _input_records(
    read: Sequence[ReadInput], assigned: Sequence[tuple[str | None, str | None]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """build.json's record of each input (``assigned``: the split its folders or file name give and how,
    when that decided it), and the readers' notes prefixed with their file."""
    records = []
    notes: list[str] = []
    for k, (res, sha, size) in enumerate(read):
        records.append(
            {
                "path": res.path,
                "format": res.format,
                "split": assigned[k][0] or None,
                "split_by": assigned[k][1] or None,
                "sentences": len(res.sentences),
                "tokens": sum(len(s.tokens) for s in res.sentences),
                "repaired": res.repaired,
                "notes": list(res.notes),
                "sha256": sha,
                "bytes": size,
            }
        )
        notes.extend(f"{res.path}: {n}" for n in res.notes)
    return records, notes


def _stats_record(
    stat_cols: Mapping[str, tuple[list, list, list]],
    names: list[str],
    name: str,
    records: Sequence[Mapping[str, Any]],
    notes: list[str],
) -> dict[str, Any]:
    """stats.json: the numbers per split, plus the inputs, repairs and every note of the build."""
    stats = _stats_from_columns(stat_cols, names)
    stats["name"] = name
    stats["inputs"] = [
        {k: r[k] for k in ("path", "format", "split", "sentences", "tokens", "repaired")} for r in records
    ]
    stats["repaired_total"] = sum(r["repaired"] for r in records)
    stats["notes"] = notes
    return stats


def _options_record(
    *,
    format: str | None,
    label_map: str | Path | Mapping[str, str] | None,
    lmap: dict[str, str] | None,
    strict: bool,
    ratios: tuple[float, float, float],
    seed: int,
    splits_path: Path | None,
    reader_options: Mapping[str, Any] | None,
    license: str | None = None,
) -> dict[str, Any]:
    """build.json's ``options``: every option the build was given, so that it can be replayed."""
    return {
        "format": format,
        "label_map": dict(label_map)
        if isinstance(label_map, Mapping)
        else (str(label_map) if label_map is not None else None),
        "label_map_resolved": lmap,
        "strict": strict,
        "split_ratios": list(ratios),
        "seed": seed,
        "splits_file": str(splits_path) if splits_path else None,
        "block_size": BLOCK_SIZE,
        **({"reader_options": dict(reader_options)} if reader_options else {}),
        **({"license": license} if license else {}),
    }


def _licence_record(read: Sequence[ReadInput], corpus: Terms | None, given: Terms | None) -> dict[str, Any]:
    """build.json's ``license``: the terms of each input (a named corpus's, a known corpus file's, else the user's
    ``license`` or unknown), combined by :func:`parsner.data.licence.combine`, with the inputs each covers."""
    groups: dict[Terms, list[str]] = {}
    for res, sha, _ in read:
        terms = corpus or file_terms(res.path, sha) or given or USER_FILES
        groups.setdefault(terms, []).append(res.path)
    record = combine(groups)
    for src, paths in zip(record["sources"], groups.values(), strict=True):
        src["inputs"] = paths
    return record


def _build_record(
    *,
    name: str,
    command: str | None,
    method: str,
    split_idx: Mapping[str, list[int]],
    names: list[str],
    read: Sequence[ReadInput],
    records: list[dict[str, Any]],
    options: dict[str, Any],
    card_info: Mapping[str, Any] | None,
    licence: dict[str, Any],
) -> dict[str, Any]:
    """build.json: versions, time, how the splits were made, the inputs with their sha256, the options, the
    licence."""
    build = {
        "parsner_version": __version__,
        "datasets_version": _datasets_version(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "name": name,
        "command": command,
        "split_method": method,
        "splits": {s: len(i) for s, i in split_idx.items()},
        "label_list": names,
        "has_texts": any(getattr(res, "texts", None) for res, _, _ in read),
        "inputs": records,
        "options": options,
        "license": licence,
    }
    if card_info:
        build["card_info"] = {
            k: v for k, v in card_info.items() if isinstance(v, str | int | float | list | None)
        }
    return build


def _to_dataset_dict(columns: Mapping[str, dict[str, list]], names: list[str]) -> DatasetDict:
    from datasets import Dataset, DatasetDict

    features = dataset_features(names)
    return DatasetDict({split: Dataset.from_dict(col, features=features) for split, col in columns.items()})


def _write_texts(read: Sequence[ReadInput], path: Path) -> None:
    """texts.jsonl for span data: the original documents, which the word offsets point into."""
    texts = [
        {"source": res.path, "doc_id": doc, "text": text}
        for res, _, _ in read
        for doc, text in getattr(res, "texts", {}).items()
    ]
    if texts:
        with path.open("w", encoding="utf-8") as f:
            for rec in texts:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def _write_build(
    out: Path,
    overwrite: bool,
    dd: DatasetDict,
    files: Mapping[str, dict[str, Any]],
    read: Sequence[ReadInput],
    card_info: Mapping[str, Any] | None,
) -> dict[str, float]:
    """Write the dataset, the JSON ``files``, texts.jsonl and the card atomically; returns the timings."""
    stats, audit, build = files["stats.json"], files["audit.json"], files["build.json"]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with atomic_dir(out, overwrite=overwrite, kind="dataset") as tmp:
        _save_quietly(dd, tmp)
        timings["save"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        for fname, obj in files.items():
            (tmp / fname).write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        _write_texts(read, tmp / "texts.jsonl")
        card = render_dataset_card(name=stats["name"], stats=stats, audit=audit, build=build, card_info=card_info)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        timings["card"] = time.perf_counter() - t1
    return timings


def build_dataset(
    inputs: Sequence[Path | str | ReadResult],
    out: Path | str,
    *,
    format: str | None = None,
    label_map: str | Path | Mapping[str, str] | None = None,
    strict: bool = False,
    split_ratios: str | Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 42,
    splits_file: Path | str | None = None,
    overwrite: bool = False,
    name: str | None = None,
    card_info: Mapping[str, Any] | None = None,
    command: str | None = None,
    log: Log | None = log.info,  # the module's log (the parameter shadows it)
    reader_options: Mapping[str, Any] | None = None,
    license: str | None = None,
) -> BuildReport:
    """Read ``inputs``, split, and write the dataset, stats, audit, card and build record to ``out``.

    Splits (:mod:`parsner.data.splits`): a ``splits_file`` (JSON ``{split: [doc ids]}``) wins; otherwise folder and
    file names (:func:`~parsner.data.splits.split_from_path`; all inputs must then be named, and that is checked
    before anything is read; a missing validation split is carved from train by document, ``split_ratios[1]`` of
    train); otherwise a seeded split by document with ``split_ratios``. Already-read :class:`ReadResult` objects
    (e.g. from the Hub) may stand for files. ``card_info`` (licence, citation, description, warnings) fills the
    dataset card; ``license`` is the licence of the input files that no known corpus claims (default: unknown;
    :mod:`parsner.data.licence`). Nothing is written unless everything succeeds.
    """
    log = log or (lambda _msg: None)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out)
    if not inputs:
        raise ConfigError("no inputs to build from")
    ratios = parse_split_ratios(split_ratios)
    corpus_terms, given = _licence_inputs(card_info, license)
    lmap = _resolve_label_map(label_map)
    splits_path = Path(splits_file) if splits_file is not None else None
    _check_out(out, overwrite, inputs, splits_path, label_map)
    assigned = named_splits(inputs) if splits_path is None else [(None, None)] * len(inputs)  # before reading
    named = [split for split, _ in assigned]

    t0 = time.perf_counter()
    log(f"building {out} from {len(inputs)} input(s)")
    read = _read_inputs(inputs, format, strict, lmap, log, reader_options)
    timings["read"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sentences, input_of = _flatten(read)
    paths = [res.path for res, _, _ in read]
    split_idx, method, notes = assign_splits(paths, sentences, input_of, named, splits_path, ratios, seed)
    log(f"  splits: {method}")
    timings["split"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    names = _label_names(sentences)
    columns = _columns(sentences, split_idx, names)
    stat_cols = _stat_columns(sentences, split_idx, columns)
    records, input_notes = _input_records(read, assigned)  # a file's split only when its names decided it
    stats = _stats_record(stat_cols, names, name or out.name, records, [*notes, *input_notes])
    audit = _audit_from_columns(stat_cols)
    timings["stats_audit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    dd = _to_dataset_dict(columns, names)
    timings["to_dataset"] = time.perf_counter() - t0

    options = _options_record(format=format, label_map=label_map, lmap=lmap, strict=strict, ratios=ratios,
                              seed=seed, splits_path=splits_path, reader_options=reader_options, license=license)
    build = _build_record(name=stats["name"], command=command, method=method, split_idx=split_idx, names=names,
                          read=read, records=records, options=options, card_info=card_info,
                          licence=_licence_record(read, corpus_terms, given))
    files = {"stats.json": stats, "audit.json": audit, "build.json": build}
    timings.update(_write_build(out, overwrite, dd, files, read, card_info))
    timings["total"] = time.perf_counter() - t_start
    warnings = [*audit["warnings"], *_label_warnings(stat_cols), *(card_info or {}).get("warnings", [])]
    return BuildReport(
        out=out,
        splits={s: len(i) for s, i in split_idx.items()},
        label_names=names,
        stats=stats,
        audit=audit,
        build=build,
        warnings=warnings,
        timings=timings,
    )


def _licence_inputs(card_info: Mapping[str, Any] | None, license: str | None) -> tuple[Terms | None, Terms | None]:
    """(a named corpus's terms, the terms the caller gave for other files), checked before anything is read."""
    info = card_info or {}
    corpus = CORPUS_TERMS.get(str(info.get("corpus")))
    if corpus is not None:
        return corpus, None
    given = license or info.get("license")  # a caller's card_info may carry the licence of its files
    return None, given_terms(str(given)) if given else None


def _save_quietly(dd: DatasetDict, path: Path) -> None:
    """``save_to_disk`` without its per-split progress bars (the build prints its own summary)."""
    from datasets.utils.tqdm import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        dd.save_to_disk(str(path))
    finally:
        if not was_disabled:
            enable_progress_bars()


def _datasets_version() -> str:
    import datasets

    return datasets.__version__


# --------------------------------------------------------------------------------------------- load


def load_dataset_dir(path: Path | str) -> DatasetDict:
    """Load a dataset written by :func:`build_dataset` (or any ``DatasetDict.save_to_disk`` folder)."""
    path = Path(path)
    if path.is_file():
        raise InputError(path, None, "is a file; give the dataset folder written by `parsner data build --out`")
    if not path.is_dir():
        raise InputError(path, None, "no such dataset folder (build one with `parsner data build`)")
    if not (path / "dataset_dict.json").is_file():
        hint = (
            " (it holds a single Dataset, not a DatasetDict)"
            if (path / "dataset_info.json").is_file()
            else ""
        )
        raise InputError(path, None, f"not a dataset folder built by `parsner data build`{hint}")
    from datasets import DatasetDict, load_from_disk

    try:
        dd = load_from_disk(str(path))
    except Exception as exc:
        raise InputError(path, None, f"cannot load the dataset: {exc}") from exc
    if not isinstance(dd, DatasetDict):  # pragma: no cover - guarded by the dataset_dict.json check
        raise InputError(path, None, "not a DatasetDict")
    return dd


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file written beside a dataset (stats.json, audit.json, build.json)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(path, None, "missing (was the dataset built by `parsner data build`?)") from exc
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"invalid JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not valid UTF-8 (byte {exc.start}); the file is corrupt") from None
