"""One confidence per entity: the raw span probability, and the calibration a model folder may carry.

**Raw confidence.** An entity's raw score is the probability of its whole span under the model, taken as the
*product* of the probabilities of its words' chosen tags (``span_confidence``): for a token classifier, the softmax
probability of each word's tag (first sub-token; after constrained Viterbi, the probability of the tag Viterbi
chose); for the feature CRF, crfsuite's marginal ``P(y_i = tag | sentence)`` of each word's Viterbi tag
(``tagger.marginal``). For words tagged independently the product is exactly the span's probability; for the CRF it
is an approximation of the joint, which the minimum would bound from above (``P(all) <= min P(each)``) but rank
worse: a two-word name with marginals 0.6 and 0.6 is less likely right than a one-word name at 0.6, and the minimum
scores both 0.6. The mean used before over-stated spans holding one forced tag (0.9 and 0.01 gave 0.45).

**Calibration.** ``calibration.json`` beside the model maps the raw score to the chance that the entity is right
(its span and type exactly those of a gold entity), fitted on the validation split after training
(:mod:`parsner.evaluation.calibration`). The map is isotonic regression (pool-adjacent-violators, numpy only),
a step function over the fitted scores with linear interpolation between one block's largest score and the next
block's smallest (so unseen scores get no jumps), so it is monotone (non-decreasing): entities
keep their order, and a threshold on the calibrated score is a threshold on the raw one. A model folder without
``calibration.json`` (older runs, hub models, other teams' checkpoints) keeps the raw score. ``min_score`` drops
entities whose (calibrated) score is below it; their words' tags become ``O``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The file a model folder keeps its calibration in.
CALIBRATION_FILE = "calibration.json"
#: What the raw score is (written into calibration.json, checked when it is applied).
RAW_SCORE = "product"
FORMAT_VERSION = 1


def span_confidence(word_scores: Sequence[float]) -> float:
    """The raw confidence of an entity: the product of its words' tag probabilities (1.0 for no words)."""
    return float(math.prod(float(s) for s in word_scores))


