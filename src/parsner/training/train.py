"""Fine-tune a token classifier on a dataset built by ``parsner data build``: ``train(config) -> RunResult``.

Engine: the transformers ``Trainer`` (checkpoints, resume with RNG states, DDP through accelerate,
early stopping, best-model selection), as :class:`parsner.training.trainer.ParsnerTrainer` runs it, under the job
runner of :mod:`parsner.training.jobs`. :func:`train` is a
short sequence of stages: prepare the run folders -> load the splits -> encode them (:class:`EncodedSplits`)
-> training arguments -> the trainer -> fit -> write the run directory.

* **Words first.** Tokens are normalised with ``PersianNormalizer`` (``normalizer.json`` is saved with the
  model), then encoded by :mod:`parsner.data.align` (first sub-token labels, zero-sub-token words, windows
  for long sentences: nothing is truncated). Metrics are computed on words, from the window that labels
  each word, with seqeval in both modes (:func:`parsner.evaluation.metrics.score`).
* **Selection metric:** validation entity F1 of seqeval in *strict IOB2* mode (``f1_strict``;
  ``selection_metric: f1_default`` for the conlleval-like score). Both are logged at every evaluation.
* **Speed on CPU.** Dynamic padding (:class:`parsner.training.batching.PadCollator`) and length-bucketed batches from
  a sampler whose order depends only on (seed, epoch) (:class:`parsner.training.batching.LengthBucketSampler`: a run
  resumed mid-epoch sees the same batches, and all DDP ranks agree); validation windows sorted by length.
  The optimiser is the Trainer's AdamW.
* **Atomic run directory** (:mod:`parsner.training.jobs`, shared by every job). Training happens in
  ``<out>.incomplete/`` (``checkpoints/``, ``train_log.jsonl``, ``run_config.yaml``, ``data_fingerprint.json``:
  what ``--resume`` checks, :mod:`parsner.training.checkpoints`); the final directory ``<out>`` is written in a
  temporary folder and renamed into place at the very end. So ``<out>`` exists only when complete. ``--resume``
  continues from the last complete checkpoint.
* **Exact resume.** The batch order depends only on (seed, epoch) and torch is reseeded from
  (seed, step, rank) before every optimiser step, so a run resumed from any checkpoint (also one saved
  mid-epoch by a signal) ends with the same weights and metrics as an uninterrupted run on CPU.
* **Signals.** SIGINT (Ctrl-C) and SIGTERM make the run save a checkpoint at the end of the current
  optimiser step and stop; :class:`~parsner.training.jobs.TrainingInterrupted` carries the exit code
  (130 / 143). A second Ctrl-C stops at once. Under DDP the stop flag is agreed on by all ranks at every step.
* **Non-finite training** (loss, gradients or final weights) stops with
  :class:`~parsner.training.jobs.TrainingDiverged`; the last good checkpoint is kept and nothing is saved as a
  finished run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsner._version import __version__
from parsner.errors import ConfigError, InputError
from parsner.training import jobs
from parsner.training.batching import PadCollator
from parsner.training.callbacks import FAULT_ENV
from parsner.training.checkpoints import (
    FINGERPRINT_FILE,
    check_checkpoint_tokenizer,
    check_fingerprint,
    check_saved_config,
    data_fingerprint,
)
from parsner.training.config import RunConfig, dump_yaml
from parsner.training.jobs import RunDirs, check_finite_weights

log = logging.getLogger(__name__)

__all__ = [
    "FAULT_ENV", "FINGERPRINT_FILE", "EncodedSplits", "RunResult", "encode_splits", "run_training", "train",
]


@dataclass
class RunResult:
    out_dir: Path
    metrics: dict[str, Any]  # validation metrics of the selected checkpoint
    stand_in: str | None
    encoding: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    train_samples_per_second: float = 0.0
    resumed_from: str | None = None
    epochs: float = 0.0  # epochs actually trained (early stopping may end sooner)
    steps: int = 0  # optimiser steps


# ----------------------------------------------------------------------------------------- data


def load_splits(cfg: RunConfig) -> tuple[Any, Any, list[str], str]:
    """(train, validation, label names, dataset name) with the checks of the bad-input matrix."""
    from parsner.data.dataset import load_dataset_dir

    if not cfg.data:
        raise ConfigError("no dataset: give --data DIR (built by `parsner data build`) or `data:` in the config")
    data_dir = Path(cfg.data)
    dd = load_dataset_dir(data_dir)
    if "train" not in dd:
        raise InputError(data_dir, None, f"the dataset has no train split (splits: {', '.join(dd) or 'none'})")
    train = dd["train"]
    if len(train) == 0:
        raise InputError(data_dir, None, "the train split is empty: nothing to train on")
    for col in ("tokens", "ner_tags"):
        if col not in train.column_names:
            raise InputError(data_dir, None, f"the train split has no {col!r} column")
    feature = train.features["ner_tags"].feature
    names = list(getattr(feature, "names", []) or [])
    if not names:
        raise InputError(data_dir, None, "ner_tags is not a sequence of ClassLabel (no label names)")
    if "validation" in dd and len(dd["validation"]) > 0:
        valid = dd["validation"]
    elif cfg.validation_fraction > 0:
        n_valid = math.ceil(cfg.validation_fraction * len(train))
        if len(train) - n_valid < 1:
            raise InputError(
                data_dir, None,
                f"the train split has {len(train)} sentence(s): too few to carve a validation split "
                f"(validation_fraction {cfg.validation_fraction:g}); add data or build a validation split",
            )
        parts = train.train_test_split(test_size=cfg.validation_fraction, seed=cfg.seed, shuffle=True)
        train, valid = parts["train"], parts["test"]
        log.info(f"no validation split: using {len(valid)} training sentences (validation_fraction)")
    else:
        raise InputError(
            data_dir, None,
            "the dataset has no validation split (needed for early stopping and model selection); "
            "rebuild it with a validation split or set validation_fraction: 0.1",
        )
    if cfg.max_train_samples:
        train = train.select(range(min(cfg.max_train_samples, len(train))))
    if cfg.max_eval_samples:
        valid = valid.select(range(min(cfg.max_eval_samples, len(valid))))
    return train, valid, names, data_dir.resolve().name


def make_normalizer(cfg: RunConfig) -> Any:
    """The run's text normaliser (None for ``normalizer: none``), saved with the model as normalizer.json."""
    if cfg.normalizer == "none":
        return None
    from parsner.data.normalize import NormalizerConfig, PersianNormalizer

    return PersianNormalizer(NormalizerConfig.preset(cfg.normalizer))


