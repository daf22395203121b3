"""Which split each sentence of a dataset build goes to: ``train``, ``validation`` or ``test``.

Splits come from a splits file mapping document ids to splits; else from the inputs' folder and file names
when they name one (a folder ``train/``, ``dev/``, ``test/``, any case; a file ``train.txt``, ARMAN's
``train_foldK``/``test_foldK``: :func:`split_from_path`), which then every input must do; else from a seeded
split by document. A file that names its split stays in it: test sentences never move into train.
Sentences are never split one by one: an article must not straddle train and test. Files without document
boundaries (most CoNLL corpora) are split by blocks of :data:`BLOCK_SIZE` consecutive sentences, and the build
says so.

:func:`named_splits` reads the names before anything is read, :func:`assign_splits` splits the read sentences;
:func:`parsner.data.dataset.build_dataset` calls both.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from parsner.data.datastats import SPLITS
from parsner.data.readers.conll import DOC_BLOCK
from parsner.data.records import ReadResult, Sentence
from parsner.errors import ConfigError, InputError

#: Consecutive sentences kept together when a file has no document boundaries (the readers' rule, one home).
BLOCK_SIZE = DOC_BLOCK

#: Words in file names that name a split (compared with the name's alphanumeric parts).
_SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "dev": "validation",
    "devel": "validation",
    "development": "validation",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "test": "test",
    "testing": "test",
}


def split_from_name(path: str | Path) -> str | None:
    """The split a file name announces (``train_fold1.txt`` -> ``train``, ``dev.conll`` -> ``validation``).

    Returns None for a name without a split word; raises :class:`ConfigError` for a name with two
    (``train_test.txt``), which would otherwise be guessed at.
    """
    name = Path(str(path)).name.lower()
    parts = [p for p in re.split(r"[^a-z0-9]+", name) if p]
    found: set[str] = set()
    for part in parts:
        m = re.fullmatch(r"(train|test)(?:fold)?\d*", part) or re.fullmatch(r"([a-z]+)", part)
        word = m.group(1) if m else None
        if word in _SPLIT_WORDS:
            found.add(_SPLIT_WORDS[word])
    if len(found) > 1:
        raise ConfigError(
            f"{path}: the file name names more than one split ({', '.join(sorted(found))}); "
            "rename it or pass --splits-file"
        )
    return found.pop() if found else None


def split_from_path(path: str | Path) -> tuple[str | None, str | None]:
    """The split a file's folders and name announce, and how: ``("test", "folder test/")``, or ``(None, None)``.

    A folder names a split when its whole name is a split word in any case (``train``, ``Train``, ``dev``,
    ``valid``, ``validation``, ``test``, ...; ``train_data`` does not). Every folder of the path as given
    counts, read from the current folder when the path lies inside it, so where you run from never matters;
    the file name counts as in :func:`split_from_name`. Two that disagree (``test/train/x.txt``,
    ``train/part_test.txt``) raise :class:`ConfigError` naming the file: a file is never guessed into a split.
    """
    p = Path(str(path))
    if p.is_absolute():
        with contextlib.suppress(ValueError, OSError):
            p = p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p.resolve().relative_to(
                Path.cwd().resolve())
    folders = [(part, _SPLIT_WORDS[part.lower()]) for part in p.parent.parts if part.lower() in _SPLIT_WORDS]
    by_name = split_from_name(path)
    said = [f"folder {part}/ → {split}" for part, split in folders]
    if by_name is not None:
        said.append(f"file name → {by_name}")
    splits = {split for _, split in folders} | ({by_name} if by_name else set())
    if len(splits) > 1:
        raise ConfigError(f"{path}: its folders and file name name different splits ({'; '.join(said)}); "
                          "move or rename the file, or pass --splits-file")
    if not splits:
        return None, None
    how = " and ".join([f"folder {part}/" for part, _ in folders] + (["file name"] if by_name else []))
    return splits.pop(), how


def parse_split_ratios(spec: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` or a 3-sequence -> validated (train, validation, test) fractions summing to 1."""
    if isinstance(spec, str):
        try:
            values = [float(x) for x in spec.split(",")]
        except ValueError as exc:
            raise ConfigError(f"--split-ratios {spec!r}: expected three numbers like 0.8,0.1,0.1") from exc
    else:
        values = [float(x) for x in spec]
    if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(
            f"split ratios {spec!r}: expected three non-negative numbers (train,validation,test)"
        )
    if values[0] <= 0:
        raise ConfigError(f"split ratios {spec!r}: the train ratio must be above 0")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(f"split ratios {spec!r}: they must sum to 1 (they sum to {sum(values):g})")
    return values[0], values[1], values[2]


