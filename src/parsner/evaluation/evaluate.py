"""The evaluation harness: score a model on a dataset split, or any system's predictions file.

Both paths end in :func:`evaluate_tags`, which writes (atomically, into one directory)::

    metrics.json       seqeval scores (default + strict IOB2), bootstrap CIs, error counts, provenance
    predictions.conll  token<TAB>gold<TAB>pred, blank line between sentences (tabs: PEYMA tokens hold spaces)
    analysis.json      error analysis with examples and the entity confusion matrix
    report.md          the tables, readable on GitHub
    confusion.png      the entity confusion matrix

Predictions files (``parsner eval --predictions FILE``): one word per line, the LAST TWO columns are the
gold and the predicted tag, a blank line ends a sentence. If a line contains a tab, columns are split on
tabs and the first column is the token (middle columns, e.g. conlleval features, are ignored), so tokens may
contain spaces. Otherwise columns are split on whitespace and everything before the last two columns is
the token, joined with single spaces. ``-DOCSTART-`` lines separate sentences and are counted, not scored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsner.atomic import atomic_dir
from parsner.data.readers.conll import is_docstart, read_text
from parsner.errors import ConfigError, InputError
from parsner.evaluation.analysis import ErrorAnalysis, analyze, summary_markdown
from parsner.evaluation.metrics import MODES, bootstrap_f1_ci, fmt_pct, score
from parsner.labels import TagError, canonical_tag


@dataclass
class TaggedSet:
    """Word-level tokens with gold and predicted tags, plus where each sentence came from."""

    tokens: list[list[str]]
    gold: list[list[str]]
    pred: list[list[str]]
    ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: per sentence, {(start, end, type): score} of the predicted entities (None: no scores, e.g. a predictions file)
    entity_scores: list[dict[tuple, float]] | None = None
    calibrated: bool = False  # the scores went through the model's calibration.json
    #: the same sentences tagged as raw text, scored on character spans (:mod:`parsner.evaluation.rawtext`)
    raw_text: dict[str, Any] | None = None


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    analysis: ErrorAnalysis
    report: str
    out_dir: Path | None


# --------------------------------------------------------------------------- predictions files


def read_predictions(path: str | Path) -> TaggedSet:
    """Parse a ``token gold pred`` file (see the module docstring). Bad lines raise InputError(file, line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "predictions file not found")
    out = TaggedSet([], [], [])
    toks: list[str] = []
    gold: list[str] = []
    pred: list[str] = []
    start_line = 0
    docstarts = 0

    def flush() -> None:
        if toks:
            out.tokens.append(list(toks))
            out.gold.append(list(gold))
            out.pred.append(list(pred))
            out.ids.append(f"{path.name}:{start_line}")
            toks.clear()
            gold.clear()
            pred.clear()

    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            flush()
        elif is_docstart(line):  # readers.conll's rule: `-DOCSTART- -X- O O` is a boundary, not a word
            flush()
            docstarts += 1
        else:
            token, g, p = _prediction_line(path, lineno, line)
            if not toks:
                start_line = lineno
            toks.append(token)
            gold.append(g)
            pred.append(p)
    flush()
    if not out.tokens:
        raise InputError(path, None, "no sentences found (expected lines `token gold pred`)")
    if docstarts:
        out.notes.append(f"{docstarts} -DOCSTART- line(s) treated as sentence boundaries")
    return out


def _prediction_line(path: Path, lineno: int, line: str) -> tuple[str, str, str]:
    """``(token, gold, pred)`` of one line: tab-separated (first column the token) or whitespace-separated."""
    if "\t" in line:
        cols = line.split("\t")
        token = cols[0]
    else:
        cols = line.split()
        token = " ".join(cols[:-2])
    if len(cols) < 3:
        kind = "tab-separated " if "\t" in line else ""
        raise InputError(path, lineno, f"expected 3 {kind}columns (token, gold, pred), got {len(cols)}: {line!r}")
    tags = []
    for what, tag in (("gold", cols[-2].strip()), ("predicted", cols[-1].strip())):
        try:
            tags.append(canonical_tag(tag))
        except TagError as exc:
            raise InputError(path, lineno, f"{what} tag: {exc}") from exc
    return token, tags[0], tags[1]


def write_predictions(path: str | Path, tokens: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                      pred: Sequence[Sequence[str]]) -> None:
    """``token<TAB>gold<TAB>pred`` per word, blank line after each sentence (readable by read_predictions)."""
    from parsner.data.writers import conll_sentence

    parts: list[str] = []
    for i, cols in enumerate(zip(tokens, gold, pred, strict=True)):
        try:
            parts.append(conll_sentence([list(c) for c in cols], "\t"))
        except ValueError as exc:
            raise InputError(None, None, f"sentence {i}: {exc}; it cannot be written to a CoNLL file") from None
    Path(path).write_text("".join(parts), encoding="utf-8")


