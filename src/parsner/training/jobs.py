"""The runner every training job shares (fine-tune, masked-LM pre-training, distillation, the feature CRF's run
folder): the run folder and whose it is, the run lock, resume, the Trainer's arguments, the signal-safe fit,
divergence, and publishing the finished run.

* **Run folder.** A job writes ``OUT`` once, at the very end (:func:`publish`: a temporary folder renamed into
  place, :mod:`parsner.atomic`), so ``OUT`` exists only when complete. While it trains it works in
  ``OUT.incomplete/`` (the *work folder*, marked ``run-work``): ``checkpoints/checkpoint-N/`` (each closed by
  :data:`CHECKPOINT_COMPLETE`, written last, so a save cut short by a crash or a full disk is recognised), the job's
  config and input fingerprint (what ``--resume`` compares) and ``train_log.jsonl``.
* **Whose it is.** parsner replaces only folders it made (``--overwrite``), never writes into or over one of the
  job's inputs, and continues a work folder only with ``--resume`` (:func:`check_outputs`, :func:`open_run`).
  One writer per run folder: :func:`locked` holds :class:`parsner.runlock.RunLock` for the whole job.
* **Signals.** SIGINT (Ctrl-C) and SIGTERM make :func:`fit` save a checkpoint at the end of the current optimiser
  step and stop with :class:`TrainingInterrupted` (exit 130 / 143). A second Ctrl-C stops at once.
* **Divergence.** A NaN/inf loss, gradient norm or final weight stops the job with :class:`TrainingDiverged`
  (exit 2), naming the step; the last good checkpoint is kept and nothing is published.

What differs between the jobs (their data, model, loss, outputs and cards) stays in :mod:`parsner.training.train`,
:mod:`parsner.training.pretrain` and :mod:`parsner.training.distill`; they all train with the one ``Trainer``
subclass, :class:`parsner.training.trainer.ParsnerTrainer`. The training modules log through ``logging`` (the CLI
shows their lines as ``parsner COMMAND: ...``); under DDP only the main process speaks (:func:`locked`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from parsner.errors import ConfigError, ParsnerError

T = TypeVar("T")
INCOMPLETE_SUFFIX = ".incomplete"
#: Written last into every checkpoint folder: a checkpoint without it was cut short (crash, full disk).
CHECKPOINT_COMPLETE = ".parsner-complete"
LOG_FILE = "train_log.jsonl"
log = logging.getLogger(__name__)


def is_main_process() -> bool:
    """Rank 0 (or no DDP): the process that speaks, holds the lock and writes the run folders."""
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def _main_process_speaks() -> Iterator[None]:
    """Under DDP every process runs the same job: the others' info lines would repeat the main one's."""
    logger = logging.getLogger("parsner.training")
    previous = logger.level
    if not is_main_process():
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


# ----------------------------------------------------------------------------------------- how a job stops


class TrainingDiverged(ParsnerError):
    """The loss, the gradients or the weights became NaN/inf: the run is not saved as complete.

    The trainer raises it bare (``step`` and ``reason``); :func:`fit` replaces it with the full message."""

    def __init__(self, message: str, *, step: int | None = None, reason: str | None = None) -> None:
        self.step, self.reason = step, reason or message
        super().__init__(message)


class TrainingInterrupted(ParsnerError):
    """A run stopped by a signal after saving a checkpoint (resume with --resume)."""

    def __init__(self, signum: int, work_dir: Path, checkpoint: str | None) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        where = f"checkpoint saved in {checkpoint}" if checkpoint else f"no checkpoint yet in {work_dir}"
        super().__init__(f"training stopped by {name}; {where}. Continue with the same command and --resume")


class SignalStopper:
    """Signal flag shared by the handler and the Trainer callback that stops after the step."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def handler(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.signum = signum
        log.info("%s received: saving a checkpoint after this step, then stopping", signal.Signals(signum).name)

    def install(self) -> None:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for s in (signal.SIGINT, signal.SIGTERM):
            self.previous[s] = signal.signal(s, self.handler)

    def restore(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)
        self.previous.clear()


