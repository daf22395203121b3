"""Build, save and load the HuggingFace ``DatasetDict`` that training and evaluation use.

``build_dataset`` reads annotated files (any format :mod:`parsner.readers` knows), assigns sentences to
``train``/``validation``/``test``, and writes atomically into DIR:

* the ``DatasetDict`` (``save_to_disk``) with the features of ``docs/ARCHITECTURE.md``;
* ``stats.json``  - sentences, tokens and entities per type per split, repaired tags and notes per input;
* ``audit.json``  - exact duplicates inside each split and train/validation/test overlap;
* ``README.md``   - a dataset card (HF conventions) filled from the two files above;
* ``build.json``  - the inputs (path, sha256, format) and every build option, so a build can be replayed.

Splits come from the input file names when they are named (``train``/``dev``/``test``, ARMAN ``train_foldK``
/``test_foldK``), from a splits file mapping document ids to splits, or from a seeded split by document.
Sentences are never split one by one: an article must not straddle train and test. Files without document
boundaries (most CoNLL corpora) are split by blocks of :data:`BLOCK_SIZE` consecutive sentences, and the build
says so.

``datasets`` is imported inside the functions that need it, so ``import parsner.dataset`` stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsner import __version__
from parsner.atomic import atomic_dir, check_output_dir
from parsner.corpus import ReadResult, Sentence
from parsner.errors import ConfigError, InputError
from parsner.labels import label_list, load_label_map, spans_from_tags

if TYPE_CHECKING:  # pragma: no cover
    from datasets import DatasetDict, Features

#: Split names, in the order they are written and reported.
SPLITS = ("train", "validation", "test")

#: Consecutive sentences kept together when a file has no document boundaries.
BLOCK_SIZE = 10

#: Overlap of an evaluated split with a reference split above which the audit shouts "leaked".
LEAK_WARN_FRACTION = 0.5

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

#: Overlap pairs the audit checks: (reference split, evaluated split); percentages are of the evaluated one.
#: "train+validation" is everything a model may see before the test: the leakage that matters for test scores.
AUDIT_PAIRS = (
    ("train", "test"),
    ("train", "validation"),
    ("validation", "test"),
    ("train+validation", "test"),
)

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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


# --------------------------------------------------------------------------------------------- splits


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


def _document_groups(sentences: Sequence[Sentence], notes: list[str]) -> list[tuple[str, list[int]]]:
    """Group sentence indices into documents: ``(source, doc_id)``, or blocks when a file has no documents.

    A file whose sentences all carry one doc id (or none) has no document boundaries; its consecutive
    sentences are grouped in blocks of :data:`BLOCK_SIZE` (neighbouring sentences usually share an article).
    """
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sentences):
        by_source[s.source].append(i)
    groups: list[tuple[str, list[int]]] = []
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
    return groups


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


def _split_by_file(sentences: list[Sentence], splits_file: Path, notes: list[str]) -> dict[str, list[int]]:
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
    notes.append(f"splits from {splits_file} ({len(owner)} documents)")
    return out


# --------------------------------------------------------------------------------------------- stats


def _entity_counts(tag_seqs: Iterable[Sequence[str]]) -> Counter:
    counts: Counter = Counter()
    for tags in tag_seqs:
        for _, _, etype in spans_from_tags(tags):
            counts[etype] += 1
    return counts


def _split_stats(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], docs: Sequence[str]) -> dict:
    lengths = [len(t) for t in tokens]
    ents = _entity_counts(tags)
    return {
        "sentences": len(tokens),
        "tokens": sum(lengths),
        "non_o_tokens": sum(1 for seq in tags for t in seq if t != "O"),
        "entities": dict(sorted(ents.items())),
        "total_entities": sum(ents.values()),
        "documents": len(set(docs)),
        "max_sentence_tokens": max(lengths, default=0),
        "mean_sentence_tokens": round(sum(lengths) / len(lengths), 2) if lengths else 0.0,
    }


def _stats_from_columns(columns: Mapping[str, tuple[list, list, list]], names: list[str]) -> dict[str, Any]:
    splits = {s: _split_stats(*columns[s]) for s in SPLITS if s in columns}
    total: dict[str, Any] = {"sentences": 0, "tokens": 0, "non_o_tokens": 0, "entities": Counter()}
    for st in splits.values():
        for key in ("sentences", "tokens", "non_o_tokens"):
            total[key] += st[key]
        total["entities"].update(st["entities"])
    total["entities"] = dict(sorted(total["entities"].items()))
    total["total_entities"] = sum(total["entities"].values())
    types = sorted({n[2:] for n in names if n != "O"})
    return {"label_list": names, "entity_types": types, "splits": splits, "total": total}


def _columns_from_dd(dd: DatasetDict) -> tuple[dict[str, tuple[list, list, list]], list[str]]:
    names: list[str] | None = None
    cols: dict[str, tuple[list, list, list]] = {}
    for split in dd:
        ds = dd[split]
        feat = ds.features.get("ner_tags")
        split_names = list(getattr(getattr(feat, "feature", None), "names", None) or [])
        if not split_names:
            raise ConfigError(f"split {split!r} has no ner_tags ClassLabel feature; not a parsner dataset")
        names = names or split_names
        tags = [[split_names[i] for i in seq] for seq in ds["ner_tags"]]
        docs = ds["doc_id"] if "doc_id" in ds.column_names else [""] * len(ds)
        cols[split] = (ds["tokens"], tags, docs)
    return cols, names or ["O"]


def compute_stats(dd: DatasetDict) -> dict[str, Any]:
    """Sentences, tokens, non-O tokens and entities per type, per split and in total, of any built dataset."""
    cols, names = _columns_from_dd(dd)
    return _stats_from_columns(cols, names)


# --------------------------------------------------------------------------------------------- audit


def _audit_from_columns(
    columns: Mapping[str, tuple[list, list, Any]], max_examples: int = 5
) -> dict[str, Any]:
    keyed: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
        s: [(tuple(tok), tuple(tag)) for tok, tag in zip(columns[s][0], columns[s][1], strict=True)]
        for s in SPLITS
        if s in columns
    }
    duplicates = {}
    for split, rows in keyed.items():
        taggings: dict[tuple[str, ...], set[tuple[str, ...]]] = defaultdict(set)
        for tok, tag in rows:
            taggings[tok].add(tag)
        duplicates[split] = {
            "sentences": len(rows),
            "distinct": len(taggings),
            "extra_copies": len(rows) - len(taggings),
            # token sequences that occur more than once with different tags: annotation inconsistencies
            "conflicting_taggings": sum(1 for tags in taggings.values() if len(tags) > 1),
        }
    overlap = []
    warnings: list[str] = []
    for ref, ev in AUDIT_PAIRS:
        parts = ref.split("+")
        if ev not in keyed or not all(p in keyed for p in parts):
            continue
        ref_tags: dict[tuple[str, ...], set[tuple[str, ...]]] = defaultdict(set)
        for tok, tag in (row for p in parts for row in keyed[p]):
            ref_tags[tok].add(tag)
        hits = [(tok, tag) for tok, tag in keyed[ev] if tok in ref_tags]
        agree = sum(1 for tok, tag in hits if tag in ref_tags[tok])
        n_ev = len(keyed[ev])
        frac = len(hits) / n_ev if n_ev else 0.0
        examples = []
        for tok in dict.fromkeys(tok for tok, _ in hits):  # distinct, first-seen order
            if len(examples) >= max_examples:
                break
            examples.append(" ".join(tok))
        entry = {
            "reference": ref,
            "evaluated": ev,
            "sentences": len(hits),
            "of": n_ev,
            "percent": round(100 * frac, 2),
            "distinct": len({tok for tok, _ in hits}),
            "tags_agree": agree,
            "tags_differ": len(hits) - agree,
            "max_tokens": max((len(tok) for tok, _ in hits), default=0),
            "examples": examples,
        }
        overlap.append(entry)
        if frac > LEAK_WARN_FRACTION:
            warnings.append(
                f"LEAKAGE: {_pct(len(hits), n_ev)} leaked - {len(hits):,} of {n_ev:,} {ev} sentences also "
                f"appear in {ref}; scores on {ev} measure memorisation, not generalisation"
            )
    return {
        "method": "exact token sequence",
        "duplicates": duplicates,
        "overlap": overlap,
        "warnings": warnings,
    }


def _pct(part: int, whole: int) -> str:
    """A percentage rounded down to 0.1, so that only a complete overlap reads "100%"."""
    if whole and part == whole:
        return "100%"
    return f"{math.floor(1000 * part / whole) / 10 if whole else 0.0:.1f}%"


def overlap_audit(dd: DatasetDict, max_examples: int = 5) -> dict[str, Any]:
    """Exact duplicates inside each split and train/test, train/validation, validation/test overlap.

    Overlap counts evaluated-split sentences (with repeats) whose token sequence occurs in the reference
    split, as a count and a percentage of the evaluated split, and whether their tags agree with
    a tagging there.
    """
    cols, _ = _columns_from_dd(dd)
    return _audit_from_columns(cols, max_examples=max_examples)


# --------------------------------------------------------------------------------------------- tables


def format_stats_table(stats: Mapping[str, Any]) -> str:
    """A plain-text table: one row per split (and the total), one column per entity type."""
    types = list(stats.get("entity_types", []))
    head = ["split", "sentences", "tokens", "entities", *types]
    rows = [head]
    for name, st in [*stats["splits"].items(), ("total", stats["total"])]:
        ents = st["entities"]
        rows.append(
            [name, f"{st['sentences']:,}", f"{st['tokens']:,}", f"{st['total_entities']:,}"]
            + [f"{ents.get(t, 0):,}" for t in types]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_audit(audit: Mapping[str, Any]) -> str:
    """Readable lines for an audit dict (duplicates, then one line per overlap pair, then warnings)."""
    lines = [f"overlap audit ({audit.get('method', 'exact token sequence')})"]
    dup = audit.get("duplicates", {})
    if dup:
        parts = [f"{s} {d['extra_copies']:,} of {d['sentences']:,}" for s, d in dup.items()]
        lines.append("  duplicates inside a split (extra copies): " + ", ".join(parts))
        conflicts = [
            f"{s} {d['conflicting_taggings']:,}" for s, d in dup.items() if d.get("conflicting_taggings")
        ]
        if conflicts:
            lines.append("  same tokens tagged differently inside a split: " + ", ".join(conflicts))
    for o in audit.get("overlap", []):
        pair = f"{o['evaluated']} in {o['reference']}"
        line = (
            f"  {pair:<26} {o['sentences']:>6,} of {o['of']:,} {o['evaluated']} sentences "
            f"({o['percent']:.1f}%)"
        )
        if o["sentences"]:
            line += f", tags agree {o['tags_agree']:,}/{o['sentences']:,}, longest {o['max_tokens']} tokens"
        lines.append(line)
        if o["examples"]:
            lines.append("      e.g. " + " | ".join(_clip(e) for e in o["examples"][:3]))
    if not audit.get("overlap"):
        lines.append("  (fewer than two splits: no overlap to check)")
    lines.extend(f"  WARNING {w}" for w in audit.get("warnings", []))
    return "\n".join(lines)


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------------------------- card


def _size_category(n: int) -> str:
    for bound, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < bound:
            return label
    return "1M<n<10M"


def render_card(
    *,
    name: str,
    stats: Mapping[str, Any],
    audit: Mapping[str, Any],
    build: Mapping[str, Any],
    card_info: Mapping[str, Any] | None = None,
) -> str:
    """A HuggingFace-style dataset card (YAML front matter + markdown) for a built dataset."""
    import yaml

    info = dict(card_info or {})
    names: list[str] = stats["label_list"]
    meta: dict[str, Any] = {
        "language": ["fa"],
        "pretty_name": info.get("pretty_name", name),
    }
    if info.get("license"):
        meta["license"] = info["license"]
    meta.update(
        {
            "task_categories": ["token-classification"],
            "task_ids": ["named-entity-recognition"],
            "size_categories": [_size_category(stats["total"]["sentences"])],
            "tags": ["persian", "ner", "parsner"],
            "dataset_info": {
                "features": [
                    {"name": "id", "dtype": "string"},
                    {"name": "tokens", "sequence": "string"},
                    {
                        "name": "ner_tags",
                        "sequence": {"class_label": {"names": {str(i): n for i, n in enumerate(names)}}},
                    },
                    {"name": "source", "dtype": "string"},
                    {"name": "line", "dtype": "int32"},
                    {"name": "doc_id", "dtype": "string"},
                    {"name": "offsets", "sequence": {"sequence": "int32"}},
                ],
                "splits": [{"name": s, "num_examples": st["sentences"]} for s, st in stats["splits"].items()],
            },
        }
    )
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    out = [f"---\n{front}---\n", f"# {meta['pretty_name']}\n\n"]
    summary = info.get("description") or "Persian named-entity recognition data (IOB2 word tags)."
    out.append(
        f"{summary}\n\nBuilt by `parsner data build` (ParsNER {build['parsner_version']}) on "
        f"{build['created']}. Tokens are kept exactly as in the source files (no normalisation); entity "
        f"types: {', '.join(stats['entity_types']) or 'none'}.\n"
    )
    warnings = [*audit.get("warnings", []), *info.get("warnings", [])]
    if warnings:
        out.append("\n> **Warning**\n" + "".join(f"> - {w}\n" for w in warnings))

    out.append("\n## Splits and entity counts\n\n")
    types = stats["entity_types"]
    out.append("| split | sentences | tokens | entities | " + " | ".join(types) + " |\n")
    out.append("|---|---:|---:|---:|" + "---:|" * len(types) + "\n")
    for s, st in [*stats["splits"].items(), ("**total**", stats["total"])]:
        cells = [f"{st['entities'].get(t, 0):,}" for t in types]
        out.append(
            f"| {s} | {st['sentences']:,} | {st['tokens']:,} | {st['total_entities']:,} | "
            + " | ".join(cells)
            + " |\n"
        )
    out.append(f"\nSplit method: {build['split_method']}.\n")

    out.append("\n## Overlap audit (exact token sequences)\n\n")
    dup = audit.get("duplicates", {})
    if dup:
        out.append(
            "Duplicates inside a split (extra copies): "
            + ", ".join(f"{s} {d['extra_copies']:,} of {d['sentences']:,}" for s, d in dup.items())
            + ".\n"
        )
        conflicts = [
            f"{s} {d['conflicting_taggings']:,}" for s, d in dup.items() if d.get("conflicting_taggings")
        ]
        if conflicts:
            out.append("Token sequences tagged differently inside a split: " + ", ".join(conflicts) + ".\n")
        out.append("\n")
    if audit.get("overlap"):
        out.append("| evaluated split | also in | sentences | % of evaluated | tags agree | longest |\n")
        out.append("|---|---|---:|---:|---:|---:|\n")
        for o in audit["overlap"]:
            out.append(
                f"| {o['evaluated']} | {o['reference']} | {o['sentences']:,} of {o['of']:,} "
                f"| {o['percent']:.2f}% | {o['tags_agree']:,} | {o['max_tokens']} tokens |\n"
            )
    else:
        out.append("Only one split: no overlap to check.\n")

    out.append("\n## Source files\n\n| file | format | split | sentences | repaired tags | sha256 |\n")
    out.append("|---|---|---|---:|---:|---|\n")
    for inp in build["inputs"]:
        out.append(
            f"| `{inp['path']}` | {inp['format']} | {inp['split'] or '(seeded)'} | {inp['sentences']:,} | "
            f"{inp['repaired']:,} | `{inp['sha256'] or '-'}` |\n"
        )
    notes = stats.get("notes", [])
    if notes:
        out.append(f"\nNotes ({len(notes)}; all of them are in `stats.json`):\n\n")
        out.extend(f"- {n}\n" for n in notes[:20])
        if len(notes) > 20:
            out.append(f"- ... and {len(notes) - 20} more\n")

    opts = build["options"]
    out.append("\n## Build options\n\n```\n")
    out.extend(f"{k}: {json.dumps(v, ensure_ascii=False)}\n" for k, v in opts.items())
    out.append("```\n")
    if build.get("command"):
        out.append(f"\nCommand: `{build['command']}`\n")

    if build.get("has_texts"):
        out.append(
            "\n`offsets` are character offsets of each token in its original document; the documents are in "
            "`texts.jsonl` (`source`, `doc_id`, `text`).\n"
        )
    out.append(
        "\n## Usage\n\n```python\nfrom datasets import load_from_disk\n\n"
        'ds = load_from_disk("path/to/this/folder")\n'
        'label_names = ds["train"].features["ner_tags"].feature.names\n```\n'
    )
    out.append("\n## Licence and citation\n\n")
    out.append(
        f"{info.get('license_note') or 'Licence: as stated by the source files (not recorded here).'}\n"
    )
    if info.get("citation"):
        out.append(f"\n```\n{info['citation'].strip()}\n```\n")
    return "".join(out)


# --------------------------------------------------------------------------------------------- build


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def _check_out(out: Path, overwrite: bool, inputs: Sequence[Path | str | None]) -> None:
    """The output rule of :mod:`parsner.atomic`, checked before anything is read."""
    check_output_dir(out, kind="dataset", overwrite=overwrite, inputs=inputs)


def _check_tokens(result: ReadResult) -> None:
    """Tokens that every later step (CoNLL output, evaluation files) can write back: no tabs, no line breaks."""
    for sent in result.sentences:
        for k, tok in enumerate(sent.tokens, 1):
            bad = next((c for c in ("\t", "\n", "\r", "\0") if c in tok), None)
            if bad is not None:
                raise InputError(sent.source, sent.line, f"token {k} of the sentence, {tok!r}, contains {bad!r}; "
                                 "a token cannot hold tabs or line breaks")


def _read_inputs(
    inputs: Sequence[Path | str | ReadResult],
    fmt: str | None,
    strict: bool,
    label_map: dict[str, str] | None,
    log: Log,
    reader_options: Mapping[str, Any] | None = None,
) -> list[tuple[ReadResult, str | None, int | None]]:
    """Read every input; returns ``(result, sha256, size)`` per input, in order."""
    from parsner.readers import read_file

    out: list[tuple[ReadResult, str | None, int | None]] = []
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
        if path.is_dir():  # a brat collection: its .ann and .txt files
            files = sorted(f for f in path.rglob("*") if f.suffix in (".ann", ".txt") and f.is_file())
            digest = hashlib.sha256()
            for f in files:
                digest.update(f"{f.relative_to(path)}\0{_sha256(f)}\n".encode())
            out.append((result, digest.hexdigest(), sum(f.stat().st_size for f in files)))
            continue
        out.append((result, _sha256(path), path.stat().st_size))
    return out


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
    log: Log | None = _stderr,
    reader_options: Mapping[str, Any] | None = None,
) -> BuildReport:
    """Read ``inputs``, split, and write the dataset, stats, audit, card and build record to ``out``.

    Splits: a ``splits_file`` (JSON ``{split: [doc ids]}``) wins; otherwise file names (all inputs must
    then be named; a missing validation split is carved from train by document, ``split_ratios[1]`` of train);
    otherwise a seeded split by document with ``split_ratios``. Already-read :class:`ReadResult` objects
    (e.g. from the Hub) may stand for files. ``card_info`` (licence, citation, description, warnings) fills
    the dataset card. Nothing is written unless everything succeeds.
    """
    log = log or (lambda _msg: None)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out)
    if not inputs:
        raise ConfigError("no inputs to build from")
    ratios = parse_split_ratios(split_ratios)
    lmap: dict[str, str] | None
    if label_map is None or isinstance(label_map, Mapping):
        lmap = dict(label_map) if label_map is not None else None
    else:
        try:
            lmap = load_label_map(label_map)
        except UnicodeDecodeError as exc:
            raise InputError(label_map, None, f"not valid UTF-8 (byte {exc.start}: "
                                              f"{exc.object[exc.start:exc.start + 4]!r})") from None
    splits_path = Path(splits_file) if splits_file is not None else None
    file_inputs = [Path(x) for x in inputs if not isinstance(x, ReadResult)]
    map_file = label_map if isinstance(label_map, str | Path) and Path(label_map).is_file() else None
    extra_inputs = [splits_path, map_file]
    _check_out(out, overwrite, [*file_inputs, *extra_inputs])

    # -- read
    t0 = time.perf_counter()
    log(f"building {out} from {len(inputs)} input(s)")
    read = _read_inputs(inputs, format, strict, lmap, log, reader_options)
    timings["read"] = time.perf_counter() - t0

    # -- assign splits
    t0 = time.perf_counter()
    notes: list[str] = []
    sentences: list[Sentence] = []
    input_of: list[int] = []  # input index of every sentence
    for k, (res, _, _) in enumerate(read):
        sentences.extend(res.sentences)
        input_of.extend([k] * len(res.sentences))
    named = [split_from_name(res.path) for res, _, _ in read]
    if splits_path is not None:
        method = f"splits file {splits_path}"
        split_idx = _split_by_file(sentences, splits_path, notes)
    elif any(n is not None for n in named):
        unnamed = [res.path for (res, _, _), n in zip(read, named, strict=True) if n is None]
        if unnamed:
            raise ConfigError(
                "some inputs name their split and some do not (" + ", ".join(unnamed) + "); rename them "
                "(train/dev/test) or pass --splits-file"
            )
        split_idx = {s: [] for s in SPLITS if s in named}
        for i, k in enumerate(input_of):
            split_idx[named[k]].append(i)  # type: ignore[index]
        method = (
            "file names ("
            + ", ".join(f"{Path(r.path).name}→{n}" for (r, _, _), n in zip(read, named, strict=True))
            + ")"
        )
        if "validation" not in split_idx and ratios[1] > 0 and "train" in split_idx:
            train_s = [sentences[i] for i in split_idx["train"]]
            groups = _document_groups(train_s, notes)
            carved = _assign_groups(groups, ("train", "validation"), (1 - ratios[1], ratios[1]), seed)
            base = split_idx["train"]
            split_idx["train"] = [base[i] for i in carved["train"]]
            split_idx["validation"] = [base[i] for i in carved["validation"]]
            method += (
                f"; validation carved from train by document/sentence block "
                f"({ratios[1]:g} of train, seed {seed})"
            )
    else:
        groups = _document_groups(sentences, notes)
        split_idx = _assign_groups(groups, SPLITS, ratios, seed)
        method = f"seeded split by document (ratios {','.join(f'{r:g}' for r in ratios)}, seed {seed})"
    split_idx = {s: split_idx[s] for s in SPLITS if split_idx.get(s)}
    log(f"  splits: {method}")
    timings["split"] = time.perf_counter() - t0

    # -- columns, labels, stats, audit
    t0 = time.perf_counter()
    types = sorted({t[2:] for s in sentences for t in s.tags if t != "O"})
    names = label_list(types)
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
    stat_cols = {
        split: (
            [sentences[i].tokens for i in idxs],
            [sentences[i].tags for i in idxs],
            columns[split]["doc_id"],
        )
        for split, idxs in split_idx.items()
    }
    stats = _stats_from_columns(stat_cols, names)
    input_records = []
    for k, (res, sha, size) in enumerate(read):
        n_tok = sum(len(s.tokens) for s in res.sentences)
        input_records.append(
            {
                "path": res.path,
                "format": res.format,
                "split": named[k] if splits_path is None and named[k] else None,
                "sentences": len(res.sentences),
                "tokens": n_tok,
                "repaired": res.repaired,
                "notes": list(res.notes),
                "sha256": sha,
                "bytes": size,
            }
        )
        notes.extend(f"{res.path}: {n}" for n in res.notes)
    stats["name"] = name or out.name
    stats["inputs"] = [
        {k: r[k] for k in ("path", "format", "split", "sentences", "tokens", "repaired")}
        for r in input_records
    ]
    stats["repaired_total"] = sum(r["repaired"] for r in input_records)
    stats["notes"] = notes
    audit = _audit_from_columns(stat_cols)
    timings["stats_audit"] = time.perf_counter() - t0

    # -- Dataset
    t0 = time.perf_counter()
    from datasets import Dataset, DatasetDict

    features = dataset_features(names)
    dd = DatasetDict({split: Dataset.from_dict(col, features=features) for split, col in columns.items()})
    timings["to_dataset"] = time.perf_counter() - t0

    build = {
        "parsner_version": __version__,
        "datasets_version": _datasets_version(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "name": stats["name"],
        "command": command,
        "split_method": method,
        "splits": {s: len(i) for s, i in split_idx.items()},
        "label_list": names,
        "has_texts": any(getattr(res, "texts", None) for res, _, _ in read),
        "inputs": input_records,
        "options": {
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
        },
    }
    if card_info:
        build["card_info"] = {
            k: v for k, v in card_info.items() if isinstance(v, str | int | float | list | None)
        }

    # -- save (atomic)
    t0 = time.perf_counter()
    with atomic_dir(out, overwrite=overwrite, kind="dataset") as tmp:
        _save_quietly(dd, tmp)
        timings["save"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        for fname, obj in (("stats.json", stats), ("audit.json", audit), ("build.json", build)):
            (tmp / fname).write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        texts = [
            {"source": res.path, "doc_id": doc, "text": text}
            for res, _, _ in read
            for doc, text in getattr(res, "texts", {}).items()
        ]
        if texts:  # span data: the original documents, which the word offsets point into
            with (tmp / "texts.jsonl").open("w", encoding="utf-8") as f:
                for rec in texts:
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        card = render_card(name=stats["name"], stats=stats, audit=audit, build=build, card_info=card_info)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        timings["card"] = time.perf_counter() - t1
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


def _label_warnings(stat_cols: Mapping[str, tuple[list, list, list]]) -> list[str]:
    """Builds that succeed but cannot train a useful model: no entities, or types only some splits have."""
    types = {split: {t[2:] for tags in cols[1] for t in tags if t != "O"} for split, cols in stat_cols.items()}
    out = []
    if not any(types.values()):
        out.append("the data has no entities at all (every tag is O): a model trained on it learns nothing")
        return out
    train = types.get("train", set())
    for split in ("validation", "test"):
        missing = sorted(types.get(split, set()) - train)
        if split in types and "train" in types and missing:
            out.append(f"entity type(s) {', '.join(missing)} occur in {split} but not in train: a model trained "
                       "on this split never predicts them")
    if "train" in types and not train:
        out.append("the train split has no entities (every tag is O)")
    return out


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
