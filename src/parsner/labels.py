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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from parsner import surrogates
from parsner.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

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


#: BILOU heads are the BIOES ones under other names.
_PREFIX_ALIASES = {"L": "E", "U": "S"}


def split_tag(tag: str) -> tuple[str, str]:
    """``("O", "")`` or ``(prefix, TYPE)`` with prefix in B/I/E/S (BILOU's L/U read as E/S) and a canonical type.

    Any case, ``-`` or ``_``, full or short type names (``b_person`` -> ``("B", "PER")``). Raises
    :class:`TagError` for anything else. This is the one parser of tag strings: dataset tags
    (:func:`canonical_tag`) and model labels (:func:`model_labels`) both go through it.
    """
    raw = tag.strip()
    if raw in ("O", "o"):
        return "O", ""
    m = _TAG_RE.match(raw)
    if not m or not m.group("type").strip():
        raise TagError(f"unknown tag {tag!r} (expected O, B-TYPE or I-TYPE; B_TYPE is accepted too)")
    prefix = m.group("prefix").upper()
    etype = canonical_type(m.group("type"))
    if not re.fullmatch(r"[A-Z0-9]+", etype):
        raise TagError(f"unknown tag {tag!r}: entity type {etype!r} must be letters/digits only")
    return _PREFIX_ALIASES.get(prefix, prefix), etype


def canonical_tag(tag: str, label_map: Mapping[str, str] | None = None) -> str:
    """``B_ORG`` -> ``B-ORG``, ``b-pers`` -> ``B-PER``; applies ``label_map`` to the type.

    Raises :class:`TagError` for anything that is not ``O`` or a B/I tag (IOBES prefixes in a dataset
    are refused here rather than guessed at; model labels in BIOES are read by :func:`model_labels`).
    """
    prefix, etype = split_tag(tag)
    if prefix == "O":
        return "O"
    if prefix not in ("B", "I"):
        raise TagError(f"tag {tag!r} uses the {tag.strip()[0].upper()}- prefix; only IOB/IOB2 tags are supported")
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


