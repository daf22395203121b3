"""The dataset card (``README.md`` beside a built dataset), following Hugging Face conventions.

YAML front matter (language, licence, task, size category, features and splits), then the summary and
warnings, split and entity counts, the overlap audit, the source files, the build options, usage and the
licence. Everything in it comes from ``stats.json``, ``audit.json`` and ``build.json`` of the same build; the
licence is build.json's record (:mod:`parsner.data.licence`): the most restrictive of its sources' licences.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from parsner.data import licence

#: Notes listed one by one on the card; all of them are in stats.json.
MAX_CARD_NOTES = 20


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


def _features_meta(names: list[str]) -> list[dict[str, Any]]:
    """The features of ``docs/ARCHITECTURE.md`` in the card's ``dataset_info`` form."""
    return [
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
    ]


def _licence(build: Mapping[str, Any]) -> dict[str, Any]:
    """build.json's licence record; a build dict without one (not from this ParsNER) has unknown terms."""
    record = build.get("license")
    return dict(record) if isinstance(record, Mapping) else licence.combine([])


def _front_matter(name: str, stats: Mapping[str, Any], info: Mapping[str, Any],
                  build: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "language": ["fa"],
        "pretty_name": info.get("pretty_name", name),
        **licence.front_matter(_licence(build)),
    }
    meta.update(
        {
            "task_categories": ["token-classification"],
            "task_ids": ["named-entity-recognition"],
            "size_categories": [_size_category(stats["total"]["sentences"])],
            "tags": ["persian", "ner", "parsner"],
            "dataset_info": {
                "features": _features_meta(stats["label_list"]),
                "splits": [{"name": s, "num_examples": st["sentences"]} for s, st in stats["splits"].items()],
            },
        }
    )
    return meta


def _summary(
    stats: Mapping[str, Any], audit: Mapping[str, Any], build: Mapping[str, Any], info: Mapping[str, Any]
) -> str:
    summary = info.get("description") or "Persian named-entity recognition data (IOB2 word tags)."
    out = (
        f"{summary}\n\nBuilt by `parsner data build` (ParsNER {build['parsner_version']}) on "
        f"{build['created']}. Tokens are kept exactly as in the source files (no normalisation); entity "
        f"types: {', '.join(stats['entity_types']) or 'none'}.\n"
    )
    warnings = [*audit.get("warnings", []), *info.get("warnings", [])]
    if warnings:
        out += "\n> **Warning**\n" + "".join(f"> - {w}\n" for w in warnings)
    return out


def _splits_section(stats: Mapping[str, Any], build: Mapping[str, Any]) -> str:
    types = stats["entity_types"]
    out = ["\n## Splits and entity counts\n\n"]
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
    return "".join(out)


def _audit_section(audit: Mapping[str, Any]) -> str:
    out = ["\n## Overlap audit (exact token sequences)\n\n"]
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
    return "".join(out)


def _assigned_by(inp: Mapping[str, Any], splits_file: str | None) -> str:
    """How an input's sentences got their split: its folder or file name, the splits file, or the seeded split."""
    if inp.get("split"):
        return inp.get("split_by") or "file name"  # a build from before folders counted: names only
    return f"splits file `{splits_file}`" if splits_file else "seeded split by document"


def _sources_section(stats: Mapping[str, Any], build: Mapping[str, Any]) -> str:
    out = ["\n## Source files\n\n| file | format | split | assigned by | sentences | repaired tags | sha256 |\n"]
    out.append("|---|---|---|---|---:|---:|---|\n")
    splits_file = (build.get("options") or {}).get("splits_file")
    for inp in build["inputs"]:
        split = inp["split"] or ("(per document)" if splits_file else "(seeded)")
        out.append(
            f"| `{inp['path']}` | {inp['format']} | {split} | {_assigned_by(inp, splits_file)} "
            f"| {inp['sentences']:,} | {inp['repaired']:,} | `{inp['sha256'] or '-'}` |\n"
        )
    notes = stats.get("notes", [])
    if notes:
        out.append(f"\nNotes ({len(notes)}; all of them are in `stats.json`):\n\n")
        out.extend(f"- {n}\n" for n in notes[:MAX_CARD_NOTES])
        if len(notes) > MAX_CARD_NOTES:
            out.append(f"- ... and {len(notes) - MAX_CARD_NOTES} more\n")
    return "".join(out)


def _options_section(build: Mapping[str, Any]) -> str:
    out = ["\n## Build options\n\n```\n"]
    out.extend(f"{k}: {json.dumps(v, ensure_ascii=False)}\n" for k, v in build["options"].items())
    out.append("```\n")
    if build.get("command"):
        out.append(f"\nCommand: `{build['command']}`\n")
    return "".join(out)


def _usage_and_licence(build: Mapping[str, Any], info: Mapping[str, Any]) -> str:
    out = []
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
    out.append("\n".join(licence.card_lines(_licence(build), "the data in this dataset")) + "\n")
    out.append("\nA model trained on this dataset carries the same licence (the most restrictive of its training "
               "data's).\n")
    if info.get("citation"):
        out.append(f"\n```\n{info['citation'].strip()}\n```\n")
    return "".join(out)


def render_dataset_card(
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
    meta = _front_matter(name, stats, info, build)
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    return "".join(
        [
            f"---\n{front}---\n",
            f"# {meta['pretty_name']}\n\n",
            _summary(stats, audit, build, info),
            _splits_section(stats, build),
            _audit_section(audit),
            _sources_section(stats, build),
            _options_section(build),
            _usage_and_licence(build, info),
        ]
    )
