"""PNG pictures: the entity confusion matrix, a training run's loss/F1 curves, entity scores by threshold and their
reliability diagram.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), so it works on
headless machines and does not disturb a notebook's backend. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_confusion(
    rows: Sequence[str],
    cols: Sequence[str],
    matrix: Sequence[Sequence[int]],
    path: str | Path,
    *,
    title: str = "Entity confusion (rows: gold, columns: predicted)",
) -> Path:
    """Write a confusion-matrix heat map with the counts written in every cell. Row-normalised colours."""
    path = Path(path)
    n_r, n_c = len(rows), len(cols)
    fig = _figure(max(4.0, 0.8 * n_c + 2.5), max(3.5, 0.6 * n_r + 2.0))
    ax = fig.add_subplot(1, 1, 1)
    shares = []
    for r in matrix:
        total = sum(r)
        shares.append([v / total if total else 0.0 for v in r])
    im = ax.imshow(shares or [[0.0]], cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(n_c))
    ax.set_xticklabels(list(cols), rotation=45, ha="right")
    ax.set_yticks(range(n_r))
    ax.set_yticklabels(list(rows))
    ax.set_xlabel("predicted (O = missed)")
    ax.set_ylabel("gold (O = spurious)")
    ax.set_title(title, fontsize=9)
    for i, r in enumerate(matrix):
        for j, v in enumerate(r):
            if rows[i] == "O" and cols[j] == "O":
                continue  # "no entity predicted where there is none" is not counted
            colour = "white" if shares[i][j] > 0.6 else "black"
            ax.text(j, i, str(int(v)), ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the gold row")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


@dataclass
class TrainLog:
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)  # 1-based lines that were not JSON objects


def read_train_log(path: str | Path) -> TrainLog:
    """Read ``train_log.jsonl`` defensively: unparsable lines (e.g. a truncated last line after a crash)
    are listed in ``skipped_lines`` rather than aborting the plot."""
    log = TrainLog()
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                log.skipped_lines.append(lineno)
                continue
            if isinstance(obj, dict):
                log.records.append(obj)
            else:
                log.skipped_lines.append(lineno)
    return log


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _series(records: list[dict[str, Any]], key: str, xkey: str) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for rec in records:
        y, x = _num(rec.get(key)), _num(rec.get(xkey))
        if y is not None and x is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys


def plot_training_curves(run_dir_or_log: str | Path, path: str | Path | None = None) -> Path | None:
    """Loss (left) and F1 (right) against the step (or epoch) from a run's ``train_log.jsonl``.

    Loss keys: every numeric key containing ``loss`` (``loss``, ``train_loss``, ``eval_loss``);
    F1 keys: every numeric key containing ``f1`` (``eval_f1``, ``eval_strict_f1``, ...).
    Returns the PNG path, or None when the log holds nothing to plot.
    """
    src = Path(run_dir_or_log)
    log_path = src / "train_log.jsonl" if src.is_dir() else src
    if not log_path.is_file():
        return None
    log = read_train_log(log_path)
    if not log.records:
        return None
    xkey = "step" if any(_num(r.get("step")) is not None for r in log.records) else "epoch"
    keys = sorted({k for r in log.records for k, v in r.items() if _num(v) is not None})
    loss_keys = [k for k in keys if "loss" in k.lower()]
    f1_keys = [k for k in keys if "f1" in k.lower()]
    series = {k: _series(log.records, k, xkey) for k in loss_keys + f1_keys}
    loss_keys = [k for k in loss_keys if series[k][0]]
    f1_keys = [k for k in f1_keys if series[k][0]]
    if not loss_keys and not f1_keys:
        return None
    out = Path(path) if path is not None else log_path.parent / "curves.png"
    fig = _figure(10.0, 4.0)
    ax_l = fig.add_subplot(1, 2, 1)
    ax_r = fig.add_subplot(1, 2, 2)
    for k in loss_keys:
        xs, ys = series[k]
        ax_l.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=k)
    for k in f1_keys:
        xs, ys = series[k]
        ax_r.plot(xs, ys, marker="o", markersize=3, label=k)
    for ax, name, has in ((ax_l, "loss", loss_keys), (ax_r, "F1", f1_keys)):
        ax.set_xlabel(xkey)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if has:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {name} in the log", ha="center", va="center", transform=ax.transAxes)
    title = f"{log_path.parent.name}: training curves"
    if log.skipped_lines:
        title += f" ({len(log.skipped_lines)} unreadable log line(s) skipped)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def plot_thresholds(rows: Sequence[dict[str, Any]], path: str | Path, *,
                    title: str = "Entities kept at each score threshold") -> Path:
    """Precision, recall and F1 against the score threshold (rows of ``calibration.threshold_table``)."""
    path = Path(path)
    fig = _figure(5.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    xs = [r["threshold"] for r in rows]
    for key, style in (("precision", "o-"), ("recall", "s-"), ("f1", "^-")):
        ax.plot(xs, [r[key] for r in rows], style, label=key if key != "f1" else "F1", markersize=4)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("minimum entity score (--min-score)")
    ax.set_ylabel("share")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_reliability(rows: Sequence[dict[str, Any]], path: str | Path, *, ece: float | None = None,
                     title: str = "Reliability of entity scores") -> Path:
    """The reliability diagram: per score bin, the share of right entities beside the diagonal, and the counts."""
    path = Path(path)
    fig = _figure(5.0, 5.0)
    ax = fig.add_subplot(2, 1, 1)
    width = (rows[0]["hi"] - rows[0]["lo"]) if rows else 0.1
    filled = [r for r in rows if r["entities"]]
    ax.bar([r["lo"] for r in filled], [r["accuracy"] for r in filled], width=width, align="edge",
           edgecolor="black", color="tab:blue", alpha=0.7, label="share right")
    ax.plot([r["mean_score"] for r in filled], [r["accuracy"] for r in filled], "o", color="black", markersize=3,
            label="(mean score, share right)")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("share right")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title(title + ("" if ece is None else f" (ECE {ece:.3f})"), fontsize=9)
    ax2 = fig.add_subplot(2, 1, 2)
    ax2.bar([r["lo"] for r in rows], [r["entities"] for r in rows], width=width, align="edge", edgecolor="black",
            color="tab:gray")
    ax2.set_xlim(0.0, 1.0)
    ax2.set_xlabel("entity score")
    ax2.set_ylabel("entities")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
