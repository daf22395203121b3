"""Error analysis on word-level gold/pred tags: what kind of mistakes, where, and with examples.

Entities are read conlleval-style (:func:`parsner.labels.spans_from_tags`: an orphan ``I-X`` starts one).
Within a sentence every gold entity and every predicted entity falls in exactly one category:

* ``correct`` — same span, same type;
* ``wrong_type`` — same span, different type;
* ``boundary_same_type`` / ``boundary_wrong_type`` — the spans overlap but differ in their boundaries
  (one gold entity may overlap several predicted ones and vice versa; the whole overlapping group counts once
  per gold entity, and its predicted entities are not counted again as false positives);
* ``false_negative`` — a gold entity that no prediction touches;
* ``false_positive`` — a predicted entity that touches no gold entity.

The entity confusion matrix has gold types (plus ``O`` for false positives) as rows and predicted types
(plus ``O`` for false negatives) as columns; a boundary error is counted under the type of the first
predicted entity it overlaps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from parsner.evaluation.metrics import canonical_sequences, check_lengths
from parsner.labels import spans_from_tags

CATEGORIES = (
    "correct",
    "wrong_type",
    "boundary_same_type",
    "boundary_wrong_type",
    "false_negative",
    "false_positive",
)
ERROR_CATEGORIES = CATEGORIES[1:]

Span = tuple[int, int, str]  # (start, end_exclusive, type)


@dataclass
class ErrorExample:
    category: str
    sentence: int  # 0-based index in the evaluated split
    gold: list[Span]
    pred: list[Span]
    context: str  # the sentence window with gold entities in [..] and predictions in {..}
    sentence_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "sentence": self.sentence,
            "sentence_id": self.sentence_id,
            "gold": [list(s) for s in self.gold],
            "pred": [list(s) for s in self.pred],
            "context": self.context,
        }


@dataclass
class ErrorAnalysis:
    counts: Counter = field(default_factory=Counter)  # category -> n
    # gold type (the predicted type for false positives) -> category -> n
    per_type: dict[str, Counter] = field(default_factory=dict)
    confusion: dict[str, Counter] = field(default_factory=dict)  # gold type|"O" -> pred type|"O" -> n
    examples: dict[str, list[ErrorExample]] = field(default_factory=dict)

    @property
    def types(self) -> list[str]:
        names = set(self.confusion) | {c for row in self.confusion.values() for c in row}
        names.discard("O")
        return sorted(names)

    def confusion_matrix(self) -> tuple[list[str], list[str], list[list[int]]]:
        """``(row_labels, col_labels, matrix)`` with ``O`` last in both."""
        labels = [*self.types, "O"]
        matrix = [[int(self.confusion.get(r, Counter()).get(c, 0)) for c in labels] for r in labels]
        return labels, labels, matrix

    def to_dict(self) -> dict[str, Any]:
        rows, cols, matrix = self.confusion_matrix()
        return {
            "counts": {c: int(self.counts.get(c, 0)) for c in CATEGORIES},
            "per_type": {t: {c: int(n) for c, n in sorted(cnt.items())}
                         for t, cnt in sorted(self.per_type.items())},
            "confusion": {"rows": rows, "cols": cols, "matrix": matrix,
                          "note": "rows = gold type (O: false positive), cols = predicted type (O: missed)"},
            "examples": {c: [e.to_dict() for e in exs] for c, exs in self.examples.items()},
        }


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def render_context(
    tokens: Sequence[str],
    gold: Sequence[Span],
    pred: Sequence[Span],
    window: int = 4,
    focus: Sequence[Span] | None = None,
) -> str:
    """The words around ``focus`` (default: all spans), ``window`` words either side; every gold entity in
    that stretch is shown as ``[words]TYPE`` and every prediction as ``{words}TYPE``."""
    spans = list(focus) if focus else [*gold, *pred]
    lo = max(0, min(s[0] for s in spans) - window)
    hi = min(len(tokens), max(s[1] for s in spans) + window)
    gold = [s for s in gold if s[0] < hi and s[1] > lo]
    pred = [s for s in pred if s[0] < hi and s[1] > lo]
    opens: dict[int, list[str]] = {}
    closes: dict[int, list[str]] = {}
    for s in gold:
        opens.setdefault(max(s[0], lo), []).append("[")
        closes.setdefault(min(s[1], hi) - 1, []).append(f"]{s[2]}")
    for s in pred:
        opens.setdefault(max(s[0], lo), []).append("{")
        closes.setdefault(min(s[1], hi) - 1, []).append(f"}}{s[2]}")
    words = []
    for i in range(lo, hi):
        words.append("".join(opens.get(i, [])) + tokens[i] + "".join(closes.get(i, [])))
    text = " ".join(words)
    if lo > 0:
        text = "… " + text
    if hi < len(tokens):
        text = text + " …"
    return text


def analyze(
    tokens: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    max_examples: int = 5,
    window: int = 4,
    sentence_ids: Sequence[str] | None = None,
) -> ErrorAnalysis:
    """Categorise every gold and predicted entity (see the module docstring) and keep a few examples."""
    check_lengths(gold, pred)
    check_lengths(tokens, gold)
    g_all = canonical_sequences(gold, "gold")
    p_all = canonical_sequences(pred, "pred")
    result = ErrorAnalysis()

    sent_spans: tuple[list[Span], list[Span]] = ([], [])

    def add(category: str, etype: str, row: str, col: str, i: int, gs: list[Span], ps: list[Span]) -> None:
        result.counts[category] += 1
        result.per_type.setdefault(etype, Counter())[category] += 1
        result.confusion.setdefault(row, Counter())[col] += 1
        if category == "correct":
            return
        bucket = result.examples.setdefault(category, [])
        if len(bucket) < max_examples:
            sid = sentence_ids[i] if sentence_ids is not None else ""
            context = render_context(tokens[i], *sent_spans, window=window, focus=[*gs, *ps])
            bucket.append(ErrorExample(category, i, gs, ps, context, sid))

    for i, (gt, pt) in enumerate(zip(g_all, p_all, strict=True)):
        gspans = spans_from_tags(gt)
        pspans = spans_from_tags(pt)
        sent_spans = (gspans, pspans)
        used_pred: set[int] = set()
        pending_gold: list[Span] = []
        by_bounds = {(s[0], s[1]): k for k, s in enumerate(pspans)}
        for gs in gspans:
            k = by_bounds.get((gs[0], gs[1]))
            if k is None:
                pending_gold.append(gs)
                continue
            ps = pspans[k]
            used_pred.add(k)
            if ps[2] == gs[2]:
                add("correct", gs[2], gs[2], ps[2], i, [gs], [ps])
            else:
                add("wrong_type", gs[2], gs[2], ps[2], i, [gs], [ps])
        for gs in pending_gold:
            ks = [k for k, ps in enumerate(pspans) if _overlaps(gs, ps)]
            if not ks:
                add("false_negative", gs[2], gs[2], "O", i, [gs], [])
                continue
            over = [pspans[k] for k in ks]
            used_pred.update(ks)
            same = any(ps[2] == gs[2] for ps in over)
            category = "boundary_same_type" if same else "boundary_wrong_type"
            col = gs[2] if same else over[0][2]
            add(category, gs[2], gs[2], col, i, [gs], over)
        for k, ps in enumerate(pspans):
            if k not in used_pred:
                add("false_positive", ps[2], "O", ps[2], i, [], [ps])
    return result


def summary_markdown(analysis: ErrorAnalysis, max_examples: int = 3) -> str:
    """A GitHub-readable section: counts per category, per type, and a few examples of each error."""
    n_gold_side = sum(analysis.counts.get(c, 0) for c in CATEGORIES if c != "false_positive")
    lines = ["| category | count | meaning |", "|---|---:|---|"]
    meaning = {
        "correct": "same span, same type",
        "wrong_type": "same span, different type",
        "boundary_same_type": "overlapping span, same type",
        "boundary_wrong_type": "overlapping span, different type",
        "false_negative": "gold entity not touched by any prediction",
        "false_positive": "predicted entity touching no gold entity",
    }
    for c in CATEGORIES:
        lines.append(f"| {c} | {int(analysis.counts.get(c, 0))} | {meaning[c]} |")
    lines.append("")
    lines.append(f"({n_gold_side} gold entities in total; boundary errors count once per gold entity.)")
    lines.append("")
    if analysis.per_type:
        header = "| type | " + " | ".join(CATEGORIES) + " |"
        lines += [header, "|---|" + "---:|" * len(CATEGORIES)]
        for t in sorted(analysis.per_type):
            cnt = analysis.per_type[t]
            lines.append(f"| {t} | " + " | ".join(str(int(cnt.get(c, 0))) for c in CATEGORIES) + " |")
        lines.append("")
    lines.append("Examples: gold entities in `[...]TYPE`, predictions in `{...}TYPE`.")
    lines.append("")
    for c in ERROR_CATEGORIES:
        exs = analysis.examples.get(c, [])[:max_examples]
        if not exs:
            continue
        lines.append(f"**{c}** ({int(analysis.counts.get(c, 0))})")
        lines.append("")
        for e in exs:
            where = f"sentence {e.sentence}" + (f" ({e.sentence_id})" if e.sentence_id else "")
            text = e.context.replace("`", "'")
            lines.append(f"- {where}: `{text}`")
        lines.append("")
    return "\n".join(lines)
