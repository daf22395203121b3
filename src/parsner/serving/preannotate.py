"""Pre-annotations for annotation tools: what ``parsner predict --format labelstudio|doccano|brat`` writes.

Annotators then correct the model's entities instead of starting from nothing; the corrected export goes
back through ``parsner data build`` (:mod:`parsner.data.readers`). Offsets are code points into the text as given,
end exclusive, and the text is written unchanged, so reading a file back gives the same entities.

* ``labelstudio``: a JSON list of tasks ``{"data": {"text", "doc_id"}, "predictions": [{"model_version",
  "score", "result": [{"from_name": "label", "to_name": "text", "type": "labels", "value": {"start", "end",
  "text", "labels"}, "score"}]}]}``, for a labeling config with ``<Labels name="label" toName="text">`` and
  ``<Text name="text" value="$text"/>``. The task ``score`` is the model's confidence in its least certain
  word, so Label Studio can sort tasks by it.
* ``doccano``: JSONL ``{"id", "text", "label": [[start, end, "PER"], ...]}`` (doccano's sequence-labelling
  import).
* ``brat``: a folder with ``NAME.txt`` (the text, unchanged) and ``NAME.ann`` (``T`` lines, each entity's
  score as an ``AnnotatorNotes`` line) per document, plus an ``annotation.conf`` listing the entity types.

:func:`uncertainty` orders documents for active learning (``--order uncertainty``): the least sure first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

#: Tool formats ``parsner predict`` writes.
TOOL_FORMATS = ("labelstudio", "doccano", "brat")


def uncertainty(doc: Any) -> float:
    """1 - the probability of the model's least certain word tag (0 for a text without words): the *least confident
    word* rule of :func:`parsner.inference.selection.sentence_uncertainty`, which the active-learning simulation
    measured against random and diversity-aware orders (eval/RESULTS.md section 15)."""
    from parsner.inference.selection import sentence_uncertainty

    return sentence_uncertainty(list(getattr(doc, "scores", []) or []))


def task_score(doc: Any) -> float:
    """A Label Studio prediction's ``score``, which Label Studio sorts tasks by (ascending: the least sure first):
    1 - :func:`uncertainty`, rounded to 4 places; 1.0 for a text without words. The same in pre-annotation files and
    in the live backend; each region keeps its entity's own calibrated score."""
    return round(1.0 - uncertainty(doc), 4)


def _entities(text: str, entities: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Entities sorted by offset; their offsets must index ``text`` and give their ``text``."""
    out = sorted(entities, key=lambda e: (int(e["start"]), int(e["end"])))
    for e in out:
        a, b = int(e["start"]), int(e["end"])
        if not (0 <= a < b <= len(text)):
            raise ValueError(f"entity {dict(e)!r} lies outside the text (length {len(text)})")
    return out


class LabelStudioWriter:
    """A JSON list of Label Studio tasks with ``predictions``, streamed."""

    def __init__(self, out: TextIO, *, model_version: str, from_name: str = "label", to_name: str = "text"):
        self.out, self.model_version = out, model_version
        self.from_name, self.to_name = from_name, to_name
        self.count = 0

    def begin(self) -> None:
        self.out.write("[")

    def task(self, doc_id: str, doc: Any) -> dict[str, Any]:
        result = []
        for n, e in enumerate(_entities(doc.text, doc.entities), 1):
            a, b = int(e["start"]), int(e["end"])
            result.append(
                {
                    "id": f"p{n}",
                    "from_name": self.from_name,
                    "to_name": self.to_name,
                    "type": "labels",
                    "value": {"start": a, "end": b, "text": doc.text[a:b], "labels": [str(e["label"])]},
                    "score": round(float(e["score"]), 4),
                }
            )
        return {
            "data": {self.to_name: doc.text, "doc_id": doc_id},
            "predictions": [
                {
                    "model_version": self.model_version,
                    "score": task_score(doc),
                    "result": result,
                }
            ],
        }

    def write(self, doc_id: str, doc: Any) -> None:
        sep = "\n" if self.count == 0 else ",\n"
        self.out.write(sep + json.dumps(self.task(doc_id, doc), ensure_ascii=False))
        self.count += 1
        self.out.flush()

    def end(self) -> None:
        self.out.write("\n]\n")
        self.out.flush()


class DoccanoWriter:
    """doccano's sequence-labelling JSONL."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.count = 0

    def begin(self) -> None:
        pass

    def write(self, doc_id: str, doc: Any) -> None:
        labels = [[int(e["start"]), int(e["end"]), str(e["label"])] for e in _entities(doc.text, doc.entities)]
        rec = {"id": doc_id, "text": doc.text, "label": labels}
        self.out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.count += 1
        self.out.flush()

    def end(self) -> None:
        self.out.flush()


def brat_name(doc_id: str) -> str:
    """A file-name stem for ``doc_id``: ``news/a.txt`` -> ``a``, ``in.txt:3`` -> ``in-3``, ``arg:1`` -> ``arg-1``."""
    base, _, line = doc_id.rpartition(":")
    if not (base and line.isdigit()):
        base, line = doc_id, ""
    stem = Path(base).stem if base.endswith(".txt") else Path(base).name
    name = re.sub(r"[^\w\-]+", "_", stem).strip("_.-") or "doc"
    return name + (f"-{line}" if line else "")


def ann_lines(doc: Any) -> list[str]:
    """The ``.ann`` lines of a tagged document (``T`` per entity, its score as a note)."""
    lines = []
    for n, e in enumerate(_entities(doc.text, doc.entities), 1):
        a, b = int(e["start"]), int(e["end"])
        mention = doc.text[a:b]
        if "\n" in mention or "\t" in mention:
            raise ValueError(f"entity {mention!r} spans a line break; brat cannot store it as one fragment")
        lines.append(f"T{n}\t{e['label']} {a} {b}\t{mention}")
        lines.append(f"#{n}\tAnnotatorNotes T{n}\tscore={float(e['score']):.4f}")
    return lines


class BratWriter:
    """``NAME.txt`` + ``NAME.ann`` per document into ``folder`` (which must be new and empty)."""

    def __init__(self, folder: Path, *, labels: Sequence[str] = (), rank_prefix: bool = False) -> None:
        self.folder = Path(folder)
        self.types = sorted({t[2:] for t in labels if t[:2] in ("B-", "I-")})
        self.rank_prefix = rank_prefix
        self.used: set[str] = set()
        self.count = 0

    def begin(self) -> None:
        pass

    def write(self, doc_id: str, doc: Any) -> None:
        name = brat_name(doc_id)
        if self.rank_prefix:
            name = f"{self.count + 1:05d}_{name}"
        k = 2
        base = name
        while name in self.used:
            name = f"{base}-{k}"
            k += 1
        self.used.add(name)
        lines = ann_lines(doc)
        # newline="" keeps the text byte for byte: brat offsets count every character, \r included
        with open(self.folder / f"{name}.txt", "w", encoding="utf-8", newline="") as fh:
            fh.write(doc.text)
        with open(self.folder / f"{name}.ann", "w", encoding="utf-8", newline="\n") as fh:
            fh.write("".join(ln + "\n" for ln in lines))
        self.count += 1

    def end(self) -> None:
        conf = ["[entities]", *self.types, "", "[relations]", "", "[events]", "", "[attributes]", ""]
        (self.folder / "annotation.conf").write_text("\n".join(conf) + "\n", encoding="utf-8")
