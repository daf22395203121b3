"""Train a feature CRF (``model: crf``): no pretrained weights, no download, minutes on a CPU.

Stages, like :mod:`parsner.training.train`'s: prepare the run folders -> load and normalise the splits -> word
clusters from the run's own training words plus ``cluster_text`` (sentences that contain a test sentence of the
dataset are dropped first: :mod:`parsner.data.pretext`'s guard) -> a gazetteer from other corpora's names
(``gazetteer_data``, guarded the same way) -> features (:mod:`parsner.data.wordfeatures`) ->
L-BFGS training of a linear-chain CRF with python-crfsuite, L1 + L2 regularised (``crf_c1``, ``crf_c2``) ->
validation scores through the same :class:`~parsner.inference.tagger.Tagger` path as inference -> the run
directory, written atomically (``model.crfsuite``, ``crf.json``, ``normalizer.json``, ``parsner.json``, ...).

crfsuite's optimiser runs in C and cannot be stopped from Python, nor resumed from a checkpoint: it runs in a
child process, so Ctrl-C/SIGTERM stop it at once (exit 130/143, nothing published), and ``--resume`` restarts the
optimisation, reusing the word clusters already built in the work folder.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from parsner._version import __version__
from parsner.errors import ConfigError
from parsner.training.callbacks import FAULT_ENV
from parsner.training.config import RunConfig, dump_yaml
from parsner.training.jobs import RunDirs, TrainingInterrupted, start_work

CLUSTERS_CACHE = "clusters.json"
log = logging.getLogger(__name__)


def test_sentences(cfg: RunConfig, normalizer: Any) -> list[tuple[list[str], str]]:
    """The dataset's test sentences, normalised: what ``cluster_text`` and ``gazetteer_data`` are guarded against."""
    from parsner.data.pretext import guard_sentences

    return guard_sentences([str(cfg.data)], normalizer.normalize_token if normalizer is not None else None)


