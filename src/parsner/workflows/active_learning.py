"""Active learning, simulated: would choosing which sentences to annotate by the model's uncertainty save
annotation against a random choice? (``parsner active-learning``; the guide is docs/active-learning.md.)

The train split of a built dataset is the *pool*: sentences an annotator could label, whose gold tags are revealed
only when a strategy picks them; the test split is scored at every point. The model is a *plain* feature CRF
(python-crfsuite, L-BFGS; word, shape, affix and context features of :mod:`parsner.data.wordfeatures`, no word
clusters, no gazetteer), trained in this process from scratch at every point, on words normalised as training
normalises them (``normalizer``, the ``parsbert`` preset by default).

1. A *reference* CRF, trained once on the whole pool with the same settings, gives the full-data F1 and the target,
   ``target_share`` x that F1 (crfsuite's L-BFGS is deterministic: one reference suffices).
2. Each curve (strategy, seed) starts from ``seed_size`` sentences drawn at random with that seed: the same seed set
   for every strategy at a seed, so the strategies are compared paired. At each next size of the schedule the
   strategy (:func:`parsner.inference.selection.select`) picks the difference from the unlabelled pool, using the
   current model's word marginals (``uncertainty``, ``diverse``) and the words already labelled (``diverse``); the
   CRF is retrained on the labelled set and scored on test (seqeval default F1). A curve stops
   ``stop_after_target`` points after it first reaches the target (0: runs the whole schedule).
3. :func:`summarise`: the learning curves (mean and sd of F1 over seeds per size) and, per strategy, the sentences
   and the words annotated to reach the target (linear interpolation at the first crossing), their mean with a
   95% t-interval over seeds, and the paired saving against random.

Output folder (``out``)::

    settings.json        the settings and the data's fingerprint: a rerun must match them, else it is refused
    reference.json       the full-data CRF's test scores, the target
    points.jsonl         one line per finished point, appended and fsynced: the state a rerun resumes from
    results.json         settings, full F1, target, the summary
    report.md            learning-curve table, sentences (and words) to the target with 95% CIs, the machine
    learning_curves.png  mean test F1 against sentences annotated, min..max band over seeds, the target line
    work/                the latest model of each unfinished curve (it picks the next batch on resume)

A rerun with the same ``out`` and settings resumes: each curve's labelled set is rebuilt from the sentences its
points added, and work goes on after its last point. Ctrl-C stops within an L-BFGS iteration; finished points stay.
``workers > 1`` runs curves in parallel processes (crfsuite uses one core).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsner.atomic import atomic_write_text, output_kind, write_marker
from parsner.errors import ConfigError, InputError
from parsner.inference.selection import STRATEGIES, select

log = logging.getLogger(__name__)

KIND = "active-learning"
SETTINGS_FILE = "settings.json"
REFERENCE_FILE = "reference.json"
POINTS_FILE = "points.jsonl"
RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"
PLOT_FILE = "learning_curves.png"
WORK_DIR = "work"
DEFAULT_SIZES = (200, 400, 600, 800, 1000, 1400, 1800, 2200, 2600, 3000, 3500, 4000, 5000, 6000)
NORMALIZERS = ("parsbert", "parsbert-zwnj", "none")
#: The settings that do not change a point's numbers (a rerun may change them).
FREE_SETTINGS = ("workers",)
#: The command-line option of each setting, for messages.
OPTIONS = {"data": "--data", "strategies": "--strategies", "seeds": "--seeds", "seed_size": "--seed-size",
           "sizes": "--sizes", "max_iterations": "--max-iterations", "stop_after_target": "--stop-after-target",
           "workers": "--workers"}
#: Two-sided 95% quantiles of Student's t for 1 to 30 degrees of freedom.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@dataclass(frozen=True)
class SimulationConfig:
    """What :func:`run_simulation` does; every field but ``workers`` is recorded in ``settings.json``."""

    data: str | Path  # a dataset built by ``parsner data build`` with train (the pool) and test splits
    strategies: tuple[str, ...] = STRATEGIES
    seeds: tuple[int, ...] = (1, 2, 3)
    seed_size: int = 200  # sentences drawn at random before any strategy picks
    sizes: tuple[int, ...] = DEFAULT_SIZES  # labelled sentences at each point (the seed set is the first)
    max_iterations: int = 50  # L-BFGS iterations at most, per fit
    c1: float = 0.05
    c2: float = 0.05
    window: int = 2
    affix: int = 4
    normalizer: str = "parsbert"
    target_share: float = 0.95  # of the full-data F1
    stop_after_target: int = 2  # points a curve goes on for after it first reaches the target; 0: never stops
    workers: int = 1

    def settings(self) -> dict[str, Any]:
        """The settings a point's numbers depend on, as ``settings.json`` holds them."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in FREE_SETTINGS}
        out["data"] = str(Path(self.data).resolve())
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


@dataclass
class SimulationResult:
    out: Path
    full_f1: float
    target: float
    summary: dict[str, Any]
    report: str


@dataclass
class SimulationData:
    """The pool (train split) and the test split: normalised words and gold tags."""

    pool_words: list[list[str]]
    pool_tags: list[list[str]]
    test_words: list[list[str]]
    test_tags: list[list[str]]
    fingerprint: str


