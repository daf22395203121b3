"""Label Studio exports: the full JSON export and JSON_MIN.

JSON: a list of tasks ``{"id", "data": {"text": ...}, "annotations": [{"completed_by", "was_cancelled",
"created_at", "result": [{"type": "labels", "value": {"start", "end", "text", "labels": ["PER"]}}]}]}``.
JSON_MIN: a list of ``{"id", "text", "label": [{"start", "end", "text", "labels"}], "annotator", ...}``,
one record per annotation (a task annotated twice appears twice, with the same id).

* The text is ``data["text"]``, or the task's only string field.
* Cancelled (skipped) annotations are dropped; a task left with none (never annotated) is skipped. Both are
  counted in the notes. An annotation with an empty result is a document without entities.
* A task with several annotations needs ``annotator``: an annotator id or e-mail (``completed_by``), ``first``
  or ``last`` (by ``created_at``, export order where it is absent). Without it the reader stops and lists the
  annotators. Tasks without an annotation by the chosen annotator are skipped and counted.
* ``labels`` results become spans (one label each); results of other types (``choices``, ``relation``,
  ``textarea``, ...) are ignored and counted. Predictions in the export are model output, never read.
* Offsets: see :mod:`parsner.data.readers.docs` (the stored ``text`` is checked; UTF-16 offsets are converted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parsner.data.readers.conll import parse_json, read_text
from parsner.data.readers.docs import DocBuilder, RecordError
from parsner.data.records import ReadResult
from parsner.errors import InputError

#: ``annotator`` values besides an id.
ANNOTATOR_CHOICES = ("first", "last")


def load_json_array(path: str | Path) -> list[Any]:
    """The file as a JSON array, or an :class:`InputError` with the line of the problem."""
    data = parse_json(read_text(path), path, 1)
    if isinstance(data, dict):
        data = [data]  # a single task
    if not isinstance(data, list):
        raise InputError(path, 1, f"expected a JSON list of tasks, got {type(data).__name__}")
    return data


def is_labelstudio(data: list[Any]) -> bool:
    """Whether the first item looks like a Label Studio task (JSON) or JSON_MIN record."""
    first = data[0] if data else None
    if not isinstance(first, dict):
        return False
    if isinstance(first.get("data"), dict) and ("annotations" in first or "predictions" in first):
        return True
    return isinstance(first.get("text"), str) and any(_is_span_list(v) for v in first.values())


def _is_span_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) and "start" in x and "labels" in x for x in v)


def _who(ann: Mapping[str, Any]) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return "?" if who is None else str(who)


def _matches(ann: Mapping[str, Any], annotator: str) -> bool:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        return annotator in (str(who.get("id")), str(who.get("email")))
    return str(who) == annotator


def _from_min(rec: dict[str, Any]) -> dict[str, Any]:
    """A JSON_MIN record as a task with one annotation."""
    result = []
    for key, value in rec.items():
        if _is_span_list(value):
            result.extend({"type": "labels", "value": v, "from_name": key} for v in value)
    ann = {"completed_by": rec.get("annotator"), "created_at": rec.get("created_at"), "result": result}
    return {"id": rec.get("id"), "data": {"text": rec.get("text")}, "annotations": [ann]}


def _tasks(data: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(record number, task)``; JSON_MIN records of the same task are merged into one task."""
    out: list[tuple[int, dict[str, Any]]] = []
    by_id: dict[Any, dict[str, Any]] = {}
    for k, item in enumerate(data, 1):
        if isinstance(item, dict) and "data" not in item and "annotations" not in item and "text" in item:
            task = _from_min(item)
            if task["id"] is not None and task["id"] in by_id:
                by_id[task["id"]]["annotations"].extend(task["annotations"])
                continue
            if task["id"] is not None:
                by_id[task["id"]] = task
            out.append((k, task))
        else:
            out.append((k, item))
    return out


def _task_text(task: dict[str, Any]) -> str:
    data = task.get("data")
    if not isinstance(data, dict):
        raise RecordError("missing 'data' (the task's text)")
    if isinstance(data.get("text"), str):
        return data["text"]
    strings = [k for k, v in data.items() if isinstance(v, str)]
    if len(strings) == 1:
        return data[strings[0]]
    raise RecordError(f"no text: 'data' has no 'text' field (fields: {', '.join(map(str, data)) or 'none'})")