# ----------------------------------------------------------------------------------------- checkpoints


def checkpoints(ckpt_dir: Path) -> list[Path]:
    """``checkpoint-N`` folders, newest first."""
    if not ckpt_dir.is_dir():
        return []
    found = []
    for p in ckpt_dir.iterdir():
        head, _, num = p.name.rpartition("-")
        if head == "checkpoint" and num.isdigit() and p.is_dir():
            found.append((int(num), p))
    return [p for _, p in sorted(found, reverse=True)]


def checkpoint_is_complete(path: Path) -> bool:
    if (path / CHECKPOINT_COMPLETE).is_file():
        return True
    try:  # written before the marker existed: the trainer state is the last file a checkpoint gets
        json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_checkpoint(ckpt_dir: Path) -> str | None:
    return next((str(p) for p in checkpoints(ckpt_dir) if checkpoint_is_complete(p)), None)


def drop_incomplete_checkpoints(ckpt_dir: Path) -> None:
    """Remove checkpoints whose save was cut short (they are parsner's own, inside the work folder)."""
    for p in checkpoints(ckpt_dir):
        if not checkpoint_is_complete(p):
            log.info("--resume: skipping the incomplete checkpoint %s (its save was interrupted); removing it", p)
            shutil.rmtree(p, ignore_errors=True)


# ----------------------------------------------------------------------------------------- the run folder


@dataclass
class Job:
    """What the runner knows of a job: where it writes and what it must not touch."""

    out: Path  # the finished run folder
    kind: str  # the finished folder's marker (parsner.atomic): "run", "pretrained-model"
    inputs: list[Any]  # paths the job reads: never replaced, never written into
    what: str  # who holds the lock, as its message says: "a training run"

    @property
    def work(self) -> Path:
        return self.out.parent / f"{self.out.name}{INCOMPLETE_SUFFIX}"


@dataclass
class RunDirs:
    final: Path  # the finished run (written once, atomically, at the end)
    work: Path  # <out>.incomplete: checkpoints, log, config while training
    resume_from: str | None  # the checkpoint --resume continues from
    resume: bool = False  # --resume: an existing work folder is continued, not replaced

    @property
    def ckpt_dir(self) -> Path:
        return self.work / "checkpoints"

    @property
    def log_path(self) -> Path:
        return self.work / LOG_FILE


def check_outputs(job: Job, *, resume: bool, overwrite: bool) -> None:
    """The output rule (:mod:`parsner.atomic`) for a job with a work folder, checked before anything is loaded."""
    from parsner.atomic import check_output_dir, output_kind

    final, work = job.out, job.work
    if final.exists() and not overwrite and final.name not in ("", ".", ".."):
        what = "holds a finished run" if resume else "already exists"
        raise ConfigError(f"{final} {what}; choose another --out or pass --overwrite")
    check_output_dir(final, kind=job.kind, overwrite=overwrite, inputs=job.inputs)
    check_output_dir(work, kind="run-work", overwrite=True, inputs=job.inputs)
    if work.exists() and output_kind(work) is None and any(work.iterdir()):
        raise ConfigError(f"{work} exists and is not a parsner training work folder; remove it yourself "
                          "or choose another --out")


def locked(job: Job, body: Callable[[], T], *, resume: bool, overwrite: bool) -> T:
    """``body()`` with the outputs checked and the run folder locked for the whole job (a second job on the same
    ``--out`` stops at once, whatever its options). Under DDP the main process holds the lock for every rank."""
    from parsner.runlock import RunLock

    check_outputs(job, resume=resume, overwrite=overwrite)
    with _main_process_speaks():
        if not is_main_process():
            return body()
        with RunLock(job.out, what=job.what):
            return body()