# --------------------------------------------------------------------------- the report


def _mode_label(mode: str) -> str:
    return {"default": "default (conlleval)", "strict": "strict (IOB2)"}[mode]


def _source_lines(metrics: dict[str, Any]) -> list[str]:
    """The bullet list under the title: what was scored, type inventory, stand-in warning, counts, notes."""
    src = metrics.get("source", {})
    lines = [f"- {key}: `{src[key]}`" for key in ("model", "data", "split", "predictions", "normalizer", "label_map")
             if src.get(key)]
    inventory = src.get("types") or {}
    if inventory.get("model_only") or inventory.get("data_only"):
        shown = {k: ", ".join(v) or "–" for k, v in inventory.items()}
        lines.append(f"- types: shared {shown['shared']}; model only {shown['model_only']}; "
                     f"data only {shown['data_only']}")
    if src.get("stand_in"):
        lines.append(f"- **stand-in model**: {src['stand_in']} — these numbers are NOT those of a real "
                     "pretrained ParsBERT; they only show that the pipeline works.")
    lines.append(f"- sentences: {metrics['n_sentences']}, words: {metrics['n_tokens']}, "
                 f"gold entities: {metrics['n_gold_entities']}, "
                 f"predicted entities: {metrics['n_pred_entities']}")
    lines.append(f"- word (token) accuracy: {fmt_pct(metrics['token_accuracy'])}%")
    lines += [f"- note: {note}" for note in src.get("notes", [])]
    return lines


def _overall_section(metrics: dict[str, Any]) -> list[str]:
    """Micro P/R/F1 per scoring mode with bootstrap CIs, and the shared-types table when types differ."""
    title_types = ", all types" if metrics.get("shared_types") else ""
    lines = ["", f"## Overall (entity level, seqeval micro average{title_types})", ""]
    boot = metrics.get("bootstrap", {})
    level = None
    lines += ["| mode | precision | recall | F1 | F1 95% CI | correct / pred / gold |",
              "|---|---:|---:|---:|---|---|"]
    for mode in MODES:
        m = metrics[mode]
        ci = boot.get(mode)
        ci_txt = f"{fmt_pct(ci['low'])} – {fmt_pct(ci['high'])}" if ci else "–"
        if ci:
            level = ci
        lines.append(f"| {_mode_label(mode)} | {fmt_pct(m['precision'])} | {fmt_pct(m['recall'])} | "
                     f"**{fmt_pct(m['f1'])}** | {ci_txt} | "
                     f"{m['n_correct']} / {m['n_pred']} / {m['n_gold']} |")
    lines.append("")
    if level:
        lines.append(f"CI: percentile bootstrap over sentences, {level['n_resamples']} resamples, "
                     f"seed {level['seed']}.")
        lines.append("")
    return lines + _shared_types_lines(metrics.get("shared_types"))


def _shared_types_lines(shared: dict[str, Any] | None) -> list[str]:
    if not shared:
        return []
    types = ", ".join(shared["types"]) or "none"
    lines = [f"The scores above count **all types**. Over the **shared types only** ({types}: the types "
             "both the model and the data have):", "",
             "| mode | precision | recall | F1 | correct / pred / gold |", "|---|---:|---:|---:|---|"]
    for mode in MODES:
        m = shared[mode]
        lines.append(f"| {_mode_label(mode)}, shared types | {fmt_pct(m['precision'])} | "
                     f"{fmt_pct(m['recall'])} | **{fmt_pct(m['f1'])}** | "
                     f"{m['n_correct']} / {m['n_pred']} / {m['n_gold']} |")
    lines.append("")
    return lines