def _normalise(tokens: list[list[str]], normalizer: Any) -> list[list[str]]:
    if normalizer is None:
        return [list(s) for s in tokens]
    return [[normalizer.normalize_token(t) for t in s] for s in tokens]


@dataclass
class TrainingData:
    """The splits a run trains and validates on, with their normalised words."""

    train: Any
    valid: Any
    names: list[str]  # the dataset's label names, in its ClassLabel order
    data_name: str
    fingerprint: dict[str, Any]
    normalizer: Any
    train_words: list[list[str]]
    valid_words: list[list[str]]


def load_training_data(cfg: RunConfig, resume_from: str | None, work: Path) -> TrainingData:
    train, valid, names, data_name = load_splits(cfg)
    fingerprint = data_fingerprint(cfg, train, valid, names)
    if resume_from:
        check_fingerprint(work, fingerprint)
    normalizer = make_normalizer(cfg)
    return TrainingData(train, valid, names, data_name, fingerprint, normalizer,
                        _normalise(train["tokens"], normalizer), _normalise(valid["tokens"], normalizer))


@dataclass
class EncodedSplits:
    """Both splits as model windows, in the model's label order.

    ``label_names`` is the head's label order (the dataset's, or that of a checkpoint's existing head);
    ``remap[i]`` is the head id of dataset label ``i``. ``eval_windows`` are the validation windows sorted by
    length (the order the Trainer sees them in), ``valid_gold`` the validation tags by name.
    """

    label_names: list[str]
    remap: list[int]
    train: Any  # align.Encoding
    valid: Any  # align.Encoding
    eval_windows: list[Any]
    valid_gold: list[list[str]]
    max_length: int

    def summary(self) -> dict[str, Any]:
        return {"train": self.train.summary(), "validation": self.valid.summary()}

    def datasets(self) -> tuple[Any, Any]:
        """``(train, validation)`` as HF Datasets of input ids and labels (first sub-tokens only, so the
        validation loss is per word)."""
        from datasets import Dataset

        def as_dataset(windows: list[Any]) -> Any:
            return Dataset.from_dict({"input_ids": [w.input_ids for w in windows],
                                      "labels": [w.labels for w in windows]})

        return as_dataset(self.train.windows), as_dataset(self.eval_windows)


