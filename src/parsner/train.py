"""Fine-tune a token classifier on a dataset built by ``parsner data build``: ``train(config) -> RunResult``.

Engine: the transformers ``Trainer`` (checkpoints, resume with RNG states, DDP through accelerate,
early stopping, best-model selection), with these ParsNER parts:

* **Words first.** Tokens are normalised with ``PersianNormalizer`` (``normalizer.json`` is saved with the
  model), then encoded by :mod:`parsner.align` (first sub-token labels, zero-sub-token words, windows
  for long sentences: nothing is truncated). Metrics are computed on words, from the window that labels
  each word, with seqeval in both modes (:func:`parsner.metrics.score`).
* **Selection metric:** validation entity F1 of seqeval in *strict IOB2* mode (``f1_strict``;
  ``selection_metric: f1_default`` for the conlleval-like score). Both are logged at every evaluation.
* **Speed on CPU.** Dynamic padding with a minimal collator; length-grouped batches from a sampler whose
  order depends only on (seed, epoch) (so a run resumed mid-epoch sees the same batches, and all DDP
  ranks agree); eval windows sorted by length; and *row-sparse AdamW* for the word embeddings
  (``sparse_embeddings: auto`` = on without a GPU): the embedding gradient is sparse and only the rows
  of the sub-words in the batch are updated (lazy Adam, like TF's LazyAdam: moments and weight decay of
  untouched rows wait until the row is used). With ParsBERT's 100k x 768 embedding matrix, the dense
  AdamW step (plus the dense 300 MB gradient and its norm) would otherwise cost as much as the forward
  and backward passes of a small model. Other parameters use fused AdamW.
* **Atomic run directory.** Training happens in ``<out>.incomplete/`` (``checkpoints/``,
  ``train_log.jsonl``, ``run_config.yaml``); the final directory ``<out>`` is written in a temporary
  folder and renamed into place at the very end (:func:`parsner.atomic.atomic_dir`). So ``<out>`` exists
  only when complete. ``--resume`` continues from the last checkpoint in ``<out>.incomplete/``.
* **Exact resume.** The batch order depends only on (seed, epoch) and torch is reseeded from
  (seed, step, rank) before every optimiser step, so a run resumed from any checkpoint (also one saved
  mid-epoch by a signal) ends with the same weights and metrics as an uninterrupted run on CPU.
* **Signals.** SIGINT (Ctrl-C) and SIGTERM make the run save a checkpoint at the end of the current
  optimiser step and stop; :class:`TrainingInterrupted` carries the exit code (130 / 143). A second
  Ctrl-C stops at once. Under DDP the stop flag is agreed on by all ranks at every step.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsner.config import RunConfig, dump_yaml
from parsner.errors import ConfigError, InputError, ParsnerError

INCOMPLETE_SUFFIX = ".incomplete"
#: Written last into every checkpoint folder: a checkpoint without it was cut short (crash, full disk).
CHECKPOINT_COMPLETE = ".parsner-complete"
#: The dataset a run trains on (labels, inputs' sha256, content hash of the splits), checked by --resume.
FINGERPRINT_FILE = "data_fingerprint.json"


class TrainingDiverged(ParsnerError):
    """The loss, the gradients or the weights became NaN/inf: the run is not saved as complete."""


class TrainingInterrupted(ParsnerError):
    """A run stopped by a signal after saving a checkpoint (resume with --resume)."""

    def __init__(self, signum: int, work_dir: Path, checkpoint: str | None) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        where = f"checkpoint saved in {checkpoint}" if checkpoint else f"no checkpoint yet in {work_dir}"
        super().__init__(f"training stopped by {name}; {where}. Continue with the same command and --resume")


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


def _split_data(cfg: RunConfig) -> tuple[Any, Any, list[str], str]:
    """(train, validation, label names, dataset name) with the checks of the bad-input matrix."""
    from parsner.dataset import load_dataset_dir

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


def _make_normalizer(cfg: RunConfig) -> Any:
    if cfg.normalizer == "none":
        return None
    from parsner.normalize import NormalizerConfig, PersianNormalizer

    return PersianNormalizer(NormalizerConfig.for_parsbert())


def _normalise(tokens: list[list[str]], normalizer: Any) -> list[list[str]]:
    if normalizer is None:
        return [list(s) for s in tokens]
    return [[normalizer.normalize_token(t) for t in s] for s in tokens]


class LengthGroupedSampler:
    """Batches of similar length, in an order that depends only on (seed, epoch).

    The indices are shuffled, cut into mega-batches of ``50 * batch_size``, sorted by length inside
    each, cut into batches, and the batches shuffled; the longest batch goes first (memory errors
    show up at once). ``set_epoch`` is called by the Trainer/accelerate before each epoch.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, mega: int = 50) -> None:
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.mega = mega
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):  # type: ignore[no-untyped-def]
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(len(self.lengths), generator=g).tolist()
        size = self.mega * self.batch_size
        batches: list[list[int]] = []
        for i in range(0, len(perm), size):
            chunk = sorted(perm[i : i + size], key=lambda j: -self.lengths[j])
            batches += [chunk[k : k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
        order = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[i] for i in order]
        longest = max(range(len(batches)), key=lambda b: self.lengths[batches[b][0]])
        batches[0], batches[longest] = batches[longest], batches[0]
        for b in batches:
            yield from b


class PadCollator:
    """Dynamic padding to the longest window of the batch (labels padded with -100)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        n, width = len(features), max(len(f["input_ids"]) for f in features)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        labels = torch.full((n, width), -100, dtype=torch.long) if "labels" in features[0] else None
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            ids[i, :k] = torch.as_tensor(f["input_ids"])
            mask[i, :k] = 1
            if labels is not None:
                labels[i, :k] = torch.as_tensor(f["labels"])
        batch = {"input_ids": ids, "attention_mask": mask}
        if labels is not None:
            batch["labels"] = labels
        return batch


# ----------------------------------------------------------------------------------------- optimiser


def make_row_sparse_adamw(params_groups: list[dict[str, Any]], lr: float, max_grad_norm: float) -> Any:
    """AdamW that updates only the rows of sparse-gradient parameters touched by the batch."""
    import torch

    class RowSparseAdamW(torch.optim.Optimizer):
        def __init__(self) -> None:
            defaults = {"lr": lr, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
            super().__init__(params_groups, defaults)

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            loss = closure() if closure is not None else None
            for group in self.param_groups:
                b1, b2 = group["betas"]
                lr_, wd, eps = group["lr"], group["weight_decay"], group["eps"]
                dense: tuple[list[Any], ...] = ([], [], [], [], [])
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if not state:
                        state["step"] = torch.zeros((), dtype=torch.float32)
                        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    if p.grad.is_sparse:
                        state["step"] += 1
                        t = float(state["step"])
                        g = p.grad.coalesce()
                        idx, val = g.indices()[0], g.values()
                        m, v = state["exp_avg"], state["exp_avg_sq"]
                        m_rows = m.index_select(0, idx).mul_(b1).add_(val, alpha=1 - b1)
                        v_rows = v.index_select(0, idx).mul_(b2).addcmul_(val, val, value=1 - b2)
                        p_rows = p.index_select(0, idx)
                        if wd:
                            p_rows.mul_(1 - lr_ * wd)
                        denom = (v_rows.sqrt() / math.sqrt(1 - b2**t)).add_(eps)
                        p_rows.addcdiv_(m_rows, denom, value=-lr_ / (1 - b1**t))
                        m.index_copy_(0, idx, m_rows)
                        v.index_copy_(0, idx, v_rows)
                        p.index_copy_(0, idx, p_rows)
                    else:
                        for lst, item in zip(dense, (p, p.grad, state["exp_avg"], state["exp_avg_sq"],
                                                     state["step"]), strict=True):
                            lst.append(item)
                if dense[0]:
                    from torch.optim.adam import adam

                    adam(
                        dense[0], dense[1], dense[2], dense[3], [], dense[4],
                        fused=dense[0][0].device.type in ("cpu", "cuda"),
                        decoupled_weight_decay=True, amsgrad=False, beta1=b1, beta2=b2,
                        lr=lr_, weight_decay=wd, eps=eps, maximize=False,
                    )
            return loss

    return RowSparseAdamW()


def clip_mixed_grad_norm(parameters: Any, max_norm: float) -> Any:
    """Global gradient norm over dense and sparse gradients; clips in place when ``max_norm > 0``."""
    import torch

    sq = []
    grads = []
    for p in parameters:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            grads.append(p.grad.values())
        else:
            grads.append(p.grad)
    if not grads:
        return torch.zeros(())
    sq = torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])
    total = torch.linalg.vector_norm(sq)
    if max_norm > 0:
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))
    return total


# ----------------------------------------------------------------------------------------- callbacks


class _Stopper:
    """Signal flag shared by the handler and the Trainer callback."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def handler(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.signum = signum
        _log(f"{signal.Signals(signum).name} received: saving a checkpoint after this step, then stopping")

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


def _make_callbacks(stopper: _Stopper, log_path: Path | None) -> list[Any]:
    from transformers import TrainerCallback

    class StopOnSignal(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            flag = stopper.signum or 0
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                import torch

                t = torch.tensor([flag], dtype=torch.long)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                flag = int(t.item())
                if flag and stopper.signum is None:
                    stopper.signum = flag
            if flag:
                control.should_save = True
                control.should_training_stop = True
            return control

    class StepSeed(TrainerCallback):
        """Reseed torch before every optimiser step from (seed, step, rank).

        Dropout masks then depend only on the step, not on everything that drew random numbers before
        it (data-loader iterators, evaluation, checkpointing), so a run resumed at any step continues
        exactly like the uninterrupted run (the Trainer's saved RNG state alone is not enough: a run
        stopped mid-epoch evaluates and saves at a point where the uninterrupted run does not).
        """

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            import torch

            torch.manual_seed((args.seed * 1_000_003 + state.global_step * 7919 + args.process_index) % 2**63)

    class JsonlLog(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if log_path is None or not state.is_world_process_zero or not logs:
                return
            rec = {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3)}
            for k, v in logs.items():
                rec[k] = None if isinstance(v, float) and not math.isfinite(v) else v
            with log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    callbacks: list[Any] = [StepSeed(), StopOnSignal(), JsonlLog()]
    fault = os.environ.get(FAULT_ENV)
    if fault:
        callbacks.insert(0, _fault_callback(fault))
    return callbacks


#: Testing hook: ``PARSNER_FAULT_INJECT=SIGTERM:7`` makes rank 0 send itself SIGTERM at the end of
#: optimiser step 7 (also SIGINT, SIGKILL); ``NAN:7`` turns a weight tensor into NaN after step 7. The fault
#: tests use it to interrupt runs at a known step; the signal itself is real, so the same code path runs as
#: for an external ``kill``.
FAULT_ENV = "PARSNER_FAULT_INJECT"


def _fault_callback(spec: str) -> Any:
    from transformers import TrainerCallback

    try:
        name, step_text = spec.split(":")
        at_step = int(step_text)
        signum = 0 if name.strip().upper() == "NAN" else int(signal.Signals[name.strip().upper()])
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{FAULT_ENV}={spec!r}: expected SIGNAL:STEP or NAN:STEP, e.g. SIGTERM:7") from exc

    class InjectNaN(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if state.global_step == at_step and model is not None:
                import torch

                with torch.no_grad():
                    next(model.parameters()).fill_(float("nan"))

    if signum == 0:
        return InjectNaN()

    class InjectFault(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == at_step and state.is_world_process_zero:
                os.kill(os.getpid(), signum)

    return InjectFault()


# ----------------------------------------------------------------------------------------- training


def _checkpoints(ckpt_dir: Path) -> list[Path]:
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


def _last_checkpoint(ckpt_dir: Path) -> str | None:
    return next((str(p) for p in _checkpoints(ckpt_dir) if checkpoint_is_complete(p)), None)


def _drop_incomplete_checkpoints(ckpt_dir: Path) -> None:
    """Remove checkpoints whose save was cut short (they are parsner's own, inside the work folder)."""
    for p in _checkpoints(ckpt_dir):
        if not checkpoint_is_complete(p):
            _log(f"--resume: skipping the incomplete checkpoint {p} (its save was interrupted); removing it")
            shutil.rmtree(p, ignore_errors=True)


def _data_fingerprint(cfg: RunConfig, train: Any, valid: Any, names: list[str]) -> dict[str, Any]:
    """What --resume compares: label names, the build's input files (sha256), and the splits' content."""
    import hashlib

    splits = {}
    for split, ds in (("train", train), ("validation", valid)):
        h = hashlib.sha256()
        for toks, tags in zip(ds["tokens"], ds["ner_tags"], strict=True):
            h.update(json.dumps([toks, tags], ensure_ascii=False).encode("utf-8"))
        splits[split] = h.hexdigest()
    inputs: dict[str, str | None] = {}
    build = Path(str(cfg.data)) / "build.json"
    try:
        doc = json.loads(build.read_text(encoding="utf-8"))
        inputs = {str(i.get("path")): i.get("sha256") for i in doc.get("inputs", []) if isinstance(i, dict)}
    except (OSError, ValueError, AttributeError):
        pass
    return {"data": str(cfg.data), "labels": list(names), "inputs": inputs, "splits": splits}


def _check_fingerprint(work: Path, now: dict[str, Any]) -> None:
    path = work / FINGERPRINT_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        _log(f"--resume: no {path.name} in {work} (a run started by an older parsner): dataset not verified")
        return
    changes = []
    if saved.get("labels") != now["labels"]:
        changes.append(f"labels were {', '.join(saved.get('labels') or [])}; now {', '.join(now['labels'])}")
    old_in, new_in = saved.get("inputs") or {}, now["inputs"]
    for name in sorted(set(old_in) | set(new_in)):
        if name not in new_in:
            changes.append(f"input {name} is no longer part of it")
        elif name not in old_in:
            changes.append(f"input {name} was added")
        elif old_in[name] != new_in[name]:
            changes.append(f"input {name} changed (sha256 {str(old_in[name])[:12]}… -> {str(new_in[name])[:12]}…)")
    for split, digest in now["splits"].items():
        if (saved.get("splits") or {}).get(split) != digest and not changes:
            changes.append(f"the {split} split's sentences or tags changed")
    if changes:
        raise ConfigError(
            f"--resume: the dataset {now['data']} is not the one the interrupted run in {work} was trained on: "
            f"{'; '.join(changes)}. Resume with the original dataset, or start over with --overwrite"
        )


def _check_checkpoint_tokenizer(checkpoint: str, tokenizer: Any) -> None:
    ckpt = Path(checkpoint)
    if not any((ckpt / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        return
    from transformers import AutoTokenizer

    try:
        saved = AutoTokenizer.from_pretrained(str(ckpt)).get_vocab()
    except Exception as exc:  # an unreadable tokenizer is reported, not crashed on
        raise ConfigError(f"--resume: cannot read the tokenizer saved in {ckpt}: {exc}") from exc
    now = tokenizer.get_vocab()
    if saved != now:
        differ = len(set(saved.items()) ^ set(now.items()))
        raise ConfigError(
            f"--resume: the tokenizer differs from the one saved in {ckpt} ({len(saved)} vs {len(now)} tokens, "
            f"{differ} entries differ); resume with the original model and dataset, or start over with --overwrite"
        )


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


def _compare_saved_config(work: Path, cfg: RunConfig) -> None:
    import yaml

    saved_path = work / "run_config.yaml"
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    now = cfg.resolved()
    ignore = {"progress", "num_threads", "dataloader_workers", "eval_batch_size"}
    diff = sorted(k for k in now if k not in ignore and saved.get(k) != now[k])
    if diff:
        raise ConfigError(
            f"--resume: the config differs from the interrupted run's ({work / 'run_config.yaml'}) in: "
            f"{', '.join(diff)}; resume with the same settings or start over with --overwrite"
        )


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
        return _train(cfg, resume=resume, overwrite=overwrite)


def _train(cfg: RunConfig, *, resume: bool, overwrite: bool) -> RunResult:
    import torch
    import transformers
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

    from parsner import align, metrics, modeling
    from parsner.atomic import atomic_dir, atomic_write_text, write_marker
    from parsner.model_card import render_model_card

    t_start = time.time()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    final, work = _run_dirs(cfg)
    ckpt_dir = work / "checkpoints"
    rank = int(os.environ.get("RANK", "0"))
    spec = modeling.parse_spec(cfg.model)

    # --- refuse to clobber, before any expensive work (again: now under the lock)
    check_run_outputs(cfg, resume=resume, overwrite=overwrite)
    resume_from: str | None = None
    if work.exists():
        if resume:
            _compare_saved_config(work, cfg)
            if rank == 0:
                _drop_incomplete_checkpoints(ckpt_dir)
            resume_from = _last_checkpoint(ckpt_dir)
        elif not overwrite:
            raise ConfigError(
                f"an interrupted run is in {work}; continue it with --resume or start over with --overwrite"
            )
    if resume and resume_from is None:
        _log("--resume: no checkpoint found, starting from the beginning")

    # --- data, normalisation, tokenizer, labels
    train_ds, valid_ds, names, data_name = _split_data(cfg)
    fingerprint = _data_fingerprint(cfg, train_ds, valid_ds, names)
    if resume_from:
        _check_fingerprint(work, fingerprint)
    normalizer = _make_normalizer(cfg)
    train_words = _normalise(train_ds["tokens"], normalizer)
    valid_words = _normalise(valid_ds["tokens"], normalizer)
    tiny_opts = {
        "layers": cfg.tiny_layers, "hidden": cfg.tiny_hidden, "heads": cfg.tiny_heads,
        "intermediate": cfg.tiny_intermediate, "vocab_size": cfg.tiny_vocab_size,
    }
    tokenizer = modeling.load_tokenizer(spec, train_words=train_words, tiny_options=tiny_opts)
    if resume_from:
        _check_checkpoint_tokenizer(resume_from, tokenizer)
    label_names = list(names)
    existing = None if cfg.reinit_classifier else modeling.existing_label_names(spec)
    if existing is not None:
        unknown = sorted(set(names) - set(existing))
        if unknown:
            raise ConfigError(
                f"the dataset {cfg.data} has labels the model {cfg.model!r} does not know: "
                f"{', '.join(unknown)} (its labels: {', '.join(existing)}); set reinit_classifier: true "
                "to train a new classification head, or map the labels when building the dataset"
            )
        label_names = list(existing)
    remap = [label_names.index(n) for n in names]
    train_labels = [[remap[t] for t in s] for s in train_ds["ner_tags"]]
    valid_gold = [[names[t] for t in s] for s in valid_ds["ner_tags"]]

    max_length = min(cfg.max_length, int(getattr(tokenizer, "model_max_length", cfg.max_length)))
    enc_train = align.encode_words(
        train_words, tokenizer, train_labels, max_length=max_length, stride=cfg.stride,
        label_all_subtokens=cfg.label_all_subtokens, label_names=label_names,
    )
    valid_labels = [[remap[t] for t in s] for s in valid_ds["ner_tags"]]
    enc_valid = align.encode_words(
        valid_words, tokenizer, valid_labels, max_length=max_length, stride=cfg.stride
    )
    encoding = {"train": enc_train.summary(), "validation": enc_valid.summary()}
    for split, s in encoding.items():
        _log(
            f"{split}: {s['sentences']} sentences, {s['windows']} windows, "
            f"{s['windowed_sentences']} sentences split into windows (max_length={max_length}, "
            f"stride={cfg.stride}), {s['zero_subtoken_words']} zero-sub-token words as [UNK]"
        )
    if spec.stand_in:
        _log(f"MODEL IS A STAND-IN: {spec.stand_in}")

    from datasets import Dataset

    train_data = Dataset.from_dict({
        "input_ids": [w.input_ids for w in enc_train.windows],
        "labels": [w.labels for w in enc_train.windows],
    })
    lengths = [len(w.input_ids) for w in enc_train.windows]
    order = sorted(range(len(enc_valid.windows)), key=lambda k: len(enc_valid.windows[k].input_ids))
    eval_windows = [enc_valid.windows[k] for k in order]
    eval_data = Dataset.from_dict({
        "input_ids": [w.input_ids for w in eval_windows],
        "labels": [w.labels for w in eval_windows],  # first sub-tokens only: eval_loss is per word
    })

    def compute_metrics(pred: Any) -> dict[str, float]:
        scores = pred.predictions  # per-position log-probabilities (see keep_log_probs)
        decoded = align.decode_words(
            eval_windows, list(scores), enc_valid.word_counts, label_names, constrained=cfg.constrained_decoding
        )
        tags = [[label_names[i] for i in d.label_ids] for d in decoded]
        sc = metrics.score(valid_gold, tags)
        out = {}
        for mode in ("strict", "default"):
            for k in ("precision", "recall", "f1"):
                out[f"{k}_{mode}"] = float(sc[mode][k])
        out["token_accuracy"] = float(sc["token_accuracy"])
        return out

    def keep_log_probs(logits: Any, labels: Any) -> Any:
        # Log-probabilities rather than argmax ids, so validation decodes exactly like inference
        # (IOB2-constrained when cfg.constrained_decoding); float32 keeps the gathered arrays small.
        import torch

        return torch.log_softmax(logits.float(), dim=-1)

    # --- model
    transformers.set_seed(cfg.seed)
    model = modeling.load_model(
        spec, label_names, tokenizer, tiny_options=tiny_opts, reinit_classifier=cfg.reinit_classifier
    )
    fp16, bf16 = _precision(cfg)
    on_gpu = torch.cuda.is_available()
    if not on_gpu:
        # Adam's second moments and tiny gradients reach denormal floats, which x86 CPUs handle in
        # slow microcode; flushing them to zero changes nothing measurable and avoids the stalls.
        torch.set_flush_denormal(True)
    sparse = cfg.sparse_embeddings == "true" or (cfg.sparse_embeddings == "auto" and not on_gpu)
    emb = model.get_input_embeddings()
    if sparse:
        emb.sparse = True

    # --- training arguments
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = math.ceil(len(train_data) / (cfg.batch_size * world * cfg.gradient_accumulation_steps))
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    evaluating = cfg.eval_strategy != "no"
    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        seed=cfg.seed,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=round(cfg.warmup_ratio * total_steps),
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        lr_scheduler_type=cfg.lr_scheduler,
        eval_strategy=cfg.eval_strategy,
        save_strategy=cfg.eval_strategy,
        eval_steps=cfg.eval_steps,
        save_steps=cfg.eval_steps,
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=evaluating,
        metric_for_best_model=cfg.selection_metric if evaluating else None,
        greater_is_better=True,
        fp16=fp16,
        bf16=bf16,
        use_cpu=not on_gpu,
        dataloader_num_workers=cfg.dataloader_workers,
        dataloader_pin_memory=on_gpu,
        disable_tqdm=not cfg.progress,
        report_to="none",
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
        ddp_backend="gloo" if world > 1 and not on_gpu else None,
    )

    # --- work directory (main process first; the others wait at the barrier)
    with args.main_process_first(desc="prepare run directory"):
        if rank == 0:
            if work.exists() and not resume:
                shutil.rmtree(work)
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            write_marker(work, "run-work")
            atomic_write_text(work / "run_config.yaml", dump_yaml(cfg))
            atomic_write_text(work / FINGERPRINT_FILE, json.dumps(fingerprint, ensure_ascii=False, indent=1) + "\n")
            if resume_from:
                with (work / "train_log.jsonl").open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"event": "resume", "checkpoint": resume_from, "time": time.time()}) + "\n")

    stopper = _Stopper()
    callbacks = _make_callbacks(stopper, work / "train_log.jsonl" if rank == 0 else None)
    if cfg.early_stopping_patience > 0 and evaluating:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))

    group = cfg.group_by_length
    seed = cfg.seed

    class ParsnerTrainer(Trainer):
        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            if group:
                return LengthGroupedSampler(lengths, self.args.per_device_train_batch_size, seed)
            return super()._get_train_sampler(train_dataset)

        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            # Never reorder evaluation: predictions are matched to windows by position.
            if self.args.world_size <= 1:
                return torch.utils.data.SequentialSampler(eval_dataset)
            return None

        def create_optimizer(self, model: Any = None) -> Any:
            if not sparse:
                return super().create_optimizer(model)
            if self.optimizer is None:
                decay = set(self.get_decay_parameter_names(self.model))
                named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
                groups = [
                    {"params": [p for n, p in named if n in decay], "weight_decay": self.args.weight_decay},
                    {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
                ]
                self.optimizer = make_row_sparse_adamw(groups, self.args.learning_rate, self.args.max_grad_norm)
            return self.optimizer

        def _clip_grad_norm(self, model: Any) -> Any:
            if not sparse:
                return super()._clip_grad_norm(model)
            return clip_mixed_grad_norm(model.parameters(), self.args.max_grad_norm)

        def _get_grad_norm(self, model: Any, grad_norm: Any = None) -> Any:
            if not sparse:
                grad_norm = super()._get_grad_norm(model, grad_norm)
            # (sparse: None when clipping is off: no extra pass over 100M gradients)
            # Checked before the optimiser step, so a non-finite gradient never reaches the weights;
            # the norm is the same on every DDP rank (gradients are all-reduced), so all ranks stop together.
            if grad_norm is not None and not math.isfinite(float(grad_norm)):
                raise _Diverged(self.state.global_step + 1, f"the gradient norm is {float(grad_norm)}")
            return grad_norm

        def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
            loss = super().training_step(model, inputs, num_items_in_batch)
            # One process only: under DDP a rank-local stop would leave the others waiting at the all-reduce.
            if self.args.world_size <= 1 and not bool(torch.isfinite(loss).all()):
                raise _Diverged(self.state.global_step + 1, f"the loss is {float(loss)}")
            return loss

        def _save_checkpoint(self, model: Any, trial: Any = None) -> None:
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            try:
                super()._save_checkpoint(model, trial)
                if self.args.should_save:
                    atomic_write_text(folder / CHECKPOINT_COMPLETE, json.dumps({"step": self.state.global_step}))
            except OSError as exc:
                if self.args.should_save:
                    shutil.rmtree(folder, ignore_errors=True)
                last = _last_checkpoint(ckpt_dir)
                raise ParsnerError(
                    f"cannot write the checkpoint {folder}: {exc.strerror or exc}; the incomplete checkpoint was "
                    f"removed ({'the last complete one is ' + last if last else 'no complete checkpoint yet'}). "
                    "Free space or fix the folder, then run the same command with --resume"
                ) from None

    trainer = ParsnerTrainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        data_collator=PadCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=keep_log_probs,
        callbacks=callbacks,
    )

    stopper.install()
    try:
        output = trainer.train(resume_from_checkpoint=resume_from)
    except _Diverged as exc:
        raise _diverged_error(cfg, exc.step, exc.what, work, ckpt_dir) from None
    finally:
        stopper.restore()
    if stopper.signum is not None:
        trainer.accelerator.wait_for_everyone()
        raise TrainingInterrupted(stopper.signum, work, _last_checkpoint(ckpt_dir))

    final_metrics = trainer.evaluate()
    trainer.accelerator.wait_for_everyone()
    result_metrics = {
        k.removeprefix("eval_"): (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in final_metrics.items()
    }
    best_ckpt = trainer.state.best_model_checkpoint
    train_seconds = float(output.metrics.get("train_runtime", 0.0))
    train_sps = float(output.metrics.get("train_samples_per_second", 0.0))

    if rank == 0:
        unwrapped = trainer.accelerator.unwrap_model(trainer.model)
        unwrapped.get_input_embeddings().sparse = False
        meta = {
            "parsner_version": _version(),
            "max_length": max_length,
            "stride": cfg.stride,
            "constrained_decoding": cfg.constrained_decoding,
            "label_scheme": "IOB2",
            "labels": label_names,
            "label_all_subtokens": cfg.label_all_subtokens,
            "first_subtoken_prediction": True,
            "normalizer": cfg.normalizer,
            "base_model": cfg.model,
            "stand_in": spec.stand_in is not None,
            "stand_in_description": spec.stand_in,
            "selection_metric": cfg.selection_metric,
            "best_checkpoint_step": _step_of(best_ckpt),
        }
        metrics_doc = {
            "split": "validation",
            "dataset": str(cfg.data),
            "selection_metric": cfg.selection_metric,
            "metrics": result_metrics,
            "encoding": encoding,
            "train_runtime_s": train_seconds,
            "train_samples_per_second": train_sps,
            "epochs_trained": trainer.state.epoch,
            "global_step": trainer.state.global_step,
            "stand_in": spec.stand_in,
        }
        _check_finite_weights(unwrapped, cfg, work, ckpt_dir)
        with atomic_dir(final, overwrite=overwrite, kind="run") as tmp:
            unwrapped.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            if normalizer is not None:
                normalizer.save(tmp)
            (tmp / "parsner.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", "utf-8")
            (tmp / "run_config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
            (tmp / "metrics.json").write_text(
                json.dumps(metrics_doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            log_src = work / "train_log.jsonl"
            if log_src.is_file():
                shutil.copyfile(log_src, tmp / "train_log.jsonl")
            else:
                (tmp / "train_log.jsonl").write_text("", encoding="utf-8")
            card = render_model_card(cfg=cfg, meta=meta, metrics=metrics_doc, dataset_name=data_name)
            (tmp / "README.md").write_text(card, encoding="utf-8")
        shutil.rmtree(work, ignore_errors=True)
        _log(f"done in {time.time() - t_start:.0f}s: {final} (validation f1_strict="
             f"{result_metrics.get('f1_strict', float('nan')):.4f}, f1_default="
             f"{result_metrics.get('f1_default', float('nan')):.4f})")
        if spec.stand_in:
            _log(f"reminder: {spec.stand_in}")
    trainer.accelerator.wait_for_everyone()
    return RunResult(
        out_dir=final,
        metrics=result_metrics,
        stand_in=spec.stand_in,
        encoding=encoding,
        train_seconds=train_seconds,
        train_samples_per_second=train_sps,
        resumed_from=resume_from,
        epochs=float(trainer.state.epoch or 0.0),
        steps=int(trainer.state.global_step),
    )


class _Diverged(Exception):
    def __init__(self, step: int, what: str) -> None:
        self.step, self.what = step, what
        super().__init__(what)


def _diverged_error(cfg: RunConfig, step: int | None, what: str, work: Path, ckpt_dir: Path) -> TrainingDiverged:
    last = _last_checkpoint(ckpt_dir)
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


def _check_finite_weights(model: Any, cfg: RunConfig, work: Path, ckpt_dir: Path) -> None:
    """A run is complete only if its weights are finite."""
    import torch

    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise _diverged_error(cfg, None, f"{len(bad)} weight tensor(s) are NaN/inf (e.g. {bad[0]})", work, ckpt_dir)


def run_training(
    config: str | Path | None = None,
    *,
    model: str | None = None,
    data: str | Path | None = None,
    out: str | Path | None = None,
    seed: int | None = None,
    epochs: float | None = None,
    max_train_samples: int | None = None,
    overrides: list[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> RunResult:
    """Config file + direct options + ``key=value`` overrides -> :func:`train` (what the CLI does)."""
    from parsner.config import load_config

    direct = {
        "model": model, "data": None if data is None else str(data), "out": None if out is None else str(out),
        "seed": seed, "epochs": epochs, "max_train_samples": max_train_samples,
    }
    cfg = load_config(config, overrides=direct, sets=overrides)
    return train(cfg, resume=resume, overwrite=overwrite)


def _step_of(ckpt: str | None) -> int | None:
    if not ckpt:
        return None
    try:
        return int(Path(ckpt).name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def _version() -> str:
    from parsner import __version__

    return __version__
