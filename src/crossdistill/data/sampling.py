"""Samplers that decide which slices make up each training batch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class SiteBalancedSampler(Sampler[int]):
    """Indices in batches that cover the sites evenly, for episodic (meta-learning) methods.

    Batch ``b`` (``batch_size`` consecutive indices) takes its items from the sites in a
    random order, cycling through them: item ``i`` comes from site ``order_b[i % S]``, drawn
    uniformly (with replacement) among that site's slices. A batch of at least ``S`` items
    therefore holds every site; a smaller one holds ``batch_size`` distinct sites.

    Args:
        sites: the site of every dataset item, in dataset order.
        num_batches: batches per epoch.
        batch_size: items per batch.
        generator: the source of randomness (seed it for reproducible epochs).
    """

    def __init__(
        self,
        sites: Sequence[str],
        num_batches: int,
        batch_size: int,
        generator: torch.Generator | None = None,
    ) -> None:
        if num_batches < 1 or batch_size < 1:
            raise ValueError(f"num_batches, batch_size must be >= 1: {num_batches}, {batch_size}")
        groups: dict[str, list[int]] = {}
        for index, site in enumerate(sites):
            groups.setdefault(site, []).append(index)
        if not groups:
            raise ValueError("sites is empty: no items to sample")
        self.groups = [torch.tensor(groups[s]) for s in sorted(groups)]
        self.num_batches = num_batches
        self.batch_size = batch_size
        self.generator = generator

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        count = len(self.groups)
        for _ in range(self.num_batches):
            order = torch.randperm(count, generator=self.generator)
            for i in range(self.batch_size):
                group = self.groups[int(order[i % count])]
                pick = torch.randint(len(group), (1,), generator=self.generator)
                yield int(group[pick])