@dataclass
class _Context:
    """What every point needs, built once per process: the data and its crfsuite feature sequences."""

    cfg: SimulationConfig
    out: Path
    data: SimulationData
    pool_seqs: list[Any]
    test_seqs: list[Any]
    target: float | None = None


# ------------------------------------------------------------------------------------------------ settings


def _option(key: str) -> str:
    return f"{key} ({OPTIONS[key]})" if key in OPTIONS else key


def _whole(value: Any, key: str, least: int, most: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least or (most is not None and value > most):
        span = f"from {least} to {most}" if most is not None else f"of at least {least}"
        raise ConfigError(f"{_option(key)}: {value!r} is not a whole number {span}")


def check_config(cfg: SimulationConfig) -> None:
    """Every setting, before any work (:class:`ConfigError` naming it); the dataset is checked when loaded."""
    from parsner.data.wordfeatures import MAX_AFFIX, MAX_WINDOW

    if not cfg.strategies:
        raise ConfigError(f"{_option('strategies')}: give at least one of {', '.join(STRATEGIES)}")
    for s in cfg.strategies:
        if s not in STRATEGIES:
            raise ConfigError(f"{_option('strategies')}: unknown strategy {s!r} (choose from {', '.join(STRATEGIES)})")
    if len(set(cfg.strategies)) != len(cfg.strategies) or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError("strategies and seeds must each be named once")
    if not cfg.seeds:
        raise ConfigError(f"{_option('seeds')}: give at least one seed")
    for seed in cfg.seeds:
        _whole(seed, "seeds", 0)
    _whole(cfg.seed_size, "seed_size", 1)
    _check_sizes(cfg.sizes, cfg.seed_size)
    _whole(cfg.max_iterations, "max_iterations", 1)
    for key in ("c1", "c2"):
        value = getattr(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{key}: {value!r} is not a number of at least 0")
    _whole(cfg.window, "window", 0, MAX_WINDOW)
    _whole(cfg.affix, "affix", 0, MAX_AFFIX)
    if cfg.normalizer not in NORMALIZERS:
        raise ConfigError(f"normalizer: {cfg.normalizer!r} is not one of {', '.join(NORMALIZERS)}")
    share = cfg.target_share
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise ConfigError(f"target_share: {share!r} is not a share above 0 and at most 1")
    _whole(cfg.stop_after_target, "stop_after_target", 0)
    _whole(cfg.workers, "workers", 1)


def _check_sizes(sizes: Sequence[int], seed_size: int) -> None:
    if not sizes:
        raise ConfigError(f"{_option('sizes')}: give the labelled-set sizes, e.g. 200,400,800")
    for size in sizes:
        _whole(size, "sizes", 1)
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        raise ConfigError(f"{_option('sizes')}: {','.join(map(str, sizes))} does not increase")
    if sizes[0] < seed_size:
        raise ConfigError(f"{_option('sizes')}: {sizes[0]} is below the seed set's {seed_size} sentences "
                          f"({OPTIONS['seed_size']}); every size must be at least that")
    if sizes[-1] <= seed_size:
        raise ConfigError(f"{_option('sizes')}: give at least one size above the seed set's {seed_size} sentences")


def curve_sizes(cfg: SimulationConfig) -> list[int]:
    """The labelled-set size at each point of a curve: the seed set, then every larger size of the schedule."""
    return [cfg.seed_size, *(s for s in cfg.sizes if s > cfg.seed_size)]


def prepare_out(out: Path, cfg: SimulationConfig) -> bool:
    """Make ``out`` (marked as parsner's, with settings.json), or accept one made with the same settings; returns
    whether it existed. Any other folder, or one made with other settings, is refused naming the difference."""
    out_r, data_r = out.resolve(), Path(cfg.data).resolve()
    if out_r == data_r or data_r in out_r.parents or out_r in data_r.parents:
        raise ConfigError(f"--out {out}: the output must lie outside the dataset {cfg.data} and not hold it")
    settings = cfg.settings()
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a folder; choose a new --out")
        if output_kind(out) == KIND and (out / SETTINGS_FILE).is_file():
            _same_settings(out, settings)
            return True
        if output_kind(out) != KIND and any(out.iterdir()):
            raise ConfigError(f"--out {out} exists and is not an active-learning folder made by parsner; "
                              "choose a new --out")
        if (out / POINTS_FILE).exists():
            raise ConfigError(f"--out {out}: {POINTS_FILE} without {SETTINGS_FILE}; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, KIND)
    atomic_write_text(out / SETTINGS_FILE, json.dumps(settings, ensure_ascii=False, indent=2) + "\n")
    return False


def _same_settings(out: Path, settings: dict[str, Any]) -> None:
    path = out / SETTINGS_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(path, None, f"cannot be read ({exc}); choose a new --out") from None
    diffs = [f"{_option(k)} was {saved.get(k)!r}, now {v!r}" for k, v in settings.items() if saved.get(k) != v]
    if diffs:
        raise ConfigError(f"--out {out} was made with other settings: {'; '.join(diffs)}. Rerun with its settings "
                          f"to resume it (they are in {path}), or choose a new --out")


def _check_fingerprint(out: Path, fingerprint: str) -> None:
    """The data's fingerprint is recorded in settings.json at the first run; a rerun on changed data is refused."""
    path = out / SETTINGS_FILE
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("data_fingerprint") is None:
        saved["data_fingerprint"] = fingerprint
        atomic_write_text(path, json.dumps(saved, ensure_ascii=False, indent=2) + "\n")
    elif saved["data_fingerprint"] != fingerprint:
        raise ConfigError(f"--out {out}: the dataset {saved['data']} changed since this folder was made (its "
                          "sentences or tags differ); choose a new --out")


# ------------------------------------------------------------------------------------------------ data and model


def load_data(cfg: SimulationConfig) -> SimulationData:
    """The train split (the pool) and the test split, words normalised with ``cfg.normalizer``."""
    import hashlib

    from parsner.data.normalize import NormalizerConfig, PersianNormalizer
    from parsner.evaluation.evaluate import split_tags

    data = Path(cfg.data)
    if not data.is_dir():
        raise InputError(data, None, "no such dataset folder (build one with `parsner data build`)")
    if not (data / "dataset_dict.json").is_file():
        raise InputError(data, None, "not a dataset folder built by `parsner data build` (no dataset_dict.json)")
    splits = json.loads((data / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
    for split in ("train", "test"):
        if split not in splits:
            raise InputError(data, None, f"no {split} split (it has {', '.join(splits) or 'none'}): the simulation "
                                         "draws from train and scores on test")
    pool, test = split_tags(data, "train"), split_tags(data, "test")
    digest = hashlib.sha256(json.dumps([pool.tokens, pool.gold, test.tokens, test.gold], ensure_ascii=False)
                            .encode("utf-8")).hexdigest()
    norm = None if cfg.normalizer == "none" else PersianNormalizer(NormalizerConfig.preset(cfg.normalizer))

    def normalise(sentences: list[list[str]]) -> list[list[str]]:
        return [[norm.normalize_token(w) for w in s] if norm else list(s) for s in sentences]

    return SimulationData(normalise(pool.tokens), pool.gold, normalise(test.tokens), test.gold, digest)


def make_context(cfg: SimulationConfig, out: Path, data: SimulationData) -> _Context:
    """The crfsuite feature sequences of every pool and test sentence, computed once per process."""
    from parsner.data.wordfeatures import FeatureSpec, sentence_features
    from parsner.inference.crf_tagger import import_crfsuite

    pycrfsuite = import_crfsuite()
    spec = FeatureSpec(window=cfg.window, affix=cfg.affix)
    t0 = time.time()
    pool = [pycrfsuite.ItemSequence(sentence_features(w, spec)) for w in data.pool_words]
    test = [pycrfsuite.ItemSequence(sentence_features(w, spec)) for w in data.test_words]
    log.debug(f"features of {len(pool):,} pool and {len(test):,} test sentences in {time.time() - t0:.1f}s")
    return _Context(cfg, out, data, pool, test)


def fit_model(ctx: _Context, indices: Sequence[int], path: Path) -> float:
    """Train the plain CRF on the pool sentences ``indices`` (gold tags) into ``path`` (via a temporary name);
    returns the seconds it took. crfsuite's log lines are dropped, but each enters Python, so Ctrl-C stops it."""
    import pycrfsuite

    from parsner.training.crf_fit import crfsuite_params

    class Trainer(pycrfsuite.Trainer):
        def message(self, message: str) -> None:
            pass

    t0 = time.time()
    trainer = Trainer(verbose=False)
    for i in indices:
        if len(ctx.data.pool_words[i]):
            trainer.append(ctx.pool_seqs[i], ctx.data.pool_tags[i])
    trainer.set_params(crfsuite_params(ctx.cfg.c1, ctx.cfg.c2, ctx.cfg.max_iterations))
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        trainer.train(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return time.time() - t0


def _tagger(path: Path) -> Any:
    import pycrfsuite

    tagger = pycrfsuite.Tagger()
    tagger.open(str(path))
    return tagger


def score_test(ctx: _Context, path: Path) -> dict[str, float]:
    """Test scores of the model at ``path``: seqeval default precision, recall, F1, and strict F1."""
    from parsner.evaluation.metrics import score

    tagger = _tagger(path)
    try:
        pred = [list(tagger.tag(seq)) if len(seq) else [] for seq in ctx.test_seqs]
    finally:
        tagger.close()
    sc = score(ctx.data.test_tags, pred)
    return {"f1": float(sc["default"]["f1"]), "precision": float(sc["default"]["precision"]),
            "recall": float(sc["default"]["recall"]), "f1_strict": float(sc["strict"]["f1"])}


def word_marginals(ctx: _Context, path: Path, indices: Sequence[int]) -> list[list[float]]:
    """Per pool sentence of ``indices``, the marginal probability of each word's Viterbi tag."""
    tagger = _tagger(path)
    out: list[list[float]] = []
    try:
        for i in indices:
            seq = ctx.pool_seqs[i]
            if not len(seq):
                out.append([])
                continue
            tagger.set(seq)
            tags = tagger.tag()
            out.append([tagger.marginal(t, k) for k, t in enumerate(tags)])
    finally:
        tagger.close()
    return out


def seed_set(pool_size: int, size: int, seed: int) -> list[int]:
    """The ``size`` pool sentences every strategy starts from at ``seed`` (sorted indices)."""
    import numpy as np

    return sorted(int(i) for i in np.random.default_rng(seed).choice(pool_size, size=size, replace=False))


def reference(ctx: _Context) -> dict[str, Any]:
    """The full-data CRF's test scores and the target (reference.json; trained once, read on a rerun)."""
    path = ctx.out / REFERENCE_FILE
    if path.is_file():
        doc = json.loads(path.read_text(encoding="utf-8"))
        log.info(f"full-data reference read from {path}: test F1 {doc['f1']:.4f}, target {doc['target']:.4f}")
        return doc
    n = len(ctx.data.pool_words)
    log.info(f"full-data reference: training the CRF on all {n:,} pool sentences "
             f"({ctx.cfg.max_iterations} L-BFGS iterations at most)")
    model = ctx.out / WORK_DIR / "reference.crfsuite"
    fit_s = fit_model(ctx, range(n), model)
    t0 = time.time()
    scores = score_test(ctx, model)
    model.unlink()
    doc = {"sentences": n, "tokens": sum(map(len, ctx.data.pool_words)), **scores,
           "target": ctx.cfg.target_share * scores["f1"], "target_share": ctx.cfg.target_share,
           "fit_seconds": round(fit_s, 2), "score_seconds": round(time.time() - t0, 2)}
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    log.info(f"full-data reference: test F1 {doc['f1']:.4f} in {fit_s:.0f}s; target {doc['target']:.4f}")
    return doc


# ------------------------------------------------------------------------------------------------ points


def append_point(out: Path, point: dict[str, Any]) -> None:
    """One line of points.jsonl, written whole under a lock (curves may run in parallel), flushed and fsynced."""
    data = (json.dumps(point, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(out / POINTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        with _locked(fd):
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(fd: int, shared: bool = False) -> Any:
    try:
        import fcntl
    except ImportError:  # not POSIX: O_APPEND alone
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read_points(out: Path) -> list[dict[str, Any]]:
    """Every point of points.jsonl (an unreadable line is an :class:`InputError` naming it)."""
    path = out / POINTS_FILE
    if not path.is_file():
        return []
    with open(path, "rb") as f, _locked(f.fileno(), shared=True):  # no line of a parallel curve half-written
        text = f.read().decode("utf-8")
    points = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            point = json.loads(line)
            (point["strategy"], point["seed"], point["size"], point["f1"], point["added"])
        except (ValueError, KeyError, TypeError):
            why = "not a point of this simulation (edited or damaged); choose a new --out"
            raise InputError(path, n, why) from None
        points.append(point)
    return points


def repair_points(out: Path) -> None:
    """Drop a half-written last line (the process was killed while writing it): the next point would join it."""
    path = out / POINTS_FILE
    if not path.is_file():
        return
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        keep = raw.rfind(b"\n") + 1
        log.warning(f"{path}: dropping a half-written last line ({len(raw) - keep} bytes)")
        with open(path, "r+b") as f:
            f.truncate(keep)
            os.fsync(f.fileno())


def _stopped(f1s: Sequence[float], target: float | None, stop_after: int) -> bool:
    """Whether a curve with these F1s is done: ``stop_after`` points past its first one at or above ``target``."""
    if target is None or stop_after <= 0:
        return False
    first = next((i for i, f in enumerate(f1s) if f >= target), None)
    return first is not None and len(f1s) - 1 - first >= stop_after


# ------------------------------------------------------------------------------------------------ curves


def _model_path(ctx: _Context, strategy: str, seed: int, size: int) -> Path:
    return ctx.out / WORK_DIR / f"{strategy}-seed{seed}-n{size}.crfsuite"


def _curve_state(ctx: _Context, strategy: str, seed: int) -> tuple[list[dict[str, Any]], list[int]]:
    """The curve's points so far and the pool sentences they labelled, checked against the schedule."""
    points = sorted((p for p in read_points(ctx.out) if p["strategy"] == strategy and p["seed"] == seed),
                    key=lambda p: p["size"])
    labelled = [i for p in points for i in p["added"]]
    sizes = curve_sizes(ctx.cfg)
    if [p["size"] for p in points] != sizes[:len(points)] or (points and len(labelled) != points[-1]["size"]):
        raise InputError(ctx.out / POINTS_FILE, None, f"the points of {strategy} seed {seed} do not follow the "
                                                       "schedule (edited or damaged); choose a new --out")
    return points, labelled


def _pick(ctx: _Context, strategy: str, seed: int, labelled: list[int], size: int, model: Path | None) -> list[int]:
    """The pool sentences ``strategy`` adds to ``labelled`` to reach ``size``."""
    import numpy as np

    if not labelled:
        return seed_set(len(ctx.data.pool_words), size, seed)
    taken = set(labelled)
    unlabelled = [i for i in range(len(ctx.data.pool_words)) if i not in taken]
    k = size - len(labelled)
    if strategy == "random":
        chosen = select("random", unlabelled, k, rng=np.random.default_rng([seed, size]))
    else:
        assert model is not None
        scores = word_marginals(ctx, model, unlabelled)
        words = known = None
        if strategy == "diverse":
            words = [ctx.data.pool_words[i] for i in unlabelled]
            known = {w for i in labelled for w in ctx.data.pool_words[i]}
        chosen = select(strategy, unlabelled, k, word_scores=scores, words=words, known_words=known)
    return [unlabelled[p] for p in chosen]


def _ensure_model(ctx: _Context, strategy: str, seed: int, labelled: list[int]) -> Path | None:
    """The model of the curve's last point (retrained when a rerun finds it missing); None for ``random``."""
    if strategy == "random" or not labelled:
        return None
    path = _model_path(ctx, strategy, seed, len(labelled))
    if not path.is_file():
        log.info(f"{strategy} seed {seed}: retraining the model of {len(labelled)} sentences to pick the next batch")
        fit_model(ctx, labelled, path)
    return path


def _point(ctx: _Context, strategy: str, seed: int, labelled: list[int], size: int) -> dict[str, Any]:
    """Add sentences up to ``size``, retrain, score test: the new point (its model stays in work/ for the next)."""
    t0 = time.time()
    model = _ensure_model(ctx, strategy, seed, labelled)
    added = _pick(ctx, strategy, seed, labelled, size, model)
    select_s = time.time() - t0
    now = labelled + added
    new_model = _model_path(ctx, strategy, seed, size)
    fit_s = fit_model(ctx, now, new_model)
    t1 = time.time()
    scores = score_test(ctx, new_model)
    score_s = time.time() - t1
    if model is not None:
        model.unlink(missing_ok=True)
    if strategy == "random":
        new_model.unlink(missing_ok=True)
    return {"strategy": strategy, "seed": seed, "size": size, "tokens": sum(len(ctx.data.pool_words[i]) for i in now),
            **{k: round(v, 6) for k, v in scores.items()}, "seconds": round(time.time() - t0, 2),
            "select_seconds": round(select_s, 2), "fit_seconds": round(fit_s, 2), "score_seconds": round(score_s, 2),
            "added": added}


def run_curve(ctx: _Context, strategy: str, seed: int) -> int:
    """Run (or resume) the curve of ``strategy`` at ``seed``; returns the points it added."""
    points, labelled = _curve_state(ctx, strategy, seed)
    sizes = curve_sizes(ctx.cfg)
    todo = sizes[len(points):]
    spent, work_done, added = 0.0, 0, 0
    for n, size in enumerate(todo):
        if _stopped([p["f1"] for p in points], ctx.target, ctx.cfg.stop_after_target):
            break
        point = _point(ctx, strategy, seed, labelled, size)
        append_point(ctx.out, point)
        points.append(point)
        labelled = labelled + point["added"]
        added += 1
        spent, work_done = spent + point["seconds"], work_done + size
        eta = spent / work_done * sum(todo[n + 1:])
        log.info(f"{strategy} seed {seed}: {size:,} sentences ({point['tokens']:,} words), test F1 "
                 f"{point['f1']:.4f} in {point['seconds']:.0f}s (fit {point['fit_seconds']:.0f}s, selection "
                 f"{point['select_seconds']:.0f}s){f'; this curve at most ~{eta:.0f}s more' if todo[n + 1:] else ''}")
    for leftover in (ctx.out / WORK_DIR).glob(f"{strategy}-seed{seed}-n*.crfsuite"):
        leftover.unlink()  # the curve is done: nothing picks from its model again
    return added


_WORKER: dict[str, Any] = {}


def _worker_init(cfg: SimulationConfig, out: str, target: float, level: int | None) -> None:
    """A spawned worker: its own log handler, SIGINT left to the parent, the data and features once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if level is not None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("parsner active-learning: %(message)s"))
        log.addHandler(handler)
        log.setLevel(level)
    ctx = make_context(cfg, Path(out), load_data(cfg))
    ctx.target = target
    _WORKER["ctx"] = ctx


def _worker_curve(task: tuple[str, int]) -> tuple[str, int, int]:
    return task[0], task[1], run_curve(_WORKER["ctx"], *task)


def run_curves(ctx: _Context, tasks: list[tuple[str, int]], on_done: Callable[[], None]) -> None:
    """Every curve of ``tasks``, in this process or in ``cfg.workers`` spawned ones; ``on_done`` after each."""
    t0, total = time.time(), len(tasks)

    def done(k: int, strategy: str, seed: int) -> None:
        left = (time.time() - t0) / k * (total - k)
        log.info(f"curve {k}/{total} done ({strategy} seed {seed}) after {time.time() - t0:.0f}s"
                 + (f"; roughly {left / 60:.0f} min left" if k < total else ""))
        on_done()

    workers = min(ctx.cfg.workers, total)
    if workers <= 1:
        for k, (strategy, seed) in enumerate(tasks, 1):
            run_curve(ctx, strategy, seed)
            done(k, strategy, seed)
        return
    import multiprocessing

    level = log.getEffectiveLevel() if log.hasHandlers() else None
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(workers, initializer=_worker_init, initargs=(ctx.cfg, str(ctx.out), ctx.target, level)) as pool:
        for k, (strategy, seed, _) in enumerate(pool.imap_unordered(_worker_curve, tasks), 1):
            done(k, strategy, seed)


# ------------------------------------------------------------------------------------------------ summary


def t_quantile(df: int) -> float:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom (an expansion beyond 30)."""
    if df < 1:
        raise ValueError("a t-interval needs at least 2 values")
    if df <= len(T_975):
        return T_975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """``{"n", "mean", "sd", "ci"}``: sample sd and the 95% t-interval of the mean (None where n is too small)."""
    import numpy as np

    n = len(values)
    if not n:
        return {"n": 0, "mean": None, "sd": None, "ci": None}
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "sd": None, "ci": None}
    sd = float(arr.std(ddof=1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci": [mean - half, mean + half]}


def to_target(curve: Sequence[dict[str, Any]], target: float) -> tuple[float | None, float | None]:
    """(sentences, words) annotated when the curve first reaches ``target``, linearly interpolated between the
    points around the crossing (the first point's own size when it already reaches it); (None, None) if never."""
    prev = None
    for p in curve:
        if p["f1"] >= target:
            if prev is None:
                return float(p["size"]), float(p["tokens"])
            frac = (target - prev["f1"]) / (p["f1"] - prev["f1"])
            return (prev["size"] + frac * (p["size"] - prev["size"]),
                    prev["tokens"] + frac * (p["tokens"] - prev["tokens"]))
        prev = p
    return None, None


def _curves(points: Iterable[dict[str, Any]]) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """strategy -> seed -> points by size, strategies in :data:`STRATEGIES` order."""
    out: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for p in points:
        out.setdefault(p["strategy"], {}).setdefault(int(p["seed"]), []).append(p)
    order = {s: i for i, s in enumerate(STRATEGIES)}
    return {s: {seed: sorted(c, key=lambda p: p["size"]) for seed, c in sorted(out[s].items())}
            for s in sorted(out, key=lambda s: (order.get(s, len(order)), s))}


def _learning_rows(by_seed: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    import numpy as np

    sizes = sorted({p["size"] for c in by_seed.values() for p in c})
    rows = []
    for size in sizes:
        at = [p for c in by_seed.values() for p in c if p["size"] == size]
        f1 = np.array([p["f1"] for p in at])
        rows.append({"size": size, "n": len(at), "mean": float(f1.mean()),
                     "sd": float(f1.std(ddof=1)) if len(at) > 1 else None, "min": float(f1.min()),
                     "max": float(f1.max()), "tokens_mean": float(np.mean([p["tokens"] for p in at]))})
    return rows


def _picked_words(curve: Sequence[dict[str, Any]]) -> float | None:
    """Words per sentence among those the strategy picked (the seed set left out)."""
    if len(curve) < 2:
        return None
    first, last = curve[0], curve[-1]
    return (last["tokens"] - first["tokens"]) / (last["size"] - first["size"])


def summarise(points: Iterable[dict[str, Any]], full_f1: float, target: float) -> dict[str, Any]:
    """Learning curves and the annotation needed to reach ``target``, per strategy (see the module docstring).

    ``learning_curves[strategy]``: per size, n (seeds with that point), mean, sd, min, max of F1 and the mean words
    annotated. ``to_target[strategy]``: ``per_seed`` (sentences, words, words per picked sentence, the savings
    against random at that seed: 1 - strategy's / random's, paired), ``reached``/``seeds``, and for ``sentences``,
    ``words``, ``saving``, ``word_saving``: n, mean, sd and the 95% t-interval over the seeds that have them."""
    curves = _curves(points)
    random_at = {seed: to_target(c, target) for seed, c in curves.get("random", {}).items()}
    learning, reach = {}, {}
    for strategy, by_seed in curves.items():
        learning[strategy] = _learning_rows(by_seed)
        per_seed = {}
        for seed, curve in by_seed.items():
            n, words = to_target(curve, target)
            rn, rw = random_at.get(seed, (None, None))
            paired = strategy != "random" and None not in (n, rn)
            per_seed[str(seed)] = {"sentences": n, "words": words, "words_per_picked_sentence": _picked_words(curve),
                                   "last_size": curve[-1]["size"],
                                   "saving": 1 - n / rn if paired else None,
                                   "word_saving": 1 - words / rw if paired else None}
        values = {k: [v[k] for v in per_seed.values() if v[k] is not None]
                  for k in ("sentences", "words", "saving", "word_saving", "words_per_picked_sentence")}
        reach[strategy] = {"per_seed": per_seed, "seeds": len(per_seed), "reached": len(values["sentences"]),
                           **{k: mean_ci(v) for k, v in values.items()}}
    return {"full_f1": full_f1, "target": target, "learning_curves": learning, "to_target": reach}


# ------------------------------------------------------------------------------------------------ report


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _with_ci(stat: dict[str, Any], fmt: Callable[[float], str]) -> str:
    if stat["mean"] is None:
        return "–"
    ci = f" [{fmt(stat['ci'][0])}, {fmt(stat['ci'][1])}]" if stat["ci"] else ""
    return f"{fmt(stat['mean'])}{ci}"


def _curve_table(summary: dict[str, Any], seeds: int) -> list[str]:
    curves = summary["learning_curves"]
    sizes = sorted({r["size"] for rows in curves.values() for r in rows})
    lines = ["| sentences | " + " | ".join(curves) + " |", "|---:|" + "---:|" * len(curves)]
    for size in sizes:
        cells = []
        for rows in curves.values():
            r = next((r for r in rows if r["size"] == size), None)
            if r is None:
                cells.append("–")
                continue
            sd = f" ± {100 * r['sd']:.1f}" if r["sd"] is not None else ""
            cells.append(f"{_pct(r['mean'])}{sd}" + (f" (n={r['n']})" if r["n"] < seeds else ""))
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    return lines


def _target_table(summary: dict[str, Any]) -> list[str]:
    def whole(x: float) -> str:
        return f"{x:,.0f}"

    def share(x: float) -> str:
        return f"{100 * x:.0f}%"

    lines = ["| strategy | reached | sentences | words | saving in sentences | saving in words | words per picked "
             "sentence |", "|---|---:|---:|---:|---:|---:|---:|"]
    for strategy, t in summary["to_target"].items():
        wps = t["words_per_picked_sentence"]["mean"]
        lines.append(f"| {strategy} | {t['reached']}/{t['seeds']} | {_with_ci(t['sentences'], whole)} | "
                     f"{_with_ci(t['words'], whole)} | {_with_ci(t['saving'], share)} | "
                     f"{_with_ci(t['word_saving'], share)} | {'–' if wps is None else f'{wps:.1f}'} |")
    return lines


def _seed_table(summary: dict[str, Any]) -> list[str]:
    lines = ["| strategy | seed | sentences | words | saving in sentences | saving in words | last point |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for strategy, t in summary["to_target"].items():
        for seed, s in t["per_seed"].items():
            cells = [("–" if s[k] is None else f"{s[k]:,.0f}") for k in ("sentences", "words")]
            cells += [("–" if s[k] is None else f"{100 * s[k]:.0f}%") for k in ("saving", "word_saving")]
            lines.append(f"| {strategy} | {seed} | " + " | ".join(cells) + f" | {s['last_size']:,} |")
    return lines


def _words_note(summary: dict[str, Any], pool_words_per_sentence: float) -> str:
    """What the words annotated say beside the sentences: the honest cost when a strategy picks long sentences."""
    parts = []
    for strategy, t in summary["to_target"].items():
        wps = t["words_per_picked_sentence"]["mean"]
        if wps is not None:
            parts.append(f"{strategy} {wps:.1f}")
    note = (f"Sentences are not all the same work: the pool averages {pool_words_per_sentence:.1f} words a sentence; "
            f"the sentences each strategy picked (the seed set left out) averaged: {', '.join(parts) or 'n/a'}.")
    return note + (" A strategy that picks longer sentences saves less in words (what an annotator reads and tags) "
                   "than in sentences; the word columns are the fairer measure of annotation effort.")


def _machine() -> str:
    from parsner.envinfo import cpu_name, machine

    m = machine()
    return f"{cpu_name(m)}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), {m['platform']}"


def render_report(results: dict[str, Any]) -> str:
    """report.md from results.json's content."""
    s, summary, ref = results["settings"], results["summary"], results["reference"]
    seeds = len(s["seeds"])
    stops = (f"A curve stops {s['stop_after_target']} point(s) after it first reaches the target."
             if s["stop_after_target"] else "Every curve runs the whole schedule.")
    lines = [
        "# Active-learning simulation (feature CRF)", "",
        f"Pool: the train split of `{s['data']}` ({results['pool_sentences']:,} sentences); scored on its test split "
        f"({results['test_sentences']:,} sentences), seqeval default F1 (x100). Plain feature CRF (window "
        f"{s['window']}, affixes up to {s['affix']}, no clusters, no gazetteer; c1={s['c1']:g}, c2={s['c2']:g}, "
        f"{s['max_iterations']} L-BFGS iterations at most), normaliser {s['normalizer']}; seeds "
        f"{', '.join(map(str, s['seeds']))}; a seed set of {s['seed_size']} random sentences shared by all strategies "
        f"at a seed.", "",
        f"Full data ({ref['sentences']:,} sentences): F1 **{_pct(ref['f1'])}**; target = {s['target_share']:.0%} of it "
        f"= **{_pct(ref['target'])}**. {stops}", "",
        "## Learning curves", "", "Test F1, mean ± sd over seeds (n: seeds with that point, where fewer).", "",
        *_curve_table(summary, seeds), "",
        "## Annotation to reach the target", "",
        "Mean over the seeds that reached it, with the 95% t-interval over seeds; savings are paired against random "
        "at the same seed (1 - strategy's / random's), interpolated linearly at each curve's first crossing.", "",
        *_target_table(summary), "", _words_note(summary, results["pool_words_per_sentence"]), "",
        "Per seed:", "", *_seed_table(summary), "",
        f"Machine: {results['machine']}. The {results['points']} points took {results['point_seconds'] / 60:.0f} "
        f"min (summed over worker processes), the full-data fit {ref['fit_seconds']:.0f}s.", "",
    ]
    return "\n".join(lines)


def plot_curves(summary: dict[str, Any], path: Path, seeds: dict[str, int]) -> Path:
    """learning_curves.png: mean test F1 per strategy against sentences annotated (min..max band over seeds) and
    against words annotated (the mean over seeds), at the sizes every seed reached; the target and full F1 lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    by_sentences, by_words = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for strategy, rows in summary["learning_curves"].items():
        rows = [r for r in rows if r["n"] == seeds.get(strategy, r["n"])]
        xs, ys = [r["size"] for r in rows], [100 * r["mean"] for r in rows]
        colour = by_sentences.plot(xs, ys, "o-", markersize=3, label=strategy)[0].get_color()
        by_sentences.fill_between(xs, [100 * r["min"] for r in rows], [100 * r["max"] for r in rows], alpha=0.2,
                                  color=colour, linewidth=0)
        by_words.plot([r["tokens_mean"] for r in rows], ys, "o-", markersize=3, color=colour, label=strategy)
    for ax, what in ((by_sentences, "sentences annotated"), (by_words, "words annotated (mean over seeds)")):
        ax.axhline(100 * summary["target"], linestyle="--", color="gray", linewidth=1, label="target")
        ax.axhline(100 * summary["full_f1"], linestyle=":", color="black", linewidth=1, label="full data")
        ax.set_xlabel(what)
        ax.set_ylabel("test F1 (seqeval default)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    by_sentences.set_title("Mean over seeds; band: lowest to highest seed", fontsize=9)
    by_words.set_title("The same points against the words annotated", fontsize=9)
    fig.tight_layout()
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_outputs(out: Path, cfg: SimulationConfig, ref: dict[str, Any], data: SimulationData) -> SimulationResult:
    """results.json, report.md and learning_curves.png from the points so far (each written atomically)."""
    points = read_points(out)
    summary = summarise(points, ref["f1"], ref["target"])
    pool_words = sum(map(len, data.pool_words))
    results = {"settings": cfg.settings(), "reference": ref, "full_f1": ref["f1"], "target": ref["target"],
               "pool_sentences": len(data.pool_words), "test_sentences": len(data.test_words),
               "pool_words_per_sentence": pool_words / max(1, len(data.pool_words)), "points": len(points),
               "point_seconds": sum(p["seconds"] for p in points), "machine": _machine(), "summary": summary}
    atomic_write_text(out / RESULTS_FILE, json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    report = render_report(results)
    atomic_write_text(out / REPORT_FILE, report)
    seeds = {s: len(by_seed) for s, by_seed in _curves(points).items()}
    if points:
        plot_curves(summary, out / PLOT_FILE, seeds)
    return SimulationResult(out, ref["f1"], ref["target"], summary, report)


def run_simulation(cfg: SimulationConfig, out: str | Path) -> SimulationResult:
    """Run (or resume) the simulation into ``out`` and write its results (see the module docstring); a second run on
    the same ``out`` while one is going is refused (:class:`parsner.runlock.RunLocked`), as two would append the
    same points twice."""
    from parsner.runlock import RunLock

    check_config(cfg)
    out = Path(out)
    data = load_data(cfg)
    if cfg.sizes[-1] > len(data.pool_words):
        raise ConfigError(f"{_option('sizes')}: {cfg.sizes[-1]:,} is more than the pool's {len(data.pool_words):,} "
                          f"sentences (the train split of {cfg.data})")
    out.parent.mkdir(parents=True, exist_ok=True)
    with RunLock(out, what="an active-learning simulation"):
        return _run_locked(cfg, out, data)


def _run_locked(cfg: SimulationConfig, out: Path, data: SimulationData) -> SimulationResult:
    resumed = prepare_out(out, cfg)  # the first write: every check that needs no work came before
    _check_fingerprint(out, data.fingerprint)
    repair_points(out)
    (out / WORK_DIR).mkdir(exist_ok=True)
    for stale in (out / WORK_DIR).glob(".*.tmp-*"):
        stale.unlink()  # a fit that was stopped: its half-written model
    log.info(f"{'resuming' if resumed else 'starting'} in {out}: {len(cfg.strategies)} strategies x "
             f"{len(cfg.seeds)} seeds, sizes {', '.join(map(str, curve_sizes(cfg)))}; pool {len(data.pool_words):,}, "
             f"test {len(data.test_words):,} sentences")
    ctx = make_context(cfg, out, data)
    ref = reference(ctx)
    ctx.target = ref["target"]
    tasks = [(strategy, seed) for seed in cfg.seeds for strategy in cfg.strategies]
    run_curves(ctx, tasks, lambda: write_outputs(out, cfg, ref, data))
    result = write_outputs(out, cfg, ref, data)
    log.info(f"wrote {out / REPORT_FILE}, {out / RESULTS_FILE} and {out / PLOT_FILE}")
    return result
