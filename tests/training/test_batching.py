"""Training batches (parsner.training.batching) and the private Trainer hooks ParsnerTrainer relies on."""

from __future__ import annotations

import inspect
import random

import pytest

from parsner.training.batching import IGNORE_INDEX, LengthBucketSampler, PadCollator


def _lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(3, 120) for _ in range(n)]


def test_sampler_order_depends_only_on_seed_and_epoch() -> None:
    lengths = _lengths(500)
    a, b = LengthBucketSampler(lengths, 8, seed=3), LengthBucketSampler(lengths, 8, seed=3)
    random.seed(99)  # the global RNGs must not matter
    import torch

    torch.manual_seed(12345)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    a.set_epoch(1)
    assert list(a) == list(b)
    assert list(LengthBucketSampler(lengths, 8, seed=4)) != list(b)


def test_sampler_visits_every_index_once_in_length_buckets() -> None:
    lengths = _lengths(1000, seed=1)
    sampler = LengthBucketSampler(lengths, 16, seed=0, mega=10)
    batches = sampler.batches()
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000)) and len(sampler) == 1000
    assert lengths[batches[0][0]] == max(lengths)  # the longest batch first: memory errors show at once
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(spread) / len(spread) < 40  # random batches of 16 spread over ~100 (3..120)
    assert LengthBucketSampler([], 4, seed=0).batches() == []


def test_collator_pads_ids_mask_and_labels() -> None:
    batch = PadCollator(pad_id=0)([
        {"input_ids": [2, 7, 3], "labels": [IGNORE_INDEX, 1, IGNORE_INDEX]},
        {"input_ids": [2, 5, 6, 9, 3], "labels": [IGNORE_INDEX, 2, 0, 1, IGNORE_INDEX]},
    ])
    assert batch["input_ids"].tolist() == [[2, 7, 3, 0, 0], [2, 5, 6, 9, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist()[0] == [IGNORE_INDEX, 1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
    assert "labels" not in PadCollator(1)([{"input_ids": [4]}])


@pytest.mark.parametrize("hook", ["_get_train_sampler", "_get_eval_sampler", "_get_grad_norm", "_save_checkpoint",
                                  "_get_output_dir"])
def test_the_private_trainer_hooks_still_exist(hook: str) -> None:
    """ParsnerTrainer overrides or calls these; a transformers release that renames one fails here, loudly."""
    from transformers import Trainer

    from parsner.training.trainer import PRIVATE_HOOKS

    assert hasattr(Trainer, hook), f"transformers.Trainer.{hook} is gone: update parsner.training.trainer"
    params = list(inspect.signature(getattr(Trainer, hook)).parameters)[1:]
    assert params[: len(PRIVATE_HOOKS[hook])] == list(PRIVATE_HOOKS[hook]), (hook, params)
