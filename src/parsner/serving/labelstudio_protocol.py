"""What ``parsner serve --label-studio`` reads from and answers to Label Studio (its ML-backend protocol).

Pure functions, no web framework: the routes are in :mod:`parsner.serving.labelstudio_backend`.

* :func:`parse_labeling_config`: the project's labeling config (XML) -> :class:`LabelingConfig`: the
  ``<Labels name toName>`` tag (``from_name``/``to_name`` of every region), the data key of the ``<Text
  name value="$key">`` it labels, and its ``<Label value>`` names. Never assumes ``label``/``text``.
* :class:`TypeMapper`: a model type (after ``--label-map``) -> the config's label name: the same name, or the
  same canonical type (``Person`` is ``PER``, see :mod:`parsner.labels`); ``None`` when the config has no
  such label (the region is dropped and counted).
* :func:`regions`: a tagged document -> Label Studio regions, offsets into the task's own text: code points
  (Python indices, what Label Studio 1.x stores for ``<Text>``), or UTF-16 code units for a project whose
  annotations use them (:func:`offsets_are_utf16`, the readers' own detection).
* :func:`is_held_out`: the stable part of the tasks kept for evaluating retrained models (a keyed hash of the task
  id: the key is a secret of the work folder, so a caller who chooses task ids cannot choose the held-out part).
* :func:`reader_tasks`: an export (or the legacy ``/train`` body) -> tasks the Label Studio reader takes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parsner.labels import canonical_type

#: Fraction of the annotated tasks held out (by a keyed hash of the task id) to compare models after retraining.
HOLDOUT_FRACTION = 0.2
#: Defaults of ``serve --keep-models`` (retrained models kept) and ``--min-retrain-interval`` (seconds).
KEEP_MODELS = 3
MIN_RETRAIN_INTERVAL_S = 300.0
#: A project id that may go into the export URL: a positive integer, no sign, no leading zero, at most 18 digits.
_PROJECT_ID = re.compile(r"[1-9][0-9]{0,17}")


class LabelConfigError(ValueError):
    """A labeling config parsner cannot pre-annotate; the message says why (answered as 422)."""


@dataclass(frozen=True)
class LabelingConfig:
    from_name: str  # the <Labels name=...>
    to_name: str  # the <Text name=...> it labels
    data_key: str  # the task field holding the text: <Text value="$key">
    labels: tuple[str, ...]  # the <Label value=...> names, in config order

    def to_dict(self) -> dict[str, Any]:
        return {"from_name": self.from_name, "to_name": self.to_name, "data_key": self.data_key,
                "labels": list(self.labels)}


def _tag(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def parse_labeling_config(xml: Any) -> LabelingConfig:
    """The first ``<Labels>`` whose ``toName`` names a ``<Text>`` with a ``$key`` value, or LabelConfigError."""
    if not isinstance(xml, str) or not xml.strip():
        raise LabelConfigError("no labeling config: expected the project's XML (<View>...</View>)")
    if "<!DOCTYPE" in xml.upper() or "<!ENTITY" in xml.upper():
        raise LabelConfigError("the labeling config declares a DOCTYPE or entities; parsner does not read those")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise LabelConfigError(f"the labeling config is not valid XML: {exc}") from None
    texts = {el.get("name"): el for el in root.iter() if _tag(el) == "Text" and el.get("name")}
    labels_tags = [el for el in root.iter() if _tag(el) == "Labels"]
    if not labels_tags:
        raise LabelConfigError(
            "the labeling config has no <Labels> tag: parsner pre-annotates entity spans, e.g. "
            '<Labels name="label" toName="text"><Label value="PER"/></Labels><Text name="text" value="$text"/>'
        )
    problems = []
    for el in labels_tags:
        name = el.get("name")
        targets = [t.strip() for t in (el.get("toName") or "").split(",") if t.strip()]
        text = next((texts[t] for t in targets if t in texts), None)
        if not name or text is None:
            problems.append(f'<Labels name="{name or ""}" toName="{",".join(targets)}"> names no <Text> tag')
            continue
        value = text.get("value") or ""
        if not value.startswith("$") or len(value) < 2:
            problems.append(f'<Text name="{text.get("name")}" value="{value}"> shows a fixed text, not a task '
                            'field ($key)')
            continue
        if (text.get("valueType") or "text").lower() == "url":
            problems.append(f'<Text name="{text.get("name")}" valueType="url"> loads its text from a URL; '
                            "parsner tags the text itself (use the default valueType)")
            continue
        names = tuple(lab.get("value") for lab in el if _tag(lab) == "Label" and lab.get("value"))
        if not names:
            problems.append(f'<Labels name="{name}"> has no <Label value="..."/>')
            continue
        return LabelingConfig(name, str(text.get("name")), value[1:], names)
    raise LabelConfigError("no usable <Labels> tag: " + "; ".join(problems))


class TypeMapper:
    """Model types (after ``--label-map``, which the Tagger applies) -> the config's label names: the same name,
    else the same canonical type (``Person``, ``PERSON`` and ``PER`` are one type); None when the config lacks it."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self._exact = {name: name for name in self.labels}
        self._canonical: dict[str, str] = {}
        for name in self.labels:
            self._canonical.setdefault(canonical_type(name), name)

    def target(self, model_type: str) -> str | None:
        return self._exact.get(model_type) or self._canonical.get(canonical_type(model_type))

    def missing_labels(self, model_types: Sequence[str]) -> list[str]:
        """Config labels no model type maps onto (the model never pre-annotates them)."""
        hit = {self.target(t) for t in model_types}
        return [name for name in self.labels if name not in hit]