def check_min_score(value: Any, name: str = "min_score") -> float:
    """``value`` as a float in [0, 1]; ``ValueError`` naming ``name`` otherwise (NaN, bool, text refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a number from 0 to 1, not {value!r}")
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number from 0 to 1, not {value!r}") from None
    if not (0.0 <= x <= 1.0):  # NaN fails too
        raise ValueError(f"{name} must be from 0 to 1, not {value!r}")
    return x


@dataclass
class Calibrator:
    """A monotone map from raw entity scores to calibrated ones (isotonic; linear between the fitted blocks)."""

    x: list[float]  # raw scores: each fitted block's smallest and largest, non-decreasing
    y: list[float]  # calibrated scores at x (the blocks' shares right), non-decreasing
    method: str = "isotonic"
    raw: str = RAW_SCORE
    info: dict[str, Any] = field(default_factory=dict)  # what it was fitted on (split, entities, ECE before/after)

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y) or not self.x:
            raise ValueError("a calibrator needs as many x as y values, at least one")
        if any(b < a for a, b in zip(self.x, self.x[1:], strict=False)):
            raise ValueError("calibration x values must not decrease")
        if any(b < a for a, b in zip(self.y, self.y[1:], strict=False)):
            raise ValueError("calibration y values must not decrease")
        if not all(0.0 <= v <= 1.0 for v in (*self.x, *self.y)):
            raise ValueError("calibration values must lie in [0, 1]")

    def __call__(self, score: float) -> float:
        """The calibrated score (outside the fitted range: the end values)."""
        xs, ys = self.x, self.y
        if score <= xs[0]:
            return ys[0]
        if score >= xs[-1]:
            return ys[-1]
        lo, hi = 0, len(xs) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if xs[mid] <= score:
                lo = mid
            else:
                hi = mid
        width = xs[hi] - xs[lo]
        t = (score - xs[lo]) / width if width > 0 else 1.0
        return ys[lo] + t * (ys[hi] - ys[lo])

    def apply(self, scores: Sequence[float]) -> list[float]:
        return [self(s) for s in scores]

    @classmethod
    def fit(cls, scores: Sequence[float], correct: Sequence[bool | int], **info: Any) -> Calibrator:
        """Isotonic regression of ``correct`` (0/1) on ``scores`` by pool-adjacent-violators (numpy only)."""
        import numpy as np

        s = np.asarray(scores, dtype=float)
        c = np.asarray(correct, dtype=float)
        if s.shape != c.shape or s.ndim != 1 or len(s) == 0:
            raise ValueError("calibration needs as many scores as correctness marks, at least one")
        order = np.argsort(s, kind="stable")
        s, c = np.clip(s[order], 0.0, 1.0), c[order]
        # blocks: [sum of correct, count, smallest score, largest score]; equal scores always share a block
        blocks: list[list[float]] = []
        for xv, yv in zip(s.tolist(), c.tolist(), strict=True):
            if blocks and blocks[-1][3] == xv:
                blocks[-1][0] += yv
                blocks[-1][1] += 1
            else:
                blocks.append([yv, 1.0, xv, xv])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
                last = blocks.pop()  # violators (and equal levels) pooled
                blocks[-1][0] += last[0]
                blocks[-1][1] += last[1]
                blocks[-1][3] = last[3]
        # each block's level at its smallest and largest score: the step fit at every fitted score, linear between
        x: list[float] = []
        y: list[float] = []
        for total, n, lo, hi in blocks:
            for knot in ((lo,) if lo == hi else (lo, hi)):
                x.append(knot)
                y.append(min(1.0, max(0.0, total / n)))
        return cls(x=x, y=y, info={"entities": len(s), **info})

    def to_dict(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "method": self.method, "raw": self.raw,
                "x": list(self.x), "y": list(self.y), "info": self.info}

    @classmethod
    def from_dict(cls, data: Any) -> Calibrator:
        """The calibrator of a ``to_dict`` mapping; ValueError for anything else (numbers must be numbers)."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, not {type(data).__name__}")
        if data.get("method") != "isotonic" or data.get("raw") != RAW_SCORE:
            raise ValueError(f"unknown calibration (method {data.get('method')!r}, raw {data.get('raw')!r})")
        xs, ys, info = data.get("x"), data.get("y"), data.get("info") or {}
        for name, values in (("x", xs), ("y", ys)):
            if not isinstance(values, list) or not all(_is_number(v) for v in values):
                raise ValueError(f'"{name}" must be a list of numbers')
        if not isinstance(info, dict):
            raise ValueError('"info" must be an object')
        return cls(x=[float(v) for v in xs], y=[float(v) for v in ys], method="isotonic",  # type: ignore[union-attr]
                   raw=RAW_SCORE, info=dict(info))

    def save(self, directory: str | Path) -> Path:
        from parsner.atomic import atomic_write_text

        path = Path(directory) / CALIBRATION_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


#: A calibration holds two knots per fitted block: a few thousand numbers. Far more is not one parsner wrote.
MAX_CALIBRATION_BYTES = 16 * 2**20


def load_calibration(path: str | Path | None) -> Calibrator | None:
    """The calibrator in ``path`` (a calibration.json), None when ``path`` is None; ModelLoadError when unreadable.

    Read strictly (:mod:`parsner.data.strictjson`: no duplicate keys, bounded nesting) and checked, since a model
    folder may come from anyone: a bad file is one message naming it, never a traceback."""
    from parsner.data import strictjson
    from parsner.errors import ModelLoadError

    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CALIBRATION_BYTES + 1)
        if len(raw) > MAX_CALIBRATION_BYTES:
            raise ValueError(f"over {MAX_CALIBRATION_BYTES // 2**20} MiB")
        return Calibrator.from_dict(strictjson.loads(raw))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a usable calibration ({exc}); delete it to use raw scores") from None