def word_clusters(cfg: RunConfig, train_words: list[list[str]], valid_words: list[list[str]], normalizer: Any,
                  work: Path, tests: list[tuple[list[str], str]]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """The cluster table and a report of the text it was learnt from (cached in ``work`` for --resume);
    ``cluster_text`` sentences holding one of ``tests`` (:func:`test_sentences`) are dropped."""
    from parsner.atomic import atomic_write_text
    from parsner.data.pretext import TextCorpus, apply_guard, read_texts
    from parsner.training.wordclusters import build_clusters

    if not cfg.cluster_sizes:
        return {}, {"sentences": 0}
    norm = normalizer.normalize_token if normalizer is not None else None
    extra = read_texts(list(cfg.cluster_text), norm) if cfg.cluster_text else TextCorpus()
    guard = apply_guard(extra, tests, "drop", cfg.cluster_overlap_min_words)
    sentences = [*train_words, *valid_words, *extra.sentences]
    key = {"fingerprint": TextCorpus(sentences).fingerprint(), "sizes": list(cfg.cluster_sizes), "seed": cfg.seed,
           "min_count": cfg.cluster_min_count}
    cache = work / CLUSTERS_CACHE
    if cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            log.info(f"word clusters reused from {cache}")
            return saved["table"], saved["report"]
    t0 = time.time()
    table = build_clusters(sentences, cfg.cluster_sizes, min_count=cfg.cluster_min_count, seed=cfg.seed)
    report = {"sentences": len(sentences), "words": sum(map(len, sentences)), "clustered_words": len(table),
              "sources": extra.sources, "test_guard": guard, "seconds": round(time.time() - t0, 1)}
    log.info(f"word clusters: {len(table):,} words from {report['words']:,} words of text "
             f"({guard.get('overlapping_sentences', 0)} sentence(s) holding a test sentence dropped) "
             f"in {report['seconds']:.0f}s")
    atomic_write_text(cache, json.dumps({"key": key, "table": table, "report": report}, ensure_ascii=False))
    return table, report


def check_inputs(cfg: RunConfig) -> None:
    """Every file the CRF will read besides the dataset, before any work starts."""
    from parsner.errors import InputError

    for key in ("cluster_text", "gazetteer_data"):
        for path in getattr(cfg, key):
            if not Path(path).exists():
                raise InputError(path, None, f"no such file (in {key}: give your copy's path with "
                                             f"--set {key}=[PATH,...], or --set {key}=[] to go without)")


def gazetteer(cfg: RunConfig, normalizer: Any,
              tests: list[tuple[list[str], str]]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Names from ``gazetteer_data`` (:mod:`parsner.training.gazetteer`), sentences holding one of ``tests`` dropped."""
    from parsner.training.gazetteer import build_gazetteer

    if not cfg.gazetteer_data:
        return {}, {"names": 0}
    norm = normalizer.normalize_token if normalizer is not None else None
    table, report = build_gazetteer(list(cfg.gazetteer_data), norm, tests,
                                    min_words=cfg.cluster_overlap_min_words, max_words=cfg.gazetteer_max_words)
    dropped = sum(src["dropped_holding_test"] for src in report["sources"])
    log.info(f"gazetteer: {len(table):,} names from {len(report['sources'])} file(s) "
             f"({dropped} sentence(s) holding a test sentence dropped)")
    return table, report


class _Progress:
    """Turns crfsuite's log into one line every ``every`` iterations (and the JSONL training log)."""

    def __init__(self, total: int, log_path: str, every: int) -> None:
        self.total, self.log_path, self.every, self.t0 = total, log_path, every, time.time()
        self.fault = _fault(os.environ.get(FAULT_ENV, ""))

    def iteration(self, info: dict[str, Any]) -> None:
        n = int(info.get("num", 0))
        if self.fault and self.fault[1] == n:  # the test hook: a real signal to the parsner process
            os.kill(os.getppid(), self.fault[0])
        row = {"event": "iteration", "iteration": n, "loss": info.get("loss"),
               "active_features": info.get("active_features"), "time": time.time()}
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if n == 1 or n % self.every == 0 or n == self.total:
            spent = time.time() - self.t0
            eta = spent / n * (self.total - n) if n else 0.0
            log.info(f"CRF iteration {n}/{self.total}: loss {info.get('loss', float('nan')):.1f}, "
                     f"{info.get('active_features', 0):,} active features, {spent:.0f}s (at most ~{eta:.0f}s left)")


def _fault(spec: str) -> tuple[int, int] | None:
    """``PARSNER_FAULT_INJECT=SIGTERM:7`` (the test hook of :mod:`parsner.training.callbacks`): at L-BFGS iteration 7
    the training process sends that signal to the parsner process, which stops as for an outside ``kill``."""
    if not spec:
        return None
    name, _, at = spec.partition(":")
    try:
        return int(signal.Signals[name.strip().upper()]), int(at)
    except (KeyError, ValueError):
        raise ConfigError(f"{FAULT_ENV}={spec!r}: expected SIGNAL:ITERATION, e.g. SIGTERM:7") from None


def _fit(words: list[list[str]], tags: list[list[str]], spec: dict[str, Any], params: dict[str, Any],
         model_path: str, log_path: str, every: int, log_level: int | None) -> None:
    """Child process: features for every training sentence, then crfsuite's L-BFGS; writes ``model_path``.

    A spawned process starts without the parent's logging set-up: its progress lines get a handler of their own,
    at the parent's level (``log_level``; None: the parent shows nothing)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it stops this process with SIGTERM
    if log_level is not None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("parsner train: %(message)s"))
        log.addHandler(handler)
        log.setLevel(log_level)
    import pycrfsuite

    from parsner.data.wordfeatures import FeatureSpec, sentence_features

    progress = _Progress(int(params["max_iterations"]), log_path, every)

    class Trainer(pycrfsuite.Trainer):
        def on_iteration(self, log: str, info: dict[str, Any]) -> None:
            progress.iteration(info)

        def on_start(self, log: str) -> None: ...
        def on_featgen_progress(self, log: str, percent: float) -> None: ...
        def on_featgen_end(self, log: str) -> None: ...
        def on_prepared(self, log: str) -> None: ...
        def on_prepare_error(self, text: str) -> None:
            log.error(text.rstrip())

        def on_optimization_end(self, log: str) -> None: ...
        def on_end(self, log: str) -> None: ...

    feature_spec = FeatureSpec.from_dict(spec)
    trainer = Trainer(verbose=True)  # verbose: crfsuite's messages reach the on_* hooks above
    for w, t in zip(words, tags, strict=True):
        trainer.append(sentence_features(w, feature_spec), t)
    trainer.set_params(params)
    trainer.train(model_path)


def crfsuite_params(c1: float, c2: float, max_iterations: int) -> dict[str, Any]:
    """crfsuite's L-BFGS settings for every feature CRF parsner trains: L1 + L2, transitions between every pair of
    tags (so Viterbi can score any sequence), every feature kept however rare (L1 prunes them instead)."""
    return {"c1": c1, "c2": c2, "max_iterations": max_iterations, "feature.possible_transitions": True,
            "feature.minfreq": 0}


def fit_crf(cfg: RunConfig, words: list[list[str]], tags: list[list[str]], spec: Any, work: Path) -> Path:
    """Train in a child process (see the module docstring); Ctrl-C/SIGTERM raise TrainingInterrupted."""
    from parsner.inference.crf_tagger import CRF_FILE

    _fault(os.environ.get(FAULT_ENV, ""))  # a malformed hook is said here, not in the child

    params = crfsuite_params(cfg.crf_c1, cfg.crf_c2, cfg.crf_max_iterations)
    model_path = work / CRF_FILE
    model_path.unlink(missing_ok=True)
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_fit, args=(words, tags, spec.to_dict(), params, str(model_path),
                                           str(work / "train_log.jsonl"), cfg.logging_steps,
                                           log.getEffectiveLevel() if log.hasHandlers() else None), daemon=True)
    stop: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        stop.append(signum)
        child.terminate()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        child.start()
        child.join()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if stop:
        raise TrainingInterrupted(stop[0], work, None)
    if child.exitcode != 0 or not model_path.is_file():
        raise RuntimeError(f"the CRF training process failed (exit code {child.exitcode}); see its messages above")
    return model_path


def validation_metrics(model_dir: Path, words: list[list[str]], gold: list[list[str]],
                       calibrate: bool = False) -> Any:
    """Validation scores of the trained CRF, tagged through the Tagger as at inference (``f1_strict``, ...); with
    ``calibrate``, ``(scores, calibrator)``: entity scores calibrated on the same tags
    (:func:`parsner.evaluation.calibration.fit_from_predictions`; None without predicted entities)."""
    from parsner.evaluation import metrics
    from parsner.inference.crf_tagger import CrfRunner
    from parsner.inference.tagger import Tagger

    labels = sorted({t for s in gold for t in s} | {"O"})
    runner = CrfRunner(model_dir, labels)
    tagger = Tagger(runner, None, None, meta={"model_name": str(model_dir)})
    pred, word_scores = tagger.predict_words(words, return_scores=True)
    sc = metrics.score(gold, pred)
    out = {f"{k}_{mode}": float(sc[mode][k]) for mode in ("strict", "default") for k in ("precision", "recall", "f1")}
    out["token_accuracy"] = float(sc["token_accuracy"])
    if not calibrate:
        return out
    from parsner.evaluation.calibration import fit_from_predictions

    return out, fit_from_predictions(gold, pred, word_scores)


def train_crf(cfg: RunConfig, data: Any, dirs: RunDirs, *, overwrite: bool) -> dict[str, Any]:
    """Train, validate and publish a CRF run from normalised ``data`` (a ``TrainingData``) in the run folders
    ``dirs`` (:func:`parsner.training.jobs.open_run`, the work folder started); returns its numbers."""
    from parsner.data.wordfeatures import FeatureSpec
    from parsner.inference.crf_tagger import FEATURES_FILE, import_crfsuite

    import_crfsuite()  # a missing extra is said before any work
    t0 = time.time()
    start_work(dirs, {"run_config.yaml": dump_yaml(cfg)})
    work = dirs.work
    dirs.log_path.write_text("", encoding="utf-8")  # crfsuite starts over, so does its log
    tests = test_sentences(cfg, data.normalizer)
    clusters, cluster_report = word_clusters(cfg, data.train_words, data.valid_words, data.normalizer, work, tests)
    names_table, gazetteer_report = gazetteer(cfg, data.normalizer, tests)
    spec = FeatureSpec(window=cfg.crf_window, affix=cfg.crf_affix, clusters=clusters, gazetteer=names_table)
    (work / FEATURES_FILE).write_text(json.dumps(spec.to_dict(), ensure_ascii=False), encoding="utf-8")
    names = data.names
    tags = [[names[i] for i in row] for row in data.train["ner_tags"]]
    gold = [[names[i] for i in row] for row in data.valid["ner_tags"]]
    words = list(data.train_words)
    if cfg.crf_train_on_validation:
        words, tags = words + list(data.valid_words), tags + gold
    log.info(f"CRF: {len(tags):,} training sentences{' (train+validation)' * cfg.crf_train_on_validation}, "
             f"{cfg.crf_max_iterations} L-BFGS iterations at most (c1={cfg.crf_c1:g}, c2={cfg.crf_c2:g}, "
             f"window {cfg.crf_window}, affixes up to {cfg.crf_affix}, {len(names_table):,} gazetteer names)")
    t_fit = time.time()
    calibrator = holdout_calibration(cfg, data, tags[:len(data.train_words)], gold, spec, dirs)
    fit_crf(cfg, words, tags, spec, work)
    fit_seconds = time.time() - t_fit
    # Calibrated on validation sentences the CRF did not train on (holdout_calibration's when it trained on them).
    if cfg.crf_calibrate and not cfg.crf_train_on_validation:
        scores, calibrator = validation_metrics(work, data.valid_words, gold, calibrate=True)
    else:
        scores = validation_metrics(work, data.valid_words, gold)
    iterations = _iterations(work / "train_log.jsonl")
    doc = {"split": "validation", "dataset": str(cfg.data), "selection_metric": None, "metrics": scores,
           "model_type": "feature-crf", "train_runtime_s": round(fit_seconds, 1),
           "total_runtime_s": round(time.time() - t0, 1), "iterations": iterations,
           "train_sentences": len(tags), "validation_seen_in_training": cfg.crf_train_on_validation,
           "word_clusters": cluster_report, "gazetteer": gazetteer_report, "stand_in": None,
           "calibration": calibration_record(calibrator, cfg)}
    _publish(cfg, data, dirs, doc, overwrite=overwrite, calibrator=calibrator)
    seen = " on sentences it trained on" if cfg.crf_train_on_validation else ""
    log.info(f"done in {time.time() - t0:.0f}s: {dirs.final} (validation{seen} f1_strict={scores['f1_strict']:.4f}, "
             f"f1_default={scores['f1_default']:.4f})")
    return doc


def holdout_calibration(cfg: RunConfig, data: Any, train_tags: list[list[str]], gold: list[list[str]], spec: Any,
                        dirs: RunDirs) -> Any:
    """With ``crf_train_on_validation`` (and ``crf_calibrate``): a first CRF on the training split alone, its entity
    scores calibrated on the validation split it never saw; the published CRF (train+validation) keeps that map.

    Calibrating the published CRF on validation would fit its scores on sentences it trained on, where it is right
    far more often than on new text. The map of a CRF trained on 90% of the data is a close, slightly modest stand-in
    (measured on the test split: eval/RESULTS.md section 15). None when not asked for or nothing was predicted."""
    if not (cfg.crf_calibrate and cfg.crf_train_on_validation):
        return None
    log.info(f"calibration: a first CRF on the {len(train_tags):,} training sentences alone, its entity scores "
             "calibrated on the validation split it does not see")
    fit_crf(cfg, list(data.train_words), train_tags, spec, dirs.work)
    scores, calibrator = validation_metrics(dirs.work, data.valid_words, gold, calibrate=True)
    dirs.log_path.write_text("", encoding="utf-8")  # train_log.jsonl keeps the published CRF's iterations
    if calibrator is not None:
        calibrator.info.update(model="a CRF trained on the training split alone, with the same settings",
                               model_f1_strict=scores["f1_strict"])
    return calibrator


def _iterations(log: Path) -> int:
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    return max((int(r.get("iteration", 0)) for r in rows), default=0)


def calibration_record(calibrator: Any, cfg: RunConfig) -> dict[str, Any]:
    """What metrics.json says of the run's calibration.json (or why there is none)."""
    if calibrator is not None:
        return {"file": "calibration.json", **calibrator.info}
    why = ("crf_calibrate is off" if not cfg.crf_calibrate
           else "no entity was predicted on the validation split")
    return {"file": None, "why": f"entity scores are raw: {why}"}


def _publish(cfg: RunConfig, data: Any, dirs: RunDirs, doc: dict[str, Any], *, overwrite: bool,
             calibrator: Any = None) -> None:
    """The finished run directory (:func:`parsner.training.jobs.publish`)."""
    from parsner.atomic import file_sha256
    from parsner.data.licence import combine, dataset_terms
    from parsner.inference.crf_tagger import CRF_FILE, FEATURES_FILE, SHA256_KEY
    from parsner.inference.runmeta import RunMeta
    from parsner.training.jobs import publish
    from parsner.training.model_card import render_model_card

    meta = RunMeta(parsner_version=__version__, max_length=None, stride=None, constrained_decoding=False,
                   label_scheme="IOB2", labels=list(data.names), normalizer=cfg.normalizer, base_model="crf",
                   extra={"model_type": "feature-crf", SHA256_KEY: file_sha256(dirs.work / CRF_FILE),
                          "license": combine(dataset_terms(str(cfg.data)))})
    with publish(dirs, kind="run", overwrite=overwrite) as tmp:
        for name in (CRF_FILE, FEATURES_FILE):
            shutil.copyfile(dirs.work / name, tmp / name)
        if data.normalizer is not None:
            data.normalizer.save(tmp)
        meta.save(tmp)
        if calibrator is not None:
            calibrator.save(tmp)
        (tmp / "run_config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", "utf-8")
        card = render_model_card(cfg=cfg, meta=meta.to_dict(), metrics=doc, dataset_name=data.data_name)
        (tmp / "README.md").write_text(card, encoding="utf-8")
