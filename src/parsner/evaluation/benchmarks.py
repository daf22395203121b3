"""Named benchmarks, scored and rendered: their definitions, the published numbers, aggregation and the table.

The published rows come from ``eval/baselines.yaml`` with their sources and flags (ARMAN's leaked all-folds numbers
are marked as such). A stand-in model (``tiny``, ``parsbert-standin``) is named as a stand-in in the table row and in
a note: its numbers say that the pipeline works, not how well ParsBERT does. The runner (build -> train -> eval over
seeds and folds) is :mod:`parsner.workflows.benchmark`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError
from parsner.paths import resource

BASELINES_PATH = resource("eval/baselines.yaml")


@dataclass(frozen=True)
class BenchmarkDef:
    name: str
    corpus: str  # a parsner.data.corpora recipe name
    folds: tuple[str | None, ...]
    description: str
    configs: tuple[str, ...] = ()  # training/<name>.yaml candidates with the hyperparameters (first found)


BENCHMARKS: dict[str, BenchmarkDef] = {
    "sample": BenchmarkDef("sample", "sample", (None,), "embedded sample corpus (smoke test)", ("sample",)),
    "peyma": BenchmarkDef("peyma", "peyma", (None,), "PEYMA, HooshvareLab train/dev/test split", ("peyma",)),
    "arman-fold1": BenchmarkDef("arman-fold1", "arman", ("1",), "ARMAN fold 1 (train_fold1 / test_fold1)",
                                ("arman-fold1", "arman")),
    "arman-3fold": BenchmarkDef("arman-3fold", "arman", ("1", "2", "3"),
                                "ARMAN 3-fold cross-validation (mean over test_fold1..3)",
                                ("arman-3fold", "arman-fold1", "arman")),
}


def benchmark_names() -> list[str]:
    return list(BENCHMARKS)


def get_benchmark(name: str) -> BenchmarkDef:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ConfigError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


# --------------------------------------------------------------------------- published numbers


def load_baselines(path: str | Path | None = None) -> dict[str, Any]:
    """``eval/baselines.yaml`` (sources + per-benchmark published rows), validated enough to render."""
    import yaml

    p = Path(path) if path is not None else BASELINES_PATH
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"baselines file {p} not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: cannot parse: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
        raise ConfigError(f"{p}: expected a mapping with 'sources' and 'benchmarks'")
    sources = data.get("sources") or {}
    for bname, bench in data["benchmarks"].items():
        for i, row in enumerate((bench or {}).get("results") or []):
            where = f"{p}: benchmarks.{bname}.results[{i}]"
            if "system" not in row or ("f1" not in row and "f1_range" not in row):
                raise ConfigError(f"{where} needs 'system' and 'f1' or 'f1_range'")
            if row.get("source") not in sources:
                raise ConfigError(f"{where}: unknown source {row.get('source')!r}")
    return data


def published_rows(baselines: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The rows for ``name`` plus those of its ``see_also`` benchmarks (marked with ``benchmark``)."""
    benches = baselines.get("benchmarks", {})
    bench = benches.get(name) or {}
    rows = [{**r, "benchmark": name} for r in bench.get("results") or []]
    for other in bench.get("see_also") or []:
        rows += [{**r, "benchmark": other} for r in (benches.get(other) or {}).get("results") or []]
    return rows


def _published_f1(row: dict[str, Any]) -> str:
    if "f1_range" in row:
        lo, hi = row["f1_range"]
        return f"{lo:.2f}–{hi:.2f}"
    return f"{float(row['f1']):.2f}"


def _source_cell(row: dict[str, Any], sources: dict[str, Any]) -> str:
    src = sources.get(row.get("source"), {})
    title = src.get("title", row.get("source", "?"))
    url = src.get("url")
    text = f"[{title}]({url})" if url else title
    if row.get("where"):
        text += f"; {' '.join(str(row['where']).split())}"
    status = row.get("status")
    if status == "as-reported":
        text += " *(as reported by the project's brief; not re-checked against the source)*"
    return text.replace("|", "\\|")


# --------------------------------------------------------------------------- aggregation


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    vals = [float(v) for v in values]
    if not vals:
        return math.nan, math.nan
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _pm(values: Sequence[float]) -> str:
    m, s = mean_std([100.0 * v for v in values])
    if math.isnan(m):
        return "–"
    return f"{m:.2f} ± {s:.2f}" if len(values) > 1 else f"{m:.2f}"