def open_run(job: Job, *, resume: bool, overwrite: bool,
             check_saved: Callable[[Path], None] | None = None) -> RunDirs:
    """Refuse to clobber (again: now under the lock) and find the checkpoint to resume from; ``check_saved(work)``
    refuses a work folder whose saved config differs from this run's."""
    check_outputs(job, resume=resume, overwrite=overwrite)
    dirs = RunDirs(job.out, job.work, None, resume)
    if dirs.work.exists():
        if resume:
            if check_saved is not None:
                check_saved(dirs.work)
            if is_main_process():
                drop_incomplete_checkpoints(dirs.ckpt_dir)
            dirs.resume_from = last_checkpoint(dirs.ckpt_dir)
        elif not overwrite:
            raise ConfigError(
                f"an interrupted run is in {dirs.work}; continue it with --resume or start over with --overwrite"
            )
    if resume and dirs.resume_from is None:
        log.info("--resume: no checkpoint found, starting from the beginning")
    return dirs


def start_work(dirs: RunDirs, files: dict[str, str], args: Any = None) -> None:
    """(Re)create the work folder holding ``files`` (the job's config and input fingerprint, what --resume compares).

    The main process writes; given the ``TrainingArguments``, the other DDP processes wait until it has."""
    from parsner.atomic import atomic_write_text, write_marker

    with args.main_process_first(desc="prepare run directory") if args is not None else contextlib.nullcontext():
        if not is_main_process():
            return
        if dirs.work.exists() and not dirs.resume:
            shutil.rmtree(dirs.work)
        dirs.ckpt_dir.mkdir(parents=True, exist_ok=True)
        write_marker(dirs.work, "run-work")
        for name, text in files.items():
            atomic_write_text(dirs.work / name, text)
        if dirs.resume_from:
            with dirs.log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"event": "resume", "checkpoint": dirs.resume_from, "time": time.time()}) + "\n")


@contextlib.contextmanager
def publish(dirs: RunDirs, *, kind: str, overwrite: bool) -> Iterator[Path]:
    """``with publish(dirs, ...) as tmp:`` the job writes the finished run into ``tmp``; the training log is added,
    the folder renamed into place, then the work folder goes."""
    from parsner.atomic import atomic_dir

    with atomic_dir(dirs.final, overwrite=overwrite, kind=kind) as tmp:
        yield tmp
        if dirs.log_path.is_file():
            shutil.copyfile(dirs.log_path, tmp / LOG_FILE)
        else:
            (tmp / LOG_FILE).write_text("", encoding="utf-8")
    shutil.rmtree(dirs.work, ignore_errors=True)


def save_model(tmp: Path, model: Any, tokenizer: Any, normalizer: Any) -> None:
    """Weights (safetensors), tokenizer and normaliser: what inference loads from a run folder."""
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if normalizer is not None:
        normalizer.save(tmp)


def write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n", "utf-8")


# ----------------------------------------------------------------------------------------- the fit


def training_arguments(cfg: Any, ckpt_dir: Path, n_train: int, **job_args: Any) -> Any:
    """The Trainer's arguments from the keys every job config has, checkpoints in ``ckpt_dir``; ``job_args`` add
    or replace the job's own (evaluation, selection, precision). The Trainer's progress bar shows on a terminal
    only (a log file gets the evaluation lines, not bar redraws)."""
    import torch
    from transformers import TrainingArguments

    on_gpu = torch.cuda.is_available()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    accumulation = int(getattr(cfg, "gradient_accumulation_steps", 1))
    max_steps = getattr(cfg, "max_steps", None)
    steps_per_epoch = math.ceil(n_train / (cfg.batch_size * world * accumulation))
    total_steps = max_steps or max(1, math.ceil(steps_per_epoch * cfg.epochs))
    args: dict[str, Any] = dict(
        output_dir=str(ckpt_dir), seed=cfg.seed, num_train_epochs=cfg.epochs, max_steps=max_steps or -1,
        learning_rate=cfg.learning_rate, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=accumulation, warmup_steps=round(cfg.warmup_ratio * total_steps),
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm, lr_scheduler_type=cfg.lr_scheduler,
        save_total_limit=cfg.save_total_limit, logging_strategy="steps", logging_steps=cfg.logging_steps,
        per_device_eval_batch_size=max(cfg.batch_size, 64), bf16=on_gpu and torch.cuda.is_bf16_supported(),
        use_cpu=not on_gpu, dataloader_num_workers=0, dataloader_pin_memory=on_gpu, report_to="none",
        remove_unused_columns=False, disable_tqdm=not (cfg.progress and sys.stderr.isatty()),
    )
    return TrainingArguments(**{**args, **job_args})