def head_labels(cfg: RunConfig, spec: Any, names: list[str]) -> list[str]:
    """The head's label order: the dataset's, or that of the checkpoint's head when it is kept."""
    from parsner.inference import modeling

    existing = None if cfg.reinit_classifier else modeling.existing_label_names(spec)
    if existing is None:
        return list(names)
    modeling.check_head_knows(cfg.model, existing, names)
    return list(existing)


def encode_splits(cfg: RunConfig, data: TrainingData, tokenizer: Any, label_names: list[str]) -> EncodedSplits:
    from parsner.data import align

    remap = [label_names.index(n) for n in data.names]
    max_length = min(cfg.max_length, int(getattr(tokenizer, "model_max_length", cfg.max_length)))
    train_labels = [[remap[t] for t in s] for s in data.train["ner_tags"]]
    valid_labels = [[remap[t] for t in s] for s in data.valid["ner_tags"]]
    enc_train = align.encode_words(
        data.train_words, tokenizer, train_labels, max_length=max_length, stride=cfg.stride,
        label_all_subtokens=cfg.label_all_subtokens, label_names=label_names,
    )
    enc_valid = align.encode_words(data.valid_words, tokenizer, valid_labels, max_length=max_length,
                                   stride=cfg.stride)
    eval_windows = sorted(enc_valid.windows, key=lambda w: len(w.input_ids))
    valid_gold = [[data.names[t] for t in s] for s in data.valid["ner_tags"]]
    enc = EncodedSplits(label_names, remap, enc_train, enc_valid, eval_windows, valid_gold, max_length)
    for split, s in enc.summary().items():
        log.info(
            f"{split}: {s['sentences']} sentences, {s['windows']} windows, "
            f"{s['windowed_sentences']} sentences split into windows (max_length={max_length}, "
            f"stride={cfg.stride}), {s['zero_subtoken_words']} zero-sub-token words as [UNK]"
        )
    return enc


def validation_scorer(cfg: RunConfig, enc: EncodedSplits) -> Any:
    """``compute_metrics`` for the Trainer: decode the validation words like inference does, score with seqeval."""
    from parsner.evaluation import metrics
    from parsner.inference.decoding import decode_words

    def compute_metrics(pred: Any) -> dict[str, float]:
        decoded = decode_words(enc.eval_windows, list(pred.predictions), enc.valid.word_counts, enc.label_names,
                               constrained=cfg.constrained_decoding)
        tags = [[enc.label_names[i] for i in d.label_ids] for d in decoded]
        sc = metrics.score(enc.valid_gold, tags)
        out = {f"{k}_{mode}": float(sc[mode][k])
               for mode in ("strict", "default") for k in ("precision", "recall", "f1")}
        out["token_accuracy"] = float(sc["token_accuracy"])
        return out

    return compute_metrics


# ----------------------------------------------------------------------------------------- the run