def _document_groups(sentences: Sequence[Sentence]) -> tuple[list[tuple[str, list[int]]], list[str]]:
    """Group sentence indices into documents: ``(source, doc_id)``, or blocks when a file has no documents.

    A file whose sentences all carry one doc id (or none) has no document boundaries; its consecutive
    sentences are grouped in blocks of :data:`BLOCK_SIZE` (neighbouring sentences usually share an article).
    Returns the groups and a note per file split by blocks.
    """
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sentences):
        by_source[s.source].append(i)
    groups: list[tuple[str, list[int]]] = []
    notes: list[str] = []
    for source, idxs in by_source.items():
        doc_ids = {sentences[i].doc_id for i in idxs}
        if len(doc_ids) == 1 and len(idxs) > BLOCK_SIZE:
            notes.append(
                f"{source}: no document boundaries; split by blocks of {BLOCK_SIZE} consecutive sentences"
            )
            for b in range(0, len(idxs), BLOCK_SIZE):
                groups.append((f"{source}#block{b // BLOCK_SIZE:06d}", idxs[b : b + BLOCK_SIZE]))
            continue
        docs: dict[str, list[int]] = defaultdict(list)
        for i in idxs:
            docs[sentences[i].doc_id].append(i)
        groups.extend((f"{source}#{doc}", members) for doc, members in docs.items())
    return groups, notes


def _assign_groups(
    groups: list[tuple[str, list[int]]], names: Sequence[str], fractions: Sequence[float], seed: int
) -> dict[str, list[int]]:
    """Seeded assignment of whole groups to splits, close to ``fractions`` of the sentences.

    Groups are sorted by key before the seeded shuffle, so the result does not depend on input order.
    Each group goes to the split whose share of the cumulative sentence count its midpoint falls in.
    A split with a non-zero fraction that ends up empty takes one group from the largest split.
    """
    order = sorted(groups, key=lambda g: g[0])
    random.Random(seed).shuffle(order)
    total = sum(len(m) for _, m in order)
    bounds: list[float] = []
    acc = 0.0
    for f in fractions:
        acc += f
        bounds.append(acc * total)
    assigned: dict[str, list[list[int]]] = {n: [] for n in names}
    done = 0
    for _, members in order:
        mid = done + len(members) / 2
        k = next((j for j, b in enumerate(bounds) if mid < b), len(names) - 1)
        while fractions[k] == 0:  # never assign to a split the user switched off
            k -= 1
        assigned[names[k]].append(members)
        done += len(members)
    for n, f in zip(names, fractions, strict=True):
        if f > 0 and not assigned[n]:
            donor = max(names, key=lambda x: len(assigned[x]))
            if len(assigned[donor]) > 1:
                assigned[n].append(assigned[donor].pop())
    return {n: sorted(i for members in assigned[n] for i in members) for n in names}


def _load_splits_file(path: Path) -> dict[str, set[str]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"splits file {path} not found") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, getattr(exc, "lineno", None), f"not a valid JSON splits file: {exc}") from exc
    if not isinstance(raw, dict):
        raise InputError(path, None, "a splits file maps split names to lists of document ids")
    out: dict[str, set[str]] = {}
    owner: dict[str, str] = {}
    for key, ids in raw.items():
        split = _SPLIT_WORDS.get(str(key).lower())
        if split is None:
            raise InputError(path, None, f"unknown split {key!r} (use train, validation/dev, test)")
        if not isinstance(ids, list) or not all(isinstance(x, str | int) for x in ids):
            raise InputError(path, None, f"split {key!r} must be a list of document ids")
        for doc in map(str, ids):
            if doc in owner:
                raise InputError(path, None, f"document {doc!r} is in both {owner[doc]} and {split}")
            owner[doc] = split
            out.setdefault(split, set()).add(doc)
    return out


def _split_by_file(sentences: list[Sentence], splits_file: Path) -> tuple[dict[str, list[int]], list[str]]:
    """The splits a splits file gives every sentence's document, and a note naming the file."""
    mapping = _load_splits_file(splits_file)
    owner = {doc: split for split, docs in mapping.items() for doc in docs}
    out: dict[str, list[int]] = {s: [] for s in SPLITS if s in mapping}
    seen: set[str] = set()
    for i, s in enumerate(sentences):
        split = owner.get(s.doc_id)
        if split is None:
            raise InputError(
                s.source, s.line, f"document {s.doc_id!r} is not listed in the splits file {splits_file}"
            )
        out[split].append(i)
        seen.add(s.doc_id)
    missing = sorted(set(owner) - seen)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(
            splits_file, None, f"{len(missing)} listed document(s) are not in the inputs: {shown}"
        )
    return out, [f"splits from {splits_file} ({len(owner)} documents)"]