def strict_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end_exclusive, type)`` under strict IOB2 (seqeval's ``mode="strict"``, ``IOB2``).

    Only ``B-X`` starts an entity and only ``I-X`` continues it: an orphan ``I-X`` is no entity at all,
    where :func:`spans_from_tags` (conlleval's reading) makes it one.
    """
    spans: list[tuple[int, int, str]] = []
    i, n = 0, len(tags)
    while i < n:
        tag = tags[i]
        if tag.startswith("B-"):
            inside = "I-" + tag[2:]
            j = i + 1
            while j < n and tags[j] == inside:
                j += 1
            spans.append((i, j, tag[2:]))
            i = j
        else:
            i += 1
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
    for k, v in raw.items():
        why = surrogates.problem(k) or surrogates.problem(v)  # it would end up in build.json, which is UTF-8
        if why is not None:
            raise ConfigError(f"{path}: the entry {k!r}: {v!r} holds {why}")
    return {k.strip().upper() if _is_whole_label(k) else canonical_type(k): _map_value(path, k, v)
            for k, v in raw.items()}


def _is_whole_label(key: str) -> bool:
    return bool(_UNNAMED.match(key.strip())) or bool(_TAG_RE.match(key.strip()))


def _map_value(path: Path, key: str, value: str) -> str:
    """A type (or ``O``) for a type key; a whole tag (or ``O``) for a whole-label key such as ``LABEL_3``."""
    v = value.strip()
    if v.upper() == "O":
        return "O"
    if _is_whole_label(key):
        try:
            prefix, etype = split_tag(v)
        except TagError as exc:
            raise ConfigError(f"{path}: {key!r} maps to {value!r}, which is not a tag: {exc}") from None
        return "O" if prefix == "O" else f"{prefix}-{etype}"
    etype = canonical_type(v)
    if not re.fullmatch(r"[A-Z0-9]+", etype):
        raise ConfigError(f"{path}: {key!r} maps to {value!r}; a type maps to a type (letters/digits, e.g. LOC) "
                          "or to O")
    return etype


# --------------------------------------------------------------------------------------------- model labels

#: ``LABEL_0``-style names: a head whose labels were never named.
_UNNAMED = re.compile(r"^LABEL_\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class ModelLabels:
    """A model head's labels, canonicalised: what every id means, in one scheme.

    ``tags[i]`` is label id ``i`` as ``O`` or ``P-TYPE`` (P in B/I/E/S, canonical upper-case type, after
    the label map); ``scheme`` is ``"IOB2"`` or ``"BIOES"``. Decoding runs over ``tags`` (so its
    transition rules fit the scheme); :func:`to_iob2` turns the decoded tags into the IOB2 everything
    else reads.
    """

    raw: tuple[str, ...]
    tags: tuple[str, ...]
    scheme: str

    @property
    def types(self) -> list[str]:
        return sorted({t[2:] for t in self.tags if t != "O"})

    @property
    def iob2(self) -> list[str]:
        """Per id, the IOB2 tag it stands for (``S-X`` -> ``B-X``, ``E-X`` -> ``I-X``)."""
        return [to_iob2_tag(t) for t in self.tags]


def to_iob2_tag(tag: str) -> str:
    if tag[:2] == "S-":
        return "B-" + tag[2:]
    if tag[:2] == "E-":
        return "I-" + tag[2:]
    return tag


def to_iob2(tags: Sequence[str]) -> list[str]:
    """Canonical scheme tags (IOB2 or BIOES) -> IOB2; an ``S-X`` or ``B-X`` always starts a new entity."""
    return [to_iob2_tag(t) for t in tags]


def _map_label(raw: str, label_map: Mapping[str, str] | None, model: str) -> str:
    """One raw model label -> ``O`` or ``P-TYPE``; the label map may name the whole label or its type."""
    if label_map is not None:
        whole = label_map.get(raw.strip().upper())
        if whole is not None and (whole == "O" or "-" in whole or "_" in whole):
            raw = whole
    try:
        prefix, etype = split_tag(raw)
    except TagError as exc:
        hint = (
            "; the model's labels have no names: pass --label-map FILE mapping each one to a tag "
            "(e.g. `LABEL_1: B-PER`)"
            if _UNNAMED.match(raw.strip())
            else "; pass --label-map FILE to name it"
        )
        raise ConfigError(f"model {model}: label {raw!r} is not a tag ({exc}){hint}") from None
    if prefix == "O":
        return "O"
    if label_map is not None and etype in label_map:
        etype = label_map[etype]
        if etype == "O":
            return "O"
    return f"{prefix}-{etype}"


def model_labels(
    id2label: Mapping[int, str] | Mapping[str, str] | Sequence[str],
    label_map: Mapping[str, str] | None = None,
    *,
    model: str = "the model",
) -> ModelLabels:
    """Canonicalise a checkpoint's ``id2label`` (``B_DAT``, ``B-pers``, ``B-person``, ``S-loc``, ...).

    ``label_map`` (see :func:`load_label_map`) maps types (``FAC: LOC``, ``PRO: O``) or whole labels
    (``LABEL_3: B-PER``). Raises ConfigError naming ``--label-map`` for labels that are not tags.
    """
    if isinstance(id2label, Mapping):
        items = sorted((int(k), str(v)) for k, v in id2label.items())
        if [k for k, _ in items] != list(range(len(items))):
            raise ConfigError(f"model {model}: id2label ids are not 0..{len(items) - 1}")
        raw = tuple(v for _, v in items)
    else:
        raw = tuple(str(v) for v in id2label)
    tags = tuple(_map_label(r, label_map, model) for r in raw)
    prefixes = {t[0] for t in tags if t != "O"}
    scheme = "BIOES" if prefixes & {"E", "S"} else "IOB2"
    return ModelLabels(raw, tags, scheme)


def is_unnamed(names: Iterable[str]) -> bool:
    """True for a head whose labels are all ``LABEL_N`` (a base checkpoint's default config)."""
    names = list(names)
    return bool(names) and all(_UNNAMED.match(n.strip()) for n in names)


def allowed_transitions(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(start[cur], trans[prev, cur], end[last])`` boolean masks over canonical scheme tags.

    IOB2: ``I-X`` only after ``B-X``/``I-X``, never first. BIOES additionally: ``E-X`` only after
    ``B-X``/``I-X``; after ``B-X``/``I-X`` only ``I-X``/``E-X``; a sentence ends on ``O``/``E-``/``S-``.
    Tags of a scheme mix are read per prefix, so an IOB2 label set gets exactly the IOB2 rules.
    """
    import numpy as np

    n = len(tags)
    bioes = any(t[:2] in ("E-", "S-") for t in tags)
    start = np.ones(n, dtype=bool)
    end = np.ones(n, dtype=bool)
    trans = np.ones((n, n), dtype=bool)
    inside = ("B-", "I-")
    for j, cur in enumerate(tags):
        if cur[:2] in ("I-", "E-"):
            start[j] = False
            for i, prev in enumerate(tags):
                trans[i, j] = prev[:2] in inside and prev[2:] == cur[2:]
        elif bioes:  # O, B-, S- may not follow an open B-/I- entity
            for i, prev in enumerate(tags):
                if prev[:2] in inside:
                    trans[i, j] = False
        if bioes and cur[:2] in inside:
            end[j] = False
    return start, trans, end