def _precision(cfg: RunConfig) -> tuple[bool, bool]:
    import torch

    if cfg.precision in ("fp16", "bf16") and not torch.cuda.is_available():
        raise ConfigError(f"precision: {cfg.precision} needs a GPU; use fp32 or auto on CPU")
    if cfg.precision == "fp16":
        return True, False
    if cfg.precision == "bf16":
        return False, True
    if cfg.precision == "auto" and torch.cuda.is_available():
        return (False, True) if torch.cuda.is_bf16_supported() else (True, False)
    return False, False


def run_job(cfg: RunConfig) -> jobs.Job:
    """What the job runner needs to know of a training run."""
    model_dir = cfg.model if Path(cfg.model).exists() else None
    return jobs.Job(cfg.out_dir, "run", [cfg.data, model_dir], "a training run")


def train(cfg: RunConfig, *, resume: bool = False, overwrite: bool = False) -> RunResult:
    """Train according to ``cfg``; returns the final directory and the validation metrics.

    The run directory is locked for the whole run (:mod:`parsner.runlock`): a second training on the same
    ``--out`` stops at once, whatever its options.
    """
    body = _train_crf if cfg.model.strip() == "crf" else _train
    return jobs.locked(run_job(cfg), lambda: body(cfg, resume=resume, overwrite=overwrite), resume=resume,
                       overwrite=overwrite)


def _train_crf(cfg: RunConfig, *, resume: bool, overwrite: bool) -> RunResult:
    """A feature CRF (:mod:`parsner.training.crf_fit`): same folders, data checks and normalisation as a network."""
    from parsner.training.crf_fit import check_inputs, train_crf

    check_inputs(cfg)
    dirs = prepare_run(cfg, resume=resume, overwrite=overwrite)
    if resume:
        log.info("--resume: a CRF's optimisation cannot continue mid-way; it starts over (word clusters are reused)")
    data = load_training_data(cfg, None, dirs.work)
    doc = train_crf(cfg, data, dirs, overwrite=overwrite)
    return RunResult(out_dir=dirs.final, metrics=doc["metrics"], stand_in=None, resumed_from=None,
                     train_seconds=doc["train_runtime_s"], steps=doc["iterations"])


def prepare_run(cfg: RunConfig, *, resume: bool, overwrite: bool) -> RunDirs:
    """Refuse to clobber (again: now under the lock) and find the checkpoint to resume from."""
    return jobs.open_run(run_job(cfg), resume=resume, overwrite=overwrite,
                         check_saved=lambda work: check_saved_config(work, cfg))


def fine_tuning_arguments(cfg: RunConfig, n_train_windows: int, ckpt_dir: Path) -> Any:
    """The Trainer's arguments: the config's recipe, checkpoints in ``ckpt_dir``, CPU or GPU as available."""
    import torch

    fp16, bf16 = _precision(cfg)
    on_gpu = torch.cuda.is_available()
    distributed_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not on_gpu
    evaluating = cfg.eval_strategy != "no"
    return jobs.training_arguments(
        cfg, ckpt_dir, n_train_windows, per_device_eval_batch_size=cfg.eval_batch_size,
        eval_strategy=cfg.eval_strategy, save_strategy=cfg.eval_strategy, eval_steps=cfg.eval_steps,
        save_steps=cfg.eval_steps, load_best_model_at_end=evaluating,
        metric_for_best_model=cfg.selection_metric if evaluating else None, greater_is_better=True,
        fp16=fp16, bf16=bf16, dataloader_num_workers=cfg.dataloader_workers, ddp_find_unused_parameters=False,
        ddp_backend="gloo" if distributed_cpu else None,
    )


