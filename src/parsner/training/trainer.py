"""The transformers ``Trainer`` as ParsNER runs it: length-bucketed batches, validation in order, a stop on
non-finite loss or gradients before they reach the weights, and checkpoints closed by a completion marker.

This module imports torch and transformers at import time; only the training jobs import it.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from parsner.atomic import atomic_write_text
from parsner.errors import ParsnerError
from parsner.training.batching import LengthBucketSampler
from parsner.training.jobs import CHECKPOINT_COMPLETE, TrainingDiverged, last_checkpoint, step_of

log = logging.getLogger(__name__)

#: The private ``Trainer`` methods :class:`ParsnerTrainer` overrides or calls. transformers may rename them in
#: any release; ``tests/training/test_batching.py`` checks that each still exists with the arguments used here.
PRIVATE_HOOKS: dict[str, tuple[str, ...]] = {
    "_get_train_sampler": ("train_dataset",),
    "_get_eval_sampler": ("eval_dataset",),
    "_get_grad_norm": ("model", "grad_norm"),
    "_save_checkpoint": ("model", "trial"),
    "_get_output_dir": ("trial",),
}


class ParsnerTrainer(Trainer):
    """``Trainer`` plus: batches from a length-bucketed sampler, validation windows in their given order,
    divergence checks, checkpoints marked complete only once fully written, and one readable line per evaluation
    instead of the Trainer's raw log dicts.

    What differs between the jobs comes in as arguments: ``window_lengths`` (the training windows' lengths, for
    ``sampler_class``: :class:`LengthBucketSampler` or a subclass of it; None: the Trainer's own random sampler),
    and ``loss_fn(model, inputs) -> (loss, outputs)`` (None: the model's loss).
    """

    def __init__(self, *args: Any, window_lengths: list[int] | None = None,
                 sampler_class: type[LengthBucketSampler] = LengthBucketSampler,
                 loss_fn: Callable[[Any, Any], tuple[Any, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window_lengths, self.sampler_class, self.loss_fn = window_lengths, sampler_class, loss_fn
        if loss_fn is not None:
            self.model_accepts_loss_kwargs = False  # our losses are batch means
        # The Trainer prints every log dict (to the progress bar or stdout); the evaluation line replaces them.
        self.remove_callback(PrinterCallback)
        if self.pop_callback(ProgressCallback) is not None:
            self.add_callback(QuietProgress)
        self.add_callback(EvaluationLine())

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        if self.window_lengths is not None:
            return self.sampler_class(self.window_lengths, self.args.per_device_train_batch_size, self.args.seed)
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        # Never reorder evaluation: predictions are matched to windows by position.
        if self.args.world_size <= 1:
            return torch.utils.data.SequentialSampler(eval_dataset)
        return None

    def _get_grad_norm(self, model: Any, grad_norm: Any = None) -> Any:
        grad_norm = super()._get_grad_norm(model, grad_norm)
        # Checked before the optimiser step, so a non-finite gradient never reaches the weights; the norm is
        # the same on every DDP rank (gradients are all-reduced), so all ranks stop together.
        if grad_norm is not None and not math.isfinite(float(grad_norm)):
            raise _diverged(self.state.global_step + 1, f"the gradient norm is {float(grad_norm)}")
        return grad_norm

    def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
        loss = super().training_step(model, inputs, num_items_in_batch)
        # One process only: under DDP a rank-local stop would leave the others waiting at the all-reduce.
        if self.args.world_size <= 1 and not bool(torch.isfinite(loss).all()):
            raise _diverged(self.state.global_step + 1, f"the loss is {float(loss)}")
        return loss

    def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, **kwargs: Any) -> Any:
        if self.loss_fn is None:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)
        loss, outputs = self.loss_fn(model, inputs)
        return (loss, outputs) if return_outputs else loss

    def _save_checkpoint(self, model: Any, trial: Any = None) -> None:
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        try:
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                atomic_write_text(folder / CHECKPOINT_COMPLETE, json.dumps({"step": self.state.global_step}))
        except OSError as exc:
            if self.args.should_save:
                shutil.rmtree(folder, ignore_errors=True)
            last = last_checkpoint(folder.parent)
            raise ParsnerError(
                f"cannot write the checkpoint {folder}: {exc.strerror or exc}; the incomplete checkpoint was "
                f"removed ({'the last complete one is ' + last if last else 'no complete checkpoint yet'}). "
                "Free space or fix the folder, then run the same command with --resume"
            ) from None


def keep_log_probs(logits: Any, labels: Any) -> Any:
    """``preprocess_logits_for_metrics``: log-probabilities rather than argmax ids, so validation decodes exactly
    like inference (constrained when configured); float32 keeps the gathered arrays small."""
    return torch.log_softmax(logits.float(), dim=-1)


def _diverged(step: int, what: str) -> TrainingDiverged:
    """Bare: :func:`parsner.training.jobs.fit` turns it into the full message (last checkpoint, settings)."""
    return TrainingDiverged(f"training diverged at optimiser step {step}: {what}", step=step, reason=what)


class QuietProgress(ProgressCallback):
    """The Trainer's progress bars without the log dicts it writes under them."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        return None


class EvaluationLine(TrainerCallback):
    """One line per evaluation: epoch, the last training loss, the validation loss and F1 (what was computed);
    after training, the evaluation of the model kept (the best checkpoint, where one is selected)."""

    trained = False

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trained = True

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not metrics:
            return
        if self.trained:
            best = step_of(state.best_model_checkpoint)
            parts = [f"the model kept (step {best if best is not None else state.global_step})"]
        else:
            train_loss = next((r["loss"] for r in reversed(state.log_history) if "loss" in r), None)
            parts = [f"epoch {state.epoch or 0:.2f} (step {state.global_step})"]
            if train_loss is not None:
                parts.append(f"loss {train_loss:.4f}")
        for key, name in (("eval_loss", "validation loss"), ("eval_f1_strict", "validation F1 (strict)"),
                          ("eval_f1_default", "F1 (default)")):
            value = metrics.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                parts.append(f"{name} {value:.4f}")
        log.info(", ".join(parts))
