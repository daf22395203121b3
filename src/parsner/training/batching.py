"""Batches for training: length-bucketed order that depends only on (seed, epoch), and dynamic padding.

* :class:`LengthBucketSampler` — not transformers' ``LengthGroupedSampler`` (which draws its randomness from
  the global RNG): here the order is a pure function of ``(seed, epoch)``, so a run resumed mid-epoch sees the
  same batches as the uninterrupted run, and every DDP rank agrees on it. Batches of similar length waste
  little padding, which is where most of the CPU training speed comes from.
* :class:`PadCollator` — pads a batch to its longest window (labels with -100), nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

IGNORE_INDEX = -100


class LengthBucketSampler:
    """Batches of similar length, in an order that depends only on (seed, epoch).

    The indices are shuffled, cut into mega-batches of ``mega * batch_size``, sorted by length inside
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

    def batches(self) -> list[list[int]]:
        """This epoch's batches of indices, in order."""
        import torch

        if not self.lengths:
            return []
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
        return batches

    def __iter__(self) -> Iterator[int]:
        for b in self.batches():
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
        labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long) if "labels" in features[0] else None
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
