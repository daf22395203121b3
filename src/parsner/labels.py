"""Tag normalisation to IOB2, sequence validation/repair and label maps.

Every corpus is brought to one convention: ``O``, ``B-TYPE``, ``I-TYPE`` with an upper-case TYPE.
PEYMA's ``B_ORG`` becomes ``B-ORG``; ARMAN's ``B-pers`` becomes ``B-PER``; ``event`` becomes ``EVE``.
A label map (a preset name or a YAML/JSON file ``{old_type: new_type}``) can then merge schemas;
mapping a type to ``O`` drops those entities deliberately.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from parsner.errors import ConfigError

#: Canonical type names for the spellings found in Persian corpora.
TYPE_ALIASES: dict[str, str] = {
    "PERS": "PER",
    "PERSON": "PER",
    "LOCATION": "LOC",
    "ORGANIZATION": "ORG",
    "ORGANISATION": "ORG",
    "EVENT": "EVE",
    "FACILITY": "FAC",
    "PRODUCT": "PRO",
    "DATE": "DAT",
    "TIME": "TIM",
    "MONEY": "MON",
    "PERCENT": "PCT",
}

#: Preset label maps. Keys and values are canonical types (after aliasing); "O" removes a type.
LABEL_MAP_PRESETS: dict[str, dict[str, str]] = {
    "identity": {},
    # Keep only the three types every Persian news corpus shares (PEYMA, ARMAN, ParsTwiNER).
    "core3": {
        "DAT": "O", "TIM": "O", "MON": "O", "PCT": "O",
        "FAC": "O", "PRO": "O", "EVE": "O", "POG": "O", "NAT": "O",
    },
    # Bring ARMAN's facilities into LOC, like PEYMA's guidelines, drop what PEYMA has no type for.
    "arman-to-peyma": {"FAC": "LOC", "PRO": "O", "EVE": "O"},
    # ParsTwiNER's political groups are organisations in PEYMA's scheme; nationalities are not entities.
    "parstwiner-to-peyma": {"POG": "ORG", "NAT": "O", "EVE": "O"},
}

_TAG_RE = re.compile(r"^(?P<prefix>[BIESLU])[-_](?P<type>.+)$", re.IGNORECASE)


class TagError(ValueError):
    """A tag that cannot be understood; readers turn it into an InputError with file:line."""


def canonical_type(entity_type: str) -> str:
    t = entity_type.strip().upper()
    return TYPE_ALIASES.get(t, t)


def normalize_tag(tag: str, label_map: Mapping[str, str] | None = None) -> str:
    """``B_ORG`` -> ``B-ORG``, ``b-pers`` -> ``B-PER``; applies ``label_map`` to the type.

    Raises :class:`TagError` for anything that is not ``O`` or a B/I tag (IOBES prefixes are
    refused here rather than guessed at).
    """
    raw = tag.strip()
    if raw in ("O", "o"):
        return "O"
    m = _TAG_RE.match(raw)
    if not m or not m.group("type").strip():
        raise TagError(f"unknown tag {tag!r} (expected O, B-TYPE or I-TYPE; B_TYPE is accepted too)")
    prefix = m.group("prefix").upper()
    if prefix not in ("B", "I"):
        raise TagError(f"tag {tag!r} uses the {prefix}- prefix; only IOB/IOB2 tags are supported")
    etype = canonical_type(m.group("type"))
    if not re.fullmatch(r"[A-Z0-9]+", etype):
        raise TagError(f"unknown tag {tag!r}: entity type {etype!r} must be letters/digits only")
    if label_map is not None and etype in label_map:
        etype = label_map[etype]
        if etype == "O":
            return "O"
    return f"{prefix}-{etype}"


def first_invalid_transition(tags: Sequence[str]) -> int | None:
    """Index of the first ``I-X`` that does not follow ``B-X``/``I-X`` (strict IOB2), else None."""
    prev = "O"
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return i
        prev = tag
    return None


def repair_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """Turn every orphan ``I-X`` into ``B-X`` (what conlleval does implicitly); returns (tags, n_repaired)."""
    out: list[str] = []
    repaired = 0
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            tag = "B-" + tag[2:]
            repaired += 1
        out.append(tag)
        prev = tag
    return out, repaired


def entity_types(tags: Iterable[str]) -> set[str]:
    return {t[2:] for t in tags if t != "O"}


def label_list(types: Iterable[str]) -> list[str]:
    """The ordered IOB2 label names for a set of types: ``O`` first, then ``B-X, I-X`` by type name."""
    names = ["O"]
    for t in sorted(set(types)):
        names += [f"B-{t}", f"I-{t}"]
    return names


def spans_from_tags(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end_exclusive, type)`` over word indices of a valid IOB2 sequence.

    An orphan ``I-X`` starts a new entity (conlleval/seqeval default behaviour).
    """
    spans: list[tuple[int, int, str]] = []
    start: int | None = None
    etype = ""
    for i, tag in enumerate([*tags, "O"]):
        continues = tag.startswith("I-") and start is not None and tag[2:] == etype
        if start is not None and not continues:
            spans.append((start, i, etype))
            start = None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, etype = i, tag[2:]
    return spans


def load_label_map(spec: str | Path | None) -> dict[str, str] | None:
    """A preset name (see :data:`LABEL_MAP_PRESETS`) or a YAML/JSON file mapping types to types."""
    if spec is None:
        return None
    key = str(spec)
    if key in LABEL_MAP_PRESETS:
        return dict(LABEL_MAP_PRESETS[key])
    path = Path(key)
    if not path.is_file():
        presets = ", ".join(sorted(LABEL_MAP_PRESETS))
        raise ConfigError(f"label map {key!r} is neither a preset ({presets}) nor a file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as exc:
        raise ConfigError(f"{path}: cannot parse label map: {exc}") from exc
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ConfigError(f"{path}: a label map must be a mapping of type names to type names")
    return {canonical_type(k): ("O" if v.strip().upper() == "O" else canonical_type(v)) for k, v in raw.items()}
