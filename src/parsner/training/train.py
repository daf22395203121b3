"""Fine-tune a token classifier on a dataset built by ``parsner data build``: ``train(config) -> RunResult``.

Engine: the transformers ``Trainer`` (checkpoints, resume with RNG states, DDP through accelerate,
early stopping, best-model selection), as :class:`parsner.training.trainer.ParsnerTrainer` runs it. :func:`train` is a
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
* **Atomic run directory.** Training happens in ``<out>.incomplete/`` (``checkpoints/``,
  ``train_log.jsonl``, ``run_config.yaml``; see :mod:`parsner.training.checkpoints`); the final directory ``<out>`` is
  written in a temporary folder and renamed into place at the very end (:func:`parsner.atomic.atomic_dir`).
  So ``<out>`` exists only when complete. ``--resume`` continues from the last complete checkpoint.
* **Exact resume.** The batch order depends only on (seed, epoch) and torch is reseeded from
  (seed, step, rank) before every optimiser step, so a run resumed from any checkpoint (also one saved
  mid-epoch by a signal) ends with the same weights and metrics as an uninterrupted run on CPU.
* **Signals.** SIGINT (Ctrl-C) and SIGTERM make the run save a checkpoint at the end of the current
  optimiser step and stop; :class:`TrainingInterrupted` carries the exit code (130 / 143). A second
  Ctrl-C stops at once. Under DDP the stop flag is agreed on by all ranks at every step.
* **Non-finite training** (loss, gradients or final weights) stops with :class:`TrainingDiverged`; the last
  good checkpoint is kept and nothing is saved as a finished run.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsner._version import __version__
from parsner.errors import ConfigError, InputError, ParsnerError
from parsner.training.batching import PadCollator
from parsner.training.callbacks import FAULT_ENV, SignalStopper, TrainingInterrupted, make_callbacks
from parsner.training.checkpoints import (
    CHECKPOINT_COMPLETE,
    FINGERPRINT_FILE,
    INCOMPLETE_SUFFIX,
    check_checkpoint_tokenizer,
    check_fingerprint,
    check_saved_config,
    data_fingerprint,
    drop_incomplete_checkpoints,
    last_checkpoint,
)
from parsner.training.config import RunConfig, dump_yaml

__all__ = [
    "CHECKPOINT_COMPLETE", "FAULT_ENV", "FINGERPRINT_FILE", "INCOMPLETE_SUFFIX", "EncodedSplits", "RunResult",
    "TrainingDiverged", "TrainingInterrupted", "check_run_outputs", "encode_splits", "run_training", "train",
]


class TrainingDiverged(ParsnerError):
    """The loss, the gradients or the weights became NaN/inf: the run is not saved as complete."""


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


def _log(msg: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"parsner train: {msg}", file=sys.stderr, flush=True)


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
        _log(f"no validation split: using {len(valid)} training sentences (validation_fraction)")
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
        _log(
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


def _run_dirs(cfg: RunConfig) -> tuple[Path, Path]:
    final = cfg.out_dir
    return final, final.parent / f"{final.name}{INCOMPLETE_SUFFIX}"


def check_run_outputs(cfg: RunConfig, *, resume: bool = False, overwrite: bool = False) -> None:
    """The output rule (:mod:`parsner.atomic`) for a run, checked before anything is loaded."""
    from parsner.atomic import check_output_dir, output_kind

    final, work = _run_dirs(cfg)
    model_dir = cfg.model if Path(cfg.model).exists() else None
    inputs = [cfg.data, model_dir]
    if final.exists() and not overwrite and final.name not in ("", ".", ".."):
        what = "holds a finished run" if resume else "already exists"
        raise ConfigError(f"{final} {what}; choose another --out or pass --overwrite")
    check_output_dir(final, kind="run", overwrite=overwrite, inputs=inputs)
    check_output_dir(work, kind="run-work", overwrite=True, inputs=inputs)
    if work.exists() and output_kind(work) is None and any(work.iterdir()):
        raise ConfigError(f"{work} exists and is not a parsner training work folder; remove it yourself "
                          "or choose another --out")


def train(cfg: RunConfig, *, resume: bool = False, overwrite: bool = False) -> RunResult:
    """Train according to ``cfg``; returns the final directory and the validation metrics.

    The run directory is locked for the whole run (:mod:`parsner.runlock`): a second training on the same
    ``--out`` stops at once, whatever its options.
    """
    from parsner.runlock import RunLock

    check_run_outputs(cfg, resume=resume, overwrite=overwrite)
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(cfg, resume=resume, overwrite=overwrite)
    with RunLock(cfg.out_dir, what="a training run"):
        if cfg.model.strip() == "crf":
            return _train_crf(cfg, resume=resume, overwrite=overwrite)
        return _train(cfg, resume=resume, overwrite=overwrite)


def _train_crf(cfg: RunConfig, *, resume: bool, overwrite: bool) -> RunResult:
    """A feature CRF (:mod:`parsner.training.crf`): same folders, data checks and normalisation as a network."""
    from parsner.training.crf import check_inputs, train_crf

    check_inputs(cfg)
    dirs = prepare_run(cfg, resume=resume, overwrite=overwrite)
    if resume:
        _log("--resume: a CRF's optimisation cannot continue mid-way; it starts over (word clusters are reused)")
    data = load_training_data(cfg, None, dirs.work)
    doc = train_crf(cfg, data, dirs.work, dirs.final, overwrite=overwrite)
    return RunResult(out_dir=dirs.final, metrics=doc["metrics"], stand_in=None, resumed_from=None,
                     train_seconds=doc["train_runtime_s"], steps=doc["iterations"])


@dataclass
class RunDirs:
    final: Path  # the finished run (written once, atomically, at the end)
    work: Path  # <out>.incomplete: checkpoints, log, config while training
    resume_from: str | None  # the checkpoint --resume continues from
    resume: bool = False  # --resume: an existing work folder is continued, not replaced

    @property
    def ckpt_dir(self) -> Path:
        return self.work / "checkpoints"


def prepare_run(cfg: RunConfig, *, resume: bool, overwrite: bool) -> RunDirs:
    """Refuse to clobber (again: now under the lock) and find the checkpoint to resume from."""
    check_run_outputs(cfg, resume=resume, overwrite=overwrite)
    final, work = _run_dirs(cfg)
    dirs = RunDirs(final, work, None, resume)
    if work.exists():
        if resume:
            check_saved_config(work, cfg)
            if int(os.environ.get("RANK", "0")) == 0:
                drop_incomplete_checkpoints(dirs.ckpt_dir)
            dirs.resume_from = last_checkpoint(dirs.ckpt_dir)
        elif not overwrite:
            raise ConfigError(
                f"an interrupted run is in {work}; continue it with --resume or start over with --overwrite"
            )
    if resume and dirs.resume_from is None:
        _log("--resume: no checkpoint found, starting from the beginning")
    return dirs


def training_arguments(cfg: RunConfig, n_train_windows: int, ckpt_dir: Path) -> Any:
    """The Trainer's arguments: the config's recipe, checkpoints in ``ckpt_dir``, CPU or GPU as available."""
    import torch
    from transformers import TrainingArguments

    fp16, bf16 = _precision(cfg)
    on_gpu = torch.cuda.is_available()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = math.ceil(n_train_windows / (cfg.batch_size * world * cfg.gradient_accumulation_steps))
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    evaluating = cfg.eval_strategy != "no"
    return TrainingArguments(
        output_dir=str(ckpt_dir), seed=cfg.seed, num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=round(cfg.warmup_ratio * total_steps), weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm, lr_scheduler_type=cfg.lr_scheduler,
        eval_strategy=cfg.eval_strategy, save_strategy=cfg.eval_strategy, eval_steps=cfg.eval_steps,
        save_steps=cfg.eval_steps, logging_strategy="steps", logging_steps=cfg.logging_steps,
        save_total_limit=cfg.save_total_limit, load_best_model_at_end=evaluating,
        metric_for_best_model=cfg.selection_metric if evaluating else None, greater_is_better=True,
        fp16=fp16, bf16=bf16, use_cpu=not on_gpu,
        dataloader_num_workers=cfg.dataloader_workers, dataloader_pin_memory=on_gpu,
        disable_tqdm=not cfg.progress, report_to="none", remove_unused_columns=False,
        ddp_find_unused_parameters=False, ddp_backend="gloo" if world > 1 and not on_gpu else None,
    )


def _prepare_work_dir(cfg: RunConfig, dirs: RunDirs, args: Any, fingerprint: dict[str, Any]) -> None:
    """The main process (re)creates the work folder; the others wait at the barrier."""
    from parsner.atomic import atomic_write_text, write_marker

    with args.main_process_first(desc="prepare run directory"):
        if int(os.environ.get("RANK", "0")) != 0:
            return
        if dirs.work.exists() and not dirs.resume:
            shutil.rmtree(dirs.work)
        dirs.ckpt_dir.mkdir(parents=True, exist_ok=True)
        write_marker(dirs.work, "run-work")
        atomic_write_text(dirs.work / "run_config.yaml", dump_yaml(cfg))
        atomic_write_text(dirs.work / FINGERPRINT_FILE, json.dumps(fingerprint, ensure_ascii=False, indent=1) + "\n")
        if dirs.resume_from:
            with (dirs.work / "train_log.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps({"event": "resume", "checkpoint": dirs.resume_from, "time": time.time()}) + "\n")


def make_trainer(cfg: RunConfig, model: Any, tokenizer: Any, enc: EncodedSplits, args: Any,
                 dirs: RunDirs) -> tuple[Any, SignalStopper]:
    from transformers import EarlyStoppingCallback

    from parsner.training.trainer import ParsnerTrainer, keep_log_probs

    stopper = SignalStopper()
    callbacks = make_callbacks(stopper, dirs.work / "train_log.jsonl" if int(os.environ.get("RANK", "0")) == 0
                               else None)
    if cfg.early_stopping_patience > 0 and cfg.eval_strategy != "no":
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    train_data, eval_data = enc.datasets()
    trainer = ParsnerTrainer(
        model=model, args=args, train_dataset=train_data, eval_dataset=eval_data, processing_class=tokenizer,
        data_collator=PadCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        compute_metrics=validation_scorer(cfg, enc), preprocess_logits_for_metrics=keep_log_probs,
        callbacks=callbacks,
        window_lengths=[len(w.input_ids) for w in enc.train.windows] if cfg.group_by_length else None,
    )
    return trainer, stopper


def fit(trainer: Any, stopper: SignalStopper, cfg: RunConfig, dirs: RunDirs) -> Any:
    """``trainer.train()`` with the signal handlers installed; divergence and signals become our errors."""
    from parsner.training.trainer import Diverged

    stopper.install()
    try:
        output = trainer.train(resume_from_checkpoint=dirs.resume_from)
    except Diverged as exc:
        raise _diverged_error(cfg, exc.step, exc.what, dirs.work, dirs.ckpt_dir) from None
    finally:
        stopper.restore()
    if stopper.signum is not None:
        trainer.accelerator.wait_for_everyone()
        raise TrainingInterrupted(stopper.signum, dirs.work, last_checkpoint(dirs.ckpt_dir))
    return output


def _train(cfg: RunConfig, *, resume: bool, overwrite: bool) -> RunResult:
    import torch
    import transformers

    from parsner.inference import modeling

    t_start = time.time()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    dirs = prepare_run(cfg, resume=resume, overwrite=overwrite)
    spec = modeling.parse_spec(cfg.model)
    data = load_training_data(cfg, dirs.resume_from, dirs.work)
    tokenizer = modeling.load_tokenizer(spec, train_words=data.train_words, tiny_options=cfg.tiny_options)
    if dirs.resume_from:
        check_checkpoint_tokenizer(dirs.resume_from, tokenizer)
    enc = encode_splits(cfg, data, tokenizer, head_labels(cfg, spec, data.names))
    if spec.stand_in:
        _log(f"MODEL IS A STAND-IN: {spec.stand_in}")
    transformers.set_seed(cfg.seed)
    model = modeling.load_model(spec, enc.label_names, tokenizer, tiny_options=cfg.tiny_options,
                                reinit_classifier=cfg.reinit_classifier)
    if not torch.cuda.is_available():
        # Adam's second moments and tiny gradients reach denormal floats, which x86 CPUs handle in
        # slow microcode; flushing them to zero changes nothing measurable and avoids the stalls.
        torch.set_flush_denormal(True)
    args = training_arguments(cfg, len(enc.train.windows), dirs.ckpt_dir)
    _prepare_work_dir(cfg, dirs, args, data.fingerprint)
    trainer, stopper = make_trainer(cfg, model, tokenizer, enc, args, dirs)
    try:
        output = fit(trainer, stopper, cfg, dirs)
        result = _result(cfg, spec, trainer, output, enc, dirs.resume_from)
    finally:
        torch.set_flush_denormal(False)  # a process-wide CPU mode: leave it as it was found (off)
    if int(os.environ.get("RANK", "0")) == 0:
        _write_run(cfg, spec, trainer, tokenizer, data, enc, result, dirs, overwrite=overwrite)
        _log(f"done in {time.time() - t_start:.0f}s: {dirs.final} (validation f1_strict="
             f"{result.metrics.get('f1_strict', float('nan')):.4f}, f1_default="
             f"{result.metrics.get('f1_default', float('nan')):.4f})")
        if spec.stand_in:
            _log(f"reminder: {spec.stand_in}")
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
    """The finished run directory, written in a temporary folder and renamed into place; then the work folder goes."""
    from parsner.atomic import atomic_dir
    from parsner.inference.runmeta import RunMeta
    from parsner.training.model_card import render_model_card

    model = trainer.accelerator.unwrap_model(trainer.model)
    meta = RunMeta(
        parsner_version=__version__, max_length=enc.max_length, stride=cfg.stride,
        constrained_decoding=cfg.constrained_decoding, label_scheme="IOB2", labels=enc.label_names,
        label_all_subtokens=cfg.label_all_subtokens, first_subtoken_prediction=True, normalizer=cfg.normalizer,
        base_model=cfg.model, stand_in=spec.stand_in is not None, stand_in_description=spec.stand_in,
        selection_metric=cfg.selection_metric, best_checkpoint_step=_step_of(trainer.state.best_model_checkpoint),
    )
    metrics_doc = {
        "split": "validation", "dataset": str(cfg.data), "selection_metric": cfg.selection_metric,
        "metrics": result.metrics, "encoding": result.encoding, "train_runtime_s": result.train_seconds,
        "train_samples_per_second": result.train_samples_per_second, "epochs_trained": trainer.state.epoch,
        "global_step": trainer.state.global_step, "stand_in": spec.stand_in,
    }
    check_finite_weights(model, cfg, dirs.work, dirs.ckpt_dir)
    with atomic_dir(dirs.final, overwrite=overwrite, kind="run") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if data.normalizer is not None:
            data.normalizer.save(tmp)
        meta.save(tmp)
        (tmp / "run_config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(metrics_doc, ensure_ascii=False, indent=2) + "\n", "utf-8")
        log_src = dirs.work / "train_log.jsonl"
        if log_src.is_file():
            shutil.copyfile(log_src, tmp / "train_log.jsonl")
        else:
            (tmp / "train_log.jsonl").write_text("", encoding="utf-8")
        card = render_model_card(cfg=cfg, meta=meta.to_dict(), metrics=metrics_doc, dataset_name=data.data_name)
        (tmp / "README.md").write_text(card, encoding="utf-8")
    shutil.rmtree(dirs.work, ignore_errors=True)


def _diverged_error(cfg: RunConfig, step: int | None, what: str, work: Path, ckpt_dir: Path) -> TrainingDiverged:
    last = last_checkpoint(ckpt_dir)
    where = f"at optimiser step {step}" if step is not None else "at the end of training"
    kept = f"the last good checkpoint is {last}" if last else f"no checkpoint was saved yet (work folder {work})"
    log = work / "train_log.jsonl"
    if log.parent.is_dir():
        with log.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"event": "diverged", "step": step, "reason": what, "time": time.time()}) + "\n")
    return TrainingDiverged(
        f"training diverged {where}: {what}. Nothing was saved as a finished run; {kept}. "
        f"Check the optimisation settings (learning_rate={cfg.learning_rate:g}, weight_decay={cfg.weight_decay:g}, "
        f"max_grad_norm={cfg.max_grad_norm:g}) and start over with --overwrite"
    )


def check_finite_weights(model: Any, cfg: RunConfig, work: Path, ckpt_dir: Path) -> None:
    """A run is complete only if its weights are finite."""
    import torch

    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise _diverged_error(cfg, None, f"{len(bad)} weight tensor(s) are NaN/inf (e.g. {bad[0]})", work, ckpt_dir)


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


def _step_of(ckpt: str | None) -> int | None:
    if not ckpt:
        return None
    try:
        return int(Path(ckpt).name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None