def utf16_offset(text: str, index: int) -> int:
    """The UTF-16 code-unit offset of code-point ``index`` (astral characters count twice)."""
    return index + sum(1 for c in text[:index] if ord(c) >= 0x10000)


def regions(doc: Any, cfg: LabelingConfig, mapper: TypeMapper, *, utf16: bool = False,
            dropped: Counter[str] | None = None) -> list[dict[str, Any]]:
    """Label Studio regions of a tagged document; entities of types the config lacks are counted in ``dropped``."""
    out = []
    for e in sorted(doc.entities, key=lambda e: (int(e["start"]), int(e["end"]))):
        label = mapper.target(str(e["label"]))
        if label is None:
            if dropped is not None:
                dropped[str(e["label"])] += 1
            continue
        a, b = int(e["start"]), int(e["end"])
        start, end = (utf16_offset(doc.text, a), utf16_offset(doc.text, b)) if utf16 else (a, b)
        out.append({
            "id": f"parsner-{len(out) + 1}",
            "from_name": cfg.from_name,
            "to_name": cfg.to_name,
            "type": "labels",
            "value": {"start": start, "end": end, "text": doc.text[a:b], "labels": [label]},
            "score": round(float(e.get("score", 0.0)), 4),
        })
    return out


def project_id(value: Any) -> str | None:
    """Label Studio's project reference: ``"3.1796284911"`` (setup, predict), ``{"id": 3}`` (webhooks), ``3``."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or value is None or not isinstance(value, int | str):
        return None
    pid = str(value)[:64].split(".", 1)[0].strip()
    # The id goes into the export URL's path: only a positive integer, so nothing else can reach that path.
    return pid if _PROJECT_ID.fullmatch(pid) else None


def is_held_out(task_id: Any, key: bytes, fraction: float = HOLDOUT_FRACTION) -> bool:
    """Whether a task belongs to the held-out part: a keyed hash of its id, so a task stays on one side in every
    round of a work folder (same key), and a caller who picks task ids cannot aim them at either side."""
    if not key:
        raise ValueError("is_held_out needs the work folder's secret key")
    digest = hmac.new(key, f"label-studio-task:{task_id}".encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def offsets_are_utf16(text: str, result: Any, from_name: str | None = None) -> bool | None:
    """Whether an annotation's regions count UTF-16 code units (True), code points (False), or cannot tell (None:
    no astral character before a span, no stored span text, or offsets that fit neither reading)."""
    from parsner.data.readers.docs import RecordError, resolve_offsets, utf16_to_codepoints

    if not isinstance(text, str) or not isinstance(result, list) or utf16_to_codepoints(text) is None:
        return None
    spans = []
    for r in result:
        v = r.get("value") if isinstance(r, dict) else None
        if not isinstance(v, dict) or not isinstance(v.get("text"), str) or (from_name and r.get("from_name")
                                                                              not in (None, from_name)):
            continue
        spans.append((v.get("start"), v.get("end"), "X", v["text"]))
    if not spans:
        return None
    try:
        _resolved, utf16 = resolve_offsets(text, spans)
    except RecordError:
        return None
    if not utf16 and all(utf16_offset(text, s[0]) == s[0] for s in spans if isinstance(s[0], int)):
        return None  # no astral character before any span: both readings agree
    return utf16


def reader_tasks(tasks: Sequence[Any], cfg: LabelingConfig) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Exported tasks as the Label Studio reader reads them: the config's text as ``data.text``, only the
    config's ``<Labels>`` regions, cancelled annotations left out. Returns the tasks and what was left out."""
    out, notes = [], Counter()
    for task in tasks:
        if not isinstance(task, dict):
            notes["records that are not tasks"] += 1
            continue
        text = (task.get("data") or {}).get(cfg.data_key) if isinstance(task.get("data"), dict) else None
        if not isinstance(text, str):
            notes[f"tasks without the text field {cfg.data_key!r}"] += 1
            continue
        anns = []
        for ann in task.get("annotations") or []:
            if not isinstance(ann, dict) or ann.get("was_cancelled"):
                continue
            result = [r for r in ann.get("result") or [] if isinstance(r, dict)
                      and r.get("from_name", cfg.from_name) == cfg.from_name and r.get("type", "labels") == "labels"]
            anns.append({"id": ann.get("id"), "completed_by": ann.get("completed_by"),
                         "created_at": ann.get("created_at"), "updated_at": ann.get("updated_at"),
                         "result": result})
        if not anns:
            notes["tasks without an annotation"] += 1
            continue
        out.append({"id": task.get("id"), "data": {"text": text}, "annotations": anns})
    return out, notes


def utf16_votes(tasks: Sequence[Any], cfg: LabelingConfig) -> Counter[str]:
    """How many annotations of exported tasks count UTF-16 code units, and how many code points (those that tell)."""
    votes: Counter[str] = Counter()
    for task in tasks:
        data = task.get("data") if isinstance(task, dict) else None
        text = data.get(cfg.data_key) if isinstance(data, dict) else None
        for ann in (task.get("annotations") or []) if isinstance(task, dict) else []:
            found = offsets_are_utf16(text, ann.get("result") if isinstance(ann, dict) else None, cfg.from_name)
            if found is not None:
                votes["utf16" if found else "codepoints"] += 1
    return votes
