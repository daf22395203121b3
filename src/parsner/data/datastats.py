"""Statistics and the overlap audit of a built dataset, and their plain-text tables.

Both work on *columns*: ``{split: (tokens, tags, doc_ids)}`` with string tags, which a build has in hand
and :func:`_columns_from_dd` recovers from any saved ``DatasetDict``. So ``stats.json``/``audit.json`` at
build time and ``parsner data stats/audit`` on a folder later compute the very same numbers.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from parsner.errors import ConfigError
from parsner.labels import spans_from_tags

if TYPE_CHECKING:  # pragma: no cover
    from datasets import DatasetDict

#: Split names, in the order they are written and reported.
SPLITS = ("train", "validation", "test")

#: Overlap of an evaluated split with a reference split above which the audit shouts "leaked".
LEAK_WARN_FRACTION = 0.5

#: Overlap pairs the audit checks: (reference split, evaluated split); percentages are of the evaluated one.
#: "train+validation" is everything a model may see before the test: the leakage that matters for test scores.
AUDIT_PAIRS = (
    ("train", "test"),
    ("train", "validation"),
    ("validation", "test"),
    ("train+validation", "test"),
)

#: One split's columns: token lists, tag lists (strings), document ids.
Columns = tuple[list, list, Any]

# A sentence as the audit compares it: its tokens and its tags.
_Row = tuple[tuple[str, ...], tuple[str, ...]]


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


# --------------------------------------------------------------------------------------------- audit


def _duplicates(rows: Sequence[_Row]) -> dict[str, int]:
    """Exact repeats inside one split."""
    taggings: dict[tuple[str, ...], set[tuple[str, ...]]] = defaultdict(set)
    for tok, tag in rows:
        taggings[tok].add(tag)
    return {
        "sentences": len(rows),
        "distinct": len(taggings),
        "extra_copies": len(rows) - len(taggings),
        # token sequences that occur more than once with different tags: annotation inconsistencies
        "conflicting_taggings": sum(1 for tags in taggings.values() if len(tags) > 1),
    }


def _overlap(ref: str, ev: str, ref_rows: Iterable[_Row], ev_rows: Sequence[_Row], max_examples: int) -> dict:
    """Sentences of ``ev`` whose token sequence occurs in ``ref``, and whether their tags agree there."""
    ref_tags: dict[tuple[str, ...], set[tuple[str, ...]]] = defaultdict(set)
    for tok, tag in ref_rows:
        ref_tags[tok].add(tag)
    hits = [(tok, tag) for tok, tag in ev_rows if tok in ref_tags]
    agree = sum(1 for tok, tag in hits if tag in ref_tags[tok])
    n_ev = len(ev_rows)
    examples = []
    for tok in dict.fromkeys(tok for tok, _ in hits):  # distinct, first-seen order
        if len(examples) >= max_examples:
            break
        examples.append(" ".join(tok))
    return {
        "reference": ref,
        "evaluated": ev,
        "sentences": len(hits),
        "of": n_ev,
        "percent": round(100 * (len(hits) / n_ev if n_ev else 0.0), 2),
        "distinct": len({tok for tok, _ in hits}),
        "tags_agree": agree,
        "tags_differ": len(hits) - agree,
        "max_tokens": max((len(tok) for tok, _ in hits), default=0),
        "examples": examples,
    }


def _audit_from_columns(columns: Mapping[str, Columns], max_examples: int = 5) -> dict[str, Any]:
    keyed: dict[str, list[_Row]] = {
        s: [(tuple(tok), tuple(tag)) for tok, tag in zip(columns[s][0], columns[s][1], strict=True)]
        for s in SPLITS
        if s in columns
    }
    duplicates = {split: _duplicates(rows) for split, rows in keyed.items()}
    overlap = []
    warnings: list[str] = []
    for ref, ev in AUDIT_PAIRS:
        parts = ref.split("+")
        if ev not in keyed or not all(p in keyed for p in parts):
            continue
        entry = _overlap(ref, ev, (row for p in parts for row in keyed[p]), keyed[ev], max_examples)
        overlap.append(entry)
        hits, n_ev = entry["sentences"], entry["of"]
        if (hits / n_ev if n_ev else 0.0) > LEAK_WARN_FRACTION:
            warnings.append(
                f"LEAKAGE: {_pct(hits, n_ev)} leaked - {hits:,} of {n_ev:,} {ev} sentences also "
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


def summary_lines(stats: Mapping[str, Any], audit: Mapping[str, Any] | None) -> Iterator[str]:
    """What ``parsner data build`` and ``parsner data stats`` show of a dataset, one printed piece at a time: the
    stats table, repaired tags, notes (ten at most) and the audit (when given)."""
    yield format_stats_table(stats)
    repaired = stats.get("repaired_total")
    if repaired:
        per = ", ".join(f"{i['path']} {i['repaired']:,}" for i in stats.get("inputs", []) if i["repaired"])
        yield f"repaired IOB2 tags (orphan I- -> B-): {repaired:,} ({per})"
    notes = stats.get("notes", [])
    if notes:
        yield f"notes ({len(notes)}):"
        for n in notes[:10]:
            yield f"  - {n}"
        if len(notes) > 10:
            yield f"  ... and {len(notes) - 10} more in stats.json"
    if audit is not None:
        yield format_audit(audit)


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