def _split_by_names(
    paths: Sequence[str],
    sentences: list[Sentence],
    input_of: list[int],
    named: list[str | None],
    ratios: tuple[float, float, float],
    seed: int,
) -> tuple[dict[str, list[int]], str, list[str]]:
    """Splits from the folder and file names (every input has one: :func:`named_splits`; ``paths``: the read
    inputs' paths); a missing validation split is carved from train by document."""
    split_idx: dict[str, list[int]] = {s: [] for s in SPLITS if s in named}
    for i, k in enumerate(input_of):
        split_idx[named[k]].append(i)  # type: ignore[index]
    by_folder = any(split_from_name(p) != n for p, n in zip(paths, named, strict=True))
    # Folders can repeat file names (train/part1.txt, test/part1.txt): then the paths are shown.
    shown = [p if by_folder else Path(p).name for p in paths]
    method = (
        ("folder and file names (" if by_folder else "file names (")
        + ", ".join(f"{p}→{n}" for p, n in zip(shown, named, strict=True))
        + ")"
    )
    notes: list[str] = []
    if "validation" not in split_idx and ratios[1] > 0 and "train" in split_idx:
        split_idx["train"], split_idx["validation"], notes = _carve_validation(
            split_idx["train"], sentences, ratios[1], seed
        )
        method += (
            f"; validation carved from train by document/sentence block "
            f"({ratios[1]:g} of train, seed {seed})"
        )
    return split_idx, method, notes


def named_splits(inputs: Sequence[Path | str | ReadResult]) -> list[tuple[str | None, str | None]]:
    """``(split, how)`` of every input from its folders and file name (:func:`split_from_path`), before anything
    is read. Either every input names its split or none does: an unnamed file among named ones would have to
    be guessed into one, so that is an error (a seeded split needs no names; a splits file wins over them)."""
    out: list[tuple[str | None, str | None]] = []
    for item in inputs:
        if isinstance(item, ReadResult):  # a Hub split ("hub:org/name/test"): its name only, never folders
            split = split_from_name(item.path)
            out.append((split, "name" if split else None))
        else:
            out.append(split_from_path(item))
    unnamed = [str(getattr(item, "path", item)) for item, (split, _) in zip(inputs, out, strict=True) if not split]
    if unnamed and len(unnamed) < len(out):
        raise ConfigError(
            "some inputs name their split and some do not (" + ", ".join(unnamed) + "); put them in train/, "
            "dev/ or test/ folders, rename them (train/dev/test) or pass --splits-file"
        )
    return out


def _carve_validation(
    train: list[int], sentences: list[Sentence], fraction: float, seed: int
) -> tuple[list[int], list[int], list[str]]:
    """``train`` split by document into (train, validation), and the notes of the grouping."""
    groups, notes = _document_groups([sentences[i] for i in train])
    carved = _assign_groups(groups, ("train", "validation"), (1 - fraction, fraction), seed)
    return [train[i] for i in carved["train"]], [train[i] for i in carved["validation"]], notes


def assign_splits(
    paths: Sequence[str],
    sentences: list[Sentence],
    input_of: list[int],
    named: list[str | None],
    splits_path: Path | None,
    ratios: tuple[float, float, float],
    seed: int,
) -> tuple[dict[str, list[int]], str, list[str]]:
    """Sentence indices per non-empty split, how they were chosen (for build.json and the card), and notes.

    A splits file wins, then file names (``named``: the split each input's name gives), then a seeded
    split by document. ``paths``: the path of each read input; ``input_of``: the input of each sentence.
    """
    if splits_path is not None:
        method = f"splits file {splits_path}"
        split_idx, notes = _split_by_file(sentences, splits_path)
    elif any(n is not None for n in named):
        split_idx, method, notes = _split_by_names(paths, sentences, input_of, named, ratios, seed)
    else:
        groups, notes = _document_groups(sentences)
        split_idx = _assign_groups(groups, SPLITS, ratios, seed)
        method = f"seeded split by document (ratios {','.join(f'{r:g}' for r in ratios)}, seed {seed})"
    return {s: split_idx[s] for s in SPLITS if split_idx.get(s)}, method, notes