@contextlib.contextmanager
def cpu_float_mode() -> Iterator[None]:
    """While training on a CPU, denormal floats are flushed to zero: Adam's second moments and tiny gradients
    reach them, and x86 CPUs handle them in slow microcode; flushing changes nothing measurable and avoids the
    stalls. It is a process-wide mode, so it is left as it was found (off)."""
    import torch

    on = not torch.cuda.is_available()
    if on:
        torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if on:
            torch.set_flush_denormal(False)


def job_callbacks(dirs: RunDirs, *, early_stopping_patience: int = 0) -> tuple[list[Any], SignalStopper]:
    """The callbacks of every job (per-step seeds, stop on a signal, the JSONL log) and the signal flag."""
    from parsner.training.callbacks import make_callbacks

    stopper = SignalStopper()
    callbacks = make_callbacks(stopper, dirs.log_path if is_main_process() else None)
    if early_stopping_patience > 0:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=early_stopping_patience))
    return callbacks, stopper


def fit(trainer: Any, stopper: SignalStopper, cfg: Any, dirs: RunDirs) -> Any:
    """``trainer.train()`` with the signal handlers installed; divergence and signals become the job's errors."""
    stopper.install()
    try:
        output = trainer.train(resume_from_checkpoint=dirs.resume_from)
    except TrainingDiverged as exc:
        raise diverged_error(cfg, exc.step, exc.reason, dirs.work, dirs.ckpt_dir) from None
    finally:
        stopper.restore()
    if stopper.signum is not None:
        trainer.accelerator.wait_for_everyone()
        raise TrainingInterrupted(stopper.signum, dirs.work, last_checkpoint(dirs.ckpt_dir))
    return output


def diverged_error(cfg: Any, step: int | None, what: str, work: Path, ckpt_dir: Path) -> TrainingDiverged:
    """The error a diverged job stops with (the step, the last good checkpoint, the settings to look at); the
    event goes into the training log."""
    last = last_checkpoint(ckpt_dir)
    where = f"at optimiser step {step}" if step is not None else "at the end of training"
    kept = f"the last good checkpoint is {last}" if last else f"no checkpoint was saved yet (work folder {work})"
    log_path = work / LOG_FILE
    if log_path.parent.is_dir():
        with log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"event": "diverged", "step": step, "reason": what, "time": time.time()}) + "\n")
    return TrainingDiverged(
        f"training diverged {where}: {what}. Nothing was saved as a finished run; {kept}. "
        f"Check the optimisation settings (learning_rate={cfg.learning_rate:g}, weight_decay={cfg.weight_decay:g}, "
        f"max_grad_norm={cfg.max_grad_norm:g}) and start over with --overwrite",
        step=step, reason=what,
    )


def check_finite_weights(model: Any, cfg: Any, work: Path, ckpt_dir: Path) -> None:
    """A run is complete only if its weights are finite."""
    import torch

    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise diverged_error(cfg, None, f"{len(bad)} weight tensor(s) are NaN/inf (e.g. {bad[0]})", work, ckpt_dir)


def step_of(ckpt: str | None) -> int | None:
    """The optimiser step of a ``checkpoint-N`` path."""
    if not ckpt:
        return None
    try:
        return int(Path(ckpt).name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def tiny_options(cfg: Any) -> dict[str, int]:
    """The ``tiny`` stand-in's sizes from a job config's ``tiny_*`` keys (``TinySizes`` in the config)."""
    return {k: getattr(cfg, f"tiny_{k}") for k in ("layers", "hidden", "heads", "intermediate", "vocab_size")}


@dataclass
class JobResult:
    """What a pre-training or distillation job returns."""

    out_dir: Path
    metrics: dict[str, Any]
    steps: int
    train_seconds: float
    resumed_from: str | None = None