def _per_type_section(metrics: dict[str, Any]) -> list[str]:
    """Default and strict P/R/F1 per entity type, then the micro/macro/weighted averages."""
    lines = ["## Per type", ""]
    types = sorted(set(metrics["default"]["per_type"]) | set(metrics["strict"]["per_type"]))
    if not types:
        return [*lines, "No entities in the gold tags nor in the predictions."]
    lines += ["| type | support | precision | recall | F1 | strict P | strict R | strict F1 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    empty = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    for t in types:
        d = metrics["default"]["per_type"].get(t, empty)
        s = metrics["strict"]["per_type"].get(t, empty)
        lines.append(f"| {t} | {d['support']} | {fmt_pct(d['precision'])} | {fmt_pct(d['recall'])} | "
                     f"{fmt_pct(d['f1'])} | {fmt_pct(s['precision'])} | {fmt_pct(s['recall'])} | "
                     f"{fmt_pct(s['f1'])} |")
    for avg in ("micro_avg", "macro_avg", "weighted_avg"):
        d, s = metrics["default"][avg], metrics["strict"][avg]
        lines.append(f"| *{avg.replace('_', ' ')}* | {d['support']} | {fmt_pct(d['precision'])} | "
                     f"{fmt_pct(d['recall'])} | {fmt_pct(d['f1'])} | {fmt_pct(s['precision'])} | "
                     f"{fmt_pct(s['recall'])} | {fmt_pct(s['f1'])} |")
    return lines


def _confusion_section(analysis: ErrorAnalysis, confusion_png: str | None) -> list[str]:
    lines = ["## Entity confusion", ""]
    rows, cols, matrix = analysis.confusion_matrix()
    if len(rows) <= 1:
        return [*lines, "(no entities)", ""]
    lines += ["rows: gold type (O = spurious prediction); columns: predicted type (O = missed)", ""]
    lines.append("| gold \\ pred | " + " | ".join(cols) + " |")
    lines.append("|---|" + "---:|" * len(cols))
    for r, row in zip(rows, matrix, strict=True):
        lines.append(f"| {r} | " + " | ".join(str(v) for v in row) + " |")
    lines.append("")
    if confusion_png:
        lines += [f"![entity confusion matrix]({confusion_png})", ""]
    return lines


def render_report(metrics: dict[str, Any], analysis: ErrorAnalysis, *, title: str,
                  confusion_png: str | None = "confusion.png", plots: bool = True) -> str:
    """report.md: overall scores with CIs, per-type table, entity scores (threshold table, calibration), error
    analysis and confusion matrix."""
    conf_lines: list[str] = []
    raw_lines: list[str] = []
    if metrics.get("raw_text"):
        from parsner.evaluation.rawtext import raw_text_markdown

        raw_lines = raw_text_markdown(metrics)
    if metrics.get("confidence"):
        from parsner.evaluation.calibration import confidence_markdown

        conf_lines = confidence_markdown(metrics["confidence"], "threshold.png" if plots else None,
                                         "reliability.png" if plots else None)
    lines = [
        f"# Evaluation: {title}",
        "",
        *_source_lines(metrics),
        *_overall_section(metrics),
        *raw_lines,
        *_per_type_section(metrics),
        *conf_lines,
        "", "## Errors", "", summary_markdown(analysis), "",
        *_confusion_section(analysis, confusion_png),
    ]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- the harness


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def evaluate_tags(
    data: TaggedSet,
    *,
    out: str | Path | None = None,
    title: str = "predictions",
    source: dict[str, Any] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    overwrite: bool = False,
    plots: bool = True,
    max_examples: int = 5,
    train_log: str | Path | None = None,
) -> EvalResult:
    """Score, analyse, and (if ``out``) write the evaluation directory atomically.

    ``train_log``: a run's ``train_log.jsonl``; with ``plots`` its loss/F1 curves go to ``curves.png``.
    """
    metrics = score(data.gold, data.pred)
    inventory = (source or {}).get("types")
    if inventory and (inventory.get("model_only") or inventory.get("data_only")):
        metrics["shared_types"] = shared_type_scores(data, inventory["shared"])
    if n_bootstrap > 0:
        metrics["bootstrap"] = {
            mode: bootstrap_f1_ci(data.gold, data.pred, mode=mode, n_resamples=n_bootstrap, seed=seed)
            for mode in MODES
        }
    analysis = analyze(data.tokens, data.gold, data.pred, max_examples=max_examples,
                       sentence_ids=data.ids or None)
    src = dict(source or {})
    if data.notes:
        src["notes"] = [*src.get("notes", []), *data.notes]
    metrics["source"] = src
    metrics["errors"] = {c: int(n) for c, n in analysis.to_dict()["counts"].items()}
    if data.entity_scores is not None:
        from parsner.evaluation.calibration import confidence_report, entity_outcomes

        metrics["confidence"] = confidence_report(entity_outcomes(data.gold, data.pred, data.entity_scores),
                                                  calibrated=data.calibrated)
    if data.raw_text is not None:
        metrics["raw_text"] = data.raw_text
    log_path = Path(train_log) if train_log is not None else None
    want_curves = plots and log_path is not None and log_path.is_file()
    report = render_report(metrics, analysis, title=title, confusion_png="confusion.png" if plots else None,
                           plots=plots)
    out_dir: Path | None = None
    if out is not None:
        out_dir = Path(out)
        with atomic_dir(out_dir, overwrite=overwrite, kind="eval") as tmp:
            _write_json(tmp / "metrics.json", metrics)
            _write_json(tmp / "analysis.json", analysis.to_dict())
            write_predictions(tmp / "predictions.conll", data.tokens, data.gold, data.pred)
            if plots:
                from parsner.evaluation.plots import plot_confusion

                rows, cols, matrix = analysis.confusion_matrix()
                plot_confusion(rows, cols, matrix, tmp / "confusion.png", title=f"{title}: entity confusion")
                if metrics.get("confidence"):
                    _plot_confidence(metrics["confidence"], tmp, title)
                if metrics.get("raw_text"):
                    _plot_raw_text(metrics["raw_text"], tmp, title)
            if want_curves and log_path is not None:
                from parsner.evaluation.plots import plot_training_curves

                if plot_training_curves(log_path, tmp / "curves.png") is not None:
                    report += "\n## Training curves\n\n![loss and F1 during training](curves.png)\n"
            (tmp / "report.md").write_text(report, encoding="utf-8")
    return EvalResult(metrics=metrics, analysis=analysis, report=report, out_dir=out_dir)


def _plot_confidence(conf: dict[str, Any], out: Path, title: str) -> None:
    """threshold.png and reliability.png beside the other plots."""
    from parsner.evaluation.plots import plot_reliability, plot_thresholds

    plot_thresholds(conf["thresholds"], out / "threshold.png", title=f"{title}: entities by score threshold")
    plot_reliability(conf["reliability"], out / "reliability.png", ece=conf.get("ece"),
                     title=f"{title}: reliability")


def _plot_raw_text(raw: dict[str, Any], out: Path, title: str) -> None:
    """raw_text_reliability.png: the reliability diagram of the raw-text entities."""
    from parsner.evaluation.plots import plot_reliability

    conf = raw["confidence"]
    plot_reliability(conf["reliability"], out / "raw_text_reliability.png", ece=conf.get("ece"),
                     title=f"{title}: reliability on raw text")


def restrict_types(tags: Sequence[Sequence[str]], types: set[str]) -> list[list[str]]:
    """Every tag whose type is not in ``types`` becomes ``O`` (whole entities go, as their types do)."""
    return [[t if t == "O" or t[2:] in types else "O" for t in sent] for sent in tags]


def shared_type_scores(data: TaggedSet, shared: Sequence[str]) -> dict[str, Any]:
    """Scores over the types both the model and the data have: the fair number for a cross-schema model."""
    keep = set(shared)
    sc = score(restrict_types(data.gold, keep), restrict_types(data.pred, keep))
    return {"types": sorted(keep), **sc}


def type_inventory(model_types: set[str], data_types: set[str]) -> dict[str, list[str]]:
    return {
        "shared": sorted(model_types & data_types),
        "model_only": sorted(model_types - data_types),
        "data_only": sorted(data_types - model_types),
    }


def default_predictions_out(path: str | Path) -> Path:
    return Path("eval") / "runs" / Path(path).stem


def evaluate_predictions_file(path: str | Path, out: str | Path | None = None, **kwargs: Any) -> EvalResult:
    """Score any system's ``token gold pred`` file; ``out=None`` writes nothing.

    The CLI's default output directory is :func:`default_predictions_out`.
    """
    data = read_predictions(path)
    return evaluate_tags(data, out=out, title=Path(path).name, source={"predictions": str(path)}, **kwargs)


def read_model_meta(model_dir: str | Path) -> dict[str, Any]:
    """``parsner.json`` of a run directory as a dict ({} for a plain HF model or a hub id without one)."""
    from parsner.inference.runmeta import RunMeta

    p = Path(model_dir) / "parsner.json"
    return RunMeta.read(p).to_dict() if p.is_file() else {}


def stand_in_description(meta: dict[str, Any]) -> str | None:
    """A human description when the model is a stand-in (random weights), else None."""
    from parsner.inference.runmeta import RunMeta

    return RunMeta.from_dict(meta).stand_in_text if meta else None


def split_tags(data_dir: str | Path, split: str) -> TaggedSet:
    """Word tokens and gold tag names of one split of a dataset built by ``parsner data build``."""
    from parsner.data.dataset import load_dataset_dir

    dd = load_dataset_dir(data_dir)
    if split not in dd:
        raise ConfigError(f"{data_dir}: no split {split!r} (available: {', '.join(dd.keys())})")
    ds = dd[split]
    feat = ds.features["ner_tags"]
    inner = getattr(feat, "feature", None)
    names = getattr(inner, "names", None)
    tokens = [list(t) for t in ds["tokens"]]
    raw_tags = ds["ner_tags"]
    if names is not None:
        gold = [[names[i] for i in row] for row in raw_tags]
    else:
        gold = [list(row) for row in raw_tags]
    if "id" in ds.column_names:
        ids = [str(x) for x in ds["id"]]
    else:
        ids = [f"{split}:{i}" for i in range(len(tokens))]
    return TaggedSet(tokens, gold, [], ids)


def evaluate_model(
    model_dir: str | Path,
    data_dir: str | Path,
    split: str = "test",
    out: str | Path | None = None,
    *,
    batch_size: int = 32,
    device: str | None = None,
    label_map: str | Path | None = None,
    normalizer: str = "auto",
    raw_text: bool = True,
    **kwargs: Any,
) -> EvalResult:
    """Predict word-level tags for ``split`` with :class:`parsner.inference.tagger.Tagger` and score them; with
    ``raw_text``, also tag its sentences as raw text and score character spans (:mod:`parsner.evaluation.rawtext`).

    ``model_dir`` is a run directory, any token-classification model directory or a hub id; its labels are
    canonicalised at load (:func:`parsner.labels.model_labels`), ``label_map`` (a preset or file) maps them
    onto the data's types. Where the model's and the data's types differ, ``metrics.json`` holds the
    scores over all types and, under ``shared_types``, over the types both have.
    """
    from parsner.inference.tagger import Tagger

    model_dir = Path(model_dir)
    if out is not None and Path(out).exists() and not kwargs.get("overwrite"):
        # fail before minutes of prediction, not after
        raise ConfigError(f"{out} already exists; choose another output or pass --overwrite")
    data = split_tags(data_dir, split)
    tagger = Tagger.from_pretrained(str(model_dir), device=device, normalizer=normalizer, label_map=label_map)
    t0 = time.perf_counter()
    pred, word_scores = tagger.predict_words(data.tokens, batch_size=batch_size, return_scores=True)
    data.pred = [list(p) for p in pred]
    seconds = time.perf_counter() - t0
    from parsner.evaluation.calibration import sentence_entity_scores

    data.entity_scores = sentence_entity_scores(data.pred, word_scores, tagger.entity_score)
    data.calibrated = getattr(tagger, "calibrator", None) is not None
    if raw_text:
        from parsner.evaluation.rawtext import evaluate_raw_text

        t_raw = time.perf_counter()
        data.raw_text = evaluate_raw_text(tagger, data.tokens, data.gold, batch_size=batch_size,
                                          n_bootstrap=kwargs.get("n_bootstrap", 1000), seed=kwargs.get("seed", 0))
        data.raw_text["predict_seconds"] = round(time.perf_counter() - t_raw, 3)
    n_words = sum(len(t) for t in data.tokens)
    meta = {**read_model_meta(model_dir), **(getattr(tagger, "meta", None) or {})}
    source: dict[str, Any] = {
        "model": str(model_dir),
        "data": str(data_dir),
        "split": split,
        "predict_seconds": round(seconds, 3),
        "words_per_second": round(n_words / seconds, 1) if seconds > 0 else None,
    }
    standin = stand_in_description(meta)
    if standin:
        source["stand_in"] = standin
    source["normalizer"] = tagger.meta.get("normalizer_used", "normalizer.json" if tagger.normalizer else "none")
    source["label_map"] = str(label_map) if label_map is not None else None
    source["label_scheme"] = tagger.model_labels.scheme
    inventory = type_inventory(set(tagger.labels), {t[2:] for sent in data.gold for t in sent if t != "O"})
    source["types"] = inventory
    notes = []
    if inventory["data_only"]:
        notes.append(f"the model has no label for the gold type(s) {', '.join(inventory['data_only'])}: every "
                     "such entity counts as missed in the all-types scores (cross-schema evaluation; see the "
                     "shared-types scores, or map the model's types with --label-map)")
    if inventory["model_only"]:
        notes.append(f"the data has no gold type(s) {', '.join(inventory['model_only'])}: every such prediction "
                     "counts as a false positive in the all-types scores (see the shared-types scores)")
    if notes:
        source["notes"] = notes
    title = f"{model_dir.name} on {Path(data_dir).name}/{split}"
    kwargs.setdefault("train_log", model_dir / "train_log.jsonl")
    return evaluate_tags(data, out=out, title=title, source=source, **kwargs)
