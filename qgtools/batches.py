"""In-memory mini-batches: the shuffled order of each epoch, shared by :func:`qgtools.train.fit`
and :func:`qgtools.population.fit_population`, and :class:`TensorBatches`, the batches ``fit``'s
Lightning data module serves (torch only, no Lightning)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["TensorBatches", "batch_order"]


def batch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The shuffled order of ``n`` training jets in ``epoch`` for training seed ``seed``: what
    :class:`TensorBatches` (so ``fit``) and a population's members use."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator)


class TensorBatches:
    """Mini-batches sliced from in-memory tensors (no per-sample collate).

    Each pass draws a permutation from ``seed`` and the pass number, so epochs differ but a
    run is reproducible. With ``shuffle=False`` batches come in order. With
    ``batches_per_step=k`` each item is k consecutive mini-batches in one chunk (the model
    splits it again), which cuts the per-step overhead of a training framework.
    """

    def __init__(
        self,
        X: np.ndarray | torch.Tensor,
        y: np.ndarray | torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        batches_per_step: int = 1,
    ) -> None:
        if batch_size < 1 or batches_per_step < 1:
            raise ValueError(
                f"batch_size={batch_size} and batches_per_step={batches_per_step} must be positive."
            )
        self.batches_per_step = batches_per_step
        self.X = torch.as_tensor(X, dtype=torch.float32)
        self.y = torch.as_tensor(y, dtype=torch.float32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.y) // (self.batch_size * self.batches_per_step))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.shuffle:
            order = batch_order(self.seed, self.epoch, len(self.y))
            X, y = self.X[order], self.y[order]
        else:
            X, y = self.X, self.y
        self.epoch += 1
        step = self.batch_size * self.batches_per_step
        for start in range(0, len(y), step):
            yield X[start : start + step], y[start : start + step]