def make_trainer(cfg: RunConfig, model: Any, tokenizer: Any, enc: EncodedSplits, args: Any,
                 dirs: RunDirs) -> tuple[Any, jobs.SignalStopper]:
    from parsner.training.trainer import ParsnerTrainer, keep_log_probs

    patience = cfg.early_stopping_patience if cfg.eval_strategy != "no" else 0
    callbacks, stopper = jobs.job_callbacks(dirs, early_stopping_patience=patience)
    train_data, eval_data = enc.datasets()
    trainer = ParsnerTrainer(
        model=model, args=args, train_dataset=train_data, eval_dataset=eval_data, processing_class=tokenizer,
        data_collator=PadCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        compute_metrics=validation_scorer(cfg, enc), preprocess_logits_for_metrics=keep_log_probs,
        callbacks=callbacks,
        window_lengths=[len(w.input_ids) for w in enc.train.windows] if cfg.group_by_length else None,
    )
    return trainer, stopper


def _train(cfg: RunConfig, *, resume: bool, overwrite: bool) -> RunResult:
    import torch
    import transformers

    from parsner.inference import hub, modeling

    t_start = time.time()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    dirs = prepare_run(cfg, resume=resume, overwrite=overwrite)
    spec = hub.parse_spec(cfg.model)
    data = load_training_data(cfg, dirs.resume_from, dirs.work)
    tokenizer = modeling.load_tokenizer(spec, train_words=data.train_words, tiny_options=cfg.tiny_options)
    if dirs.resume_from:
        check_checkpoint_tokenizer(dirs.resume_from, tokenizer)
    enc = encode_splits(cfg, data, tokenizer, head_labels(cfg, spec, data.names))
    if spec.stand_in:
        log.info(f"MODEL IS A STAND-IN: {spec.stand_in}")
    transformers.set_seed(cfg.seed)
    model = modeling.load_model(spec, enc.label_names, tokenizer, tiny_options=cfg.tiny_options,
                                reinit_classifier=cfg.reinit_classifier)
    with jobs.cpu_float_mode():
        args = fine_tuning_arguments(cfg, len(enc.train.windows), dirs.ckpt_dir)
        fingerprint = json.dumps(data.fingerprint, ensure_ascii=False, indent=1) + "\n"
        jobs.start_work(dirs, {"run_config.yaml": dump_yaml(cfg), FINGERPRINT_FILE: fingerprint}, args)
        trainer, stopper = make_trainer(cfg, model, tokenizer, enc, args, dirs)
        output = jobs.fit(trainer, stopper, cfg, dirs)
        result = _result(cfg, spec, trainer, output, enc, dirs.resume_from)
    if jobs.is_main_process():
        _write_run(cfg, spec, trainer, tokenizer, data, enc, result, dirs, overwrite=overwrite)
        log.info(f"done in {time.time() - t_start:.0f}s: {dirs.final} (validation f1_strict="
                 f"{result.metrics.get('f1_strict', float('nan')):.4f}, f1_default="
                 f"{result.metrics.get('f1_default', float('nan')):.4f})")
        if spec.stand_in:
            log.info(f"reminder: {spec.stand_in}")
    trainer.accelerator.wait_for_everyone()
    return result


def _result(cfg: RunConfig, spec: Any, trainer: Any, output: Any, enc: EncodedSplits,
            resume_from: str | None) -> RunResult:
    """Validation metrics of the selected checkpoint (the best one is loaded at the end) and the run's numbers."""
    final_metrics = trainer.evaluate()
    trainer.accelerator.wait_for_everyone()
    metrics = {k.removeprefix("eval_"): (None if isinstance(v, float) and not math.isfinite(v) else v)
               for k, v in final_metrics.items()}
    return RunResult(
        out_dir=cfg.out_dir, metrics=metrics, stand_in=spec.stand_in, encoding=enc.summary(),
        train_seconds=float(output.metrics.get("train_runtime", 0.0)),
        train_samples_per_second=float(output.metrics.get("train_samples_per_second", 0.0)),
        resumed_from=resume_from, epochs=float(trainer.state.epoch or 0.0), steps=int(trainer.state.global_step),
    )