def aggregate(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean/std over all runs (seeds x folds) of default/strict P, R, F1, plus per-fold means."""
    out: dict[str, Any] = {"n_runs": len(runs)}
    for mode in ("default", "strict"):
        for key in ("precision", "recall", "f1"):
            m, s = mean_std([r[mode][key] for r in runs])
            out[f"{mode}_{key}_mean"], out[f"{mode}_{key}_std"] = m, s
    folds = sorted({str(r.get("fold")) for r in runs})
    if len(folds) > 1:
        out["per_fold"] = {
            f: {mode: mean_std([r[mode]["f1"] for r in runs if str(r.get("fold")) == f])[0]
                for mode in ("default", "strict")}
            for f in folds
        }
    return out


# --------------------------------------------------------------------------- the table


def render_benchmark_md(
    name: str,
    runs: Sequence[dict[str, Any]],
    baselines: dict[str, Any],
    *,
    model: str,
    stand_in: str | None,
    command: str,
    when: str,
    notes: Sequence[str] = (),
    eval_only: bool = False,
) -> str:
    bench = BENCHMARKS.get(name)
    pub = baselines.get("benchmarks", {}).get(name, {}) or {}
    sources = baselines.get("sources", {}) or {}
    desc = pub.get("description") or (bench.description if bench else name)
    n_seeds = len({r["seed"] for r in runs})
    n_folds = len({str(r.get("fold")) for r in runs})
    lines = [f"## Benchmark `{name}`: {' '.join(str(desc).split())}", ""]
    ours = f"**ParsNER, {model}**"
    if stand_in:
        ours = f"**ParsNER, {model} — STAND-IN (random init, not a pretrained ParsBERT)**"
    shape = f"{n_seeds} seed(s)" + (f" × {n_folds} folds" if n_folds > 1 else "")
    rows = published_rows(baselines, name)
    if eval_only:
        shape = "checkpoint, not retrained" + (f", {n_folds} folds" if n_folds > 1 else "")
        if any("leaked" in (r.get("flags") or []) and r.get("checkpoint") == model for r in rows):
            ours = f"⚠ LEAKED: {ours}"
    lines += [
        "| system | F1 (default / as published) | F1 (strict IOB2) | runs | source |",
        "|---|---:|---:|---|---|",
        f"| {ours} | {_pm([r['default']['f1'] for r in runs])} | {_pm([r['strict']['f1'] for r in runs])} | "
        f"{shape} | this machine, {when} |",
    ]
    for row in rows:
        system = str(row["system"])
        if row.get("checkpoint") and row["checkpoint"] == model:
            system += " ◀ **this checkpoint's published number**"
        if row["benchmark"] != name:
            system += f" *({row['benchmark']})*"
        flags = list(row.get("flags") or [])
        if "leaked" in flags:
            system = f"⚠ LEAKED: {system}"
        elif "different-split" in flags:
            system += " *(different split)*"
        lines.append(f"| {system} | {_published_f1(row)} | – | published | {_source_cell(row, sources)} |")
    lines.append("")
    lines += ["Notes:", ""]
    if stand_in:
        lines.append(f"- Our row is a **stand-in**: {stand_in}. It shows that build → train → eval works "
                     "offline; it is not a ParsBERT result. Train with "
                     "`--model HooshvareLab/bert-fa-base-uncased` (or a local copy) for a real comparison.")
    lines.append("- Ours: mean ± sample std over runs of seqeval micro F1 on the test split (default = "
                 "conlleval semantics, strict = IOB2 scheme). Published numbers are as their sources print "
                 "them; most do not say which scoring mode they used.")
    for row in rows:
        if row.get("note"):
            lines.append(f"- {row['system']}: {' '.join(str(row['note']).split())}")
    for note in notes:
        lines.append(f"- {note}")
    lines += ["", f"Command: `{command}`", ""]
    if runs:
        lines += ["| run | fold | seed | default F1 | strict F1 | default F1 95% CI | train s |",
                  "|---|---|---:|---:|---:|---|---:|"]
        for r in runs:
            ci = r.get("ci_default")
            ci_txt = f"{100 * ci[0]:.2f} – {100 * ci[1]:.2f}" if ci else "–"
            secs = r.get("train_seconds")
            lines.append(f"| {r['run']} | {r.get('fold') or '–'} | {r['seed'] if r['seed'] is not None else '–'} | "
                         f"{100 * r['default']['f1']:.2f} | {100 * r['strict']['f1']:.2f} | {ci_txt} | "
                         f"{f'{secs:.0f}' if isinstance(secs, int | float) else '–'} |")
        lines.append("")
    return "\n".join(lines)
