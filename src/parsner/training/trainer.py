"""The transformers ``Trainer`` as ParsNER runs it: length-bucketed batches, validation in order, a stop on
non-finite loss or gradients before they reach the weights, and checkpoints closed by a completion marker.

This module imports torch and transformers at import time; only the training jobs import it.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from parsner.atomic import atomic_write_text
from parsner.errors import ParsnerError
from parsner.training.batching import LengthBucketSampler
from parsner.training.checkpoints import CHECKPOINT_COMPLETE, last_checkpoint

#: The private ``Trainer`` methods :class:`ParsnerTrainer` overrides or calls. transformers may rename them in
#: any release; ``tests/test_trainer.py`` checks that each still exists with the arguments used here.
PRIVATE_HOOKS: dict[str, tuple[str, ...]] = {
    "_get_train_sampler": ("train_dataset",),
    "_get_eval_sampler": ("eval_dataset",),
    "_get_grad_norm": ("model", "grad_norm"),
    "_save_checkpoint": ("model", "trial"),
    "_get_output_dir": ("trial",),
}


class Diverged(Exception):
    """The loss or the gradient norm became non-finite at ``step`` (turned into TrainingDiverged by the job)."""

    def __init__(self, step: int, what: str) -> None:
        self.step, self.what = step, what
        super().__init__(what)


class ParsnerTrainer(Trainer):
    """``Trainer`` plus: batches from :class:`LengthBucketSampler` (``window_lengths``), validation windows in
    their given order, divergence checks, and checkpoints marked complete only once fully written."""

    def __init__(self, *args: Any, window_lengths: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window_lengths = window_lengths  # None: the Trainer's own random sampler

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        if self.window_lengths is not None:
            return LengthBucketSampler(self.window_lengths, self.args.per_device_train_batch_size, self.args.seed)
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
            raise Diverged(self.state.global_step + 1, f"the gradient norm is {float(grad_norm)}")
        return grad_norm

    def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
        loss = super().training_step(model, inputs, num_items_in_batch)
        # One process only: under DDP a rank-local stop would leave the others waiting at the all-reduce.
        if self.args.world_size <= 1 and not bool(torch.isfinite(loss).all()):
            raise Diverged(self.state.global_step + 1, f"the loss is {float(loss)}")
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