def _write_run(cfg: RunConfig, spec: Any, trainer: Any, tokenizer: Any, data: TrainingData, enc: EncodedSplits,
               result: RunResult, dirs: RunDirs, *, overwrite: bool) -> None:
    """The finished run directory (:func:`parsner.training.jobs.publish`)."""
    from parsner.data.licence import base_model_terms, combine, dataset_terms
    from parsner.inference.runmeta import RunMeta
    from parsner.training.model_card import render_model_card

    model = trainer.accelerator.unwrap_model(trainer.model)
    meta = RunMeta(
        parsner_version=__version__, max_length=enc.max_length, stride=cfg.stride,
        constrained_decoding=cfg.constrained_decoding, label_scheme="IOB2", labels=enc.label_names,
        label_all_subtokens=cfg.label_all_subtokens, first_subtoken_prediction=True, normalizer=cfg.normalizer,
        base_model=cfg.model, stand_in=spec.stand_in is not None, stand_in_description=spec.stand_in,
        selection_metric=cfg.selection_metric, best_checkpoint_step=jobs.step_of(trainer.state.best_model_checkpoint),
        # the card's licence, also read by a student distilled from this run
        extra={"license": combine([*dataset_terms(str(cfg.data)), *base_model_terms(cfg.model)])},
    )
    metrics_doc = {
        "split": "validation", "dataset": str(cfg.data), "selection_metric": cfg.selection_metric,
        "metrics": result.metrics, "encoding": result.encoding, "train_runtime_s": result.train_seconds,
        "train_samples_per_second": result.train_samples_per_second, "epochs_trained": trainer.state.epoch,
        "global_step": trainer.state.global_step, "stand_in": spec.stand_in,
    }
    check_finite_weights(model, cfg, dirs.work, dirs.ckpt_dir)
    with jobs.publish(dirs, kind="run", overwrite=overwrite) as tmp:
        jobs.save_model(tmp, model, tokenizer, data.normalizer)
        meta.save(tmp)
        metrics_doc["calibration"] = calibrate_saved_run(tmp, data.valid_words, enc.valid_gold,
                                                         device=str(trainer.args.device))
        (tmp / "run_config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(metrics_doc, ensure_ascii=False, indent=2) + "\n", "utf-8")
        card = render_model_card(cfg=cfg, meta=meta.to_dict(), metrics=metrics_doc, dataset_name=data.data_name)
        (tmp / "README.md").write_text(card, encoding="utf-8")


def calibrate_saved_run(run_dir: Path, words: list[list[str]], gold: list[list[str]], *,
                        device: str | None = None) -> dict[str, Any]:
    """Fit the entity-score calibration on the validation split with the saved model, loaded as inference loads
    it, and save ``calibration.json`` beside it (:mod:`parsner.evaluation.calibration`); what metrics.json keeps."""
    from parsner.evaluation.calibration import calibrate_run
    from parsner.inference.tagger import Tagger

    tagger = Tagger.from_pretrained(run_dir, device=device, calibrator=None)
    cal = calibrate_run(run_dir, tagger, words, gold)
    if cal is None:
        return {"file": None, "why": "entity scores are raw: no entity was predicted on the validation split"}
    log.info(f"entity scores calibrated on {cal.info['entities']:,} validation entities: ECE "
             f"{cal.info['ece_raw']:.4f} raw -> {cal.info['ece_fitted']:.4f} (on the fit data)")
    return {"file": "calibration.json", **cal.info}


def run_training(
    config: str | Path | None = None,
    *,
    overrides: list[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    **direct: Any,
) -> RunResult:
    """Config file <- ``direct`` config keys (``model=``, ``data=``, ``epochs=``; None skipped) <- ``key=value``
    ``overrides`` -> :func:`train` (what the CLI does)."""
    from parsner.training.config import load_config

    values = {k: str(v) if isinstance(v, Path) else v for k, v in direct.items()}
    cfg = load_config(config, overrides=values, sets=overrides)
    return train(cfg, resume=resume, overwrite=overwrite)