def _choose(task: dict[str, Any], annotator: str | None, skipped: Counter[str]) -> dict[str, Any] | None:
    anns = task.get("annotations", task.get("completions", []))
    if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
        raise RecordError("'annotations' must be a list of objects")
    live = [a for a in anns if not (a.get("was_cancelled") or a.get("skipped"))]
    if len(live) < len(anns):
        skipped["cancelled annotation(s) skipped"] += len(anns) - len(live)
    if not live:
        skipped["task(s) without annotations skipped"] += 1
        return None
    if annotator is None:
        if len(live) > 1:
            raise RecordError(
                f"{len(live)} annotations (by {', '.join(_who(a) for a in live)}); choose one with "
                "--annotator ID|first|last"
            )
        return live[0]
    if annotator in ANNOTATOR_CHOICES:
        ordered = sorted(live, key=lambda a: str(a.get("created_at") or ""))
        return ordered[0] if annotator == "first" else ordered[-1]
    mine = [a for a in live if _matches(a, annotator)]
    if not mine:
        skipped[f"task(s) without an annotation by annotator {annotator} skipped"] += 1
        return None
    return mine[-1]


def _spans(ann: dict[str, Any], ignored: Counter[str]) -> list[tuple[Any, Any, Any, str | None]]:
    result = ann.get("result", [])
    if not isinstance(result, list):
        raise RecordError("'result' must be a list")
    spans = []
    for k, r in enumerate(result, 1):
        if not isinstance(r, dict):
            raise RecordError(f"result {k} must be an object, got {r!r}")
        value = r.get("value")
        kind = r.get("type") or ("labels" if isinstance(value, dict) and "labels" in value else "?")
        if kind not in ("labels", "hypertextlabels") or not isinstance(value, dict) or "start" not in value:
            ignored[str(kind)] += 1
            continue
        labels = value.get("labels")
        if not isinstance(labels, list) or len(labels) != 1:
            raise RecordError(f"result {k}: expected one label in 'labels', got {labels!r}")
        stored = value.get("text")
        spans.append((value.get("start"), value.get("end"), labels[0], stored if isinstance(stored, str) else None))
    return spans


def read_labelstudio(
    path: str | Path,
    *,
    strict: bool = False,
    label_map: Mapping[str, str] | None = None,
    annotator: str | None = None,
) -> ReadResult:
    """Read a Label Studio JSON or JSON_MIN export (see the module docstring)."""
    data = load_json_array(path)
    if not data:
        raise InputError(path, 1, "no tasks: the export is an empty list")
    builder = DocBuilder(path, "labelstudio", strict=strict, label_map=label_map)
    ignored: Counter[str] = Counter()
    stem = Path(path).stem
    all_annotators: set[str] = set()
    for recno, task in _tasks(data):
        where = f"task {task.get('id', '?')} (record {recno})" if isinstance(task, dict) else f"record {recno}"
        try:
            if not isinstance(task, dict):
                raise RecordError(f"a task must be a JSON object, got {type(task).__name__}")
            text = _task_text(task)
            all_annotators.update(_who(a) for a in task.get("annotations", []) if isinstance(a, dict))
            ann = _choose(task, annotator, builder.skipped)
            if ann is None:
                continue
            spans = _spans(ann, ignored)
        except RecordError as exc:
            raise builder.error(None, where, str(exc)) from None
        tid = task.get("id")
        doc_id = str(tid) if isinstance(tid, str | int) and not isinstance(tid, bool) else f"{stem}#{recno}"
        builder.add(doc_id, text, spans, line=None, where=where)
    for kind, n in sorted(ignored.items()):
        builder.skipped[f"result(s) of type {kind!r} ignored (not entity spans)"] += n
    if not builder.result.sentences:
        if annotator not in (None, *ANNOTATOR_CHOICES):
            raise InputError(
                path,
                None,
                f"no task has an annotation by annotator {annotator!r} "
                f"(annotators in this file: {', '.join(sorted(all_annotators)) or 'none'})",
            )
        raise InputError(path, None, "no annotated tasks: every task is empty or cancelled")
    return builder.finish()
