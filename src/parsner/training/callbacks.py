"""Trainer callbacks every ParsNER training job uses: stop on a signal after a checkpoint (the flag is
:class:`parsner.training.jobs.SignalStopper`'s), per-step seeds, a JSONL log, and (for tests) fault injection at a
chosen step."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError


def make_callbacks(stopper: Any, log_path: Path | None) -> list[Any]:
    """``stopper``: a :class:`parsner.training.jobs.SignalStopper` (its ``signum`` is set by the signal handler)."""
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
