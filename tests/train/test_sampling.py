"""Epoch sampling: repeat factors, reproducibility, DDP shards."""

from collections import Counter

import numpy as np
import pytest

from facespot.train.sampling import EpochSampler


def test_repeat_factors_give_exact_counts_and_fixed_length():
    # 4 images shown 3x, 10 images at 0.5 (5 of them per epoch), 2 images once
    repeats = [3.0] * 4 + [0.5] * 10 + [1.0] * 2
    s = EpochSampler(repeats, seed=1)
    assert len(s) == 12 + 5 + 2
    seen_half = set()
    for epoch in range(4):
        s.set_epoch(epoch)
        items = list(s)
        assert len(items) == len(s)
        counts = Counter(i for _, i, _ in items)
        assert all(counts[i] == 3 for i in range(4))
        assert sum(counts[i] for i in range(4, 14)) == 5 and all(counts[i] <= 1 for i in range(4, 14))
        assert counts[14] == counts[15] == 1
        # the copies of a repeated image are told apart (they get different augmentation)
        assert sorted(k for _, i, k in items if i == 0) == [0, 1, 2]
        assert all(e == epoch for e, _, _ in items)
        seen_half |= {i for i in range(4, 14) if counts[i]}
    assert len(seen_half) > 5  # a fresh half each epoch


def test_same_seed_and_epoch_same_order_other_epoch_other_order():
    a, b = EpochSampler([1.0] * 50, seed=7), EpochSampler([1.0] * 50, seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert [i for _, i, _ in a] != [i for _, i, _ in b]


def test_ddp_ranks_split_one_order_evenly():
    repeats = [1.0] * 23
    whole = EpochSampler(repeats, seed=0)
    ranks = [EpochSampler(repeats, seed=0, rank=r, world_size=3) for r in range(3)]
    for s in ranks + [whole]:
        s.set_epoch(2)
    parts = [[i for _, i, _ in s] for s in ranks]
    assert [len(p) for p in parts] == [7, 7, 7]  # 23 // 3, the tail dropped as DistributedSampler does
    assert not set(parts[0]) & set(parts[1]) and not set(parts[1]) & set(parts[2])
    order = [i for _, i, _ in whole]
    assert sorted(sum(parts, [])) == sorted(order[:21])


def test_bad_repeats_are_refused():
    with pytest.raises(ValueError):
        EpochSampler([1.0, -1.0])
    with pytest.raises(ValueError):
        EpochSampler([np.nan])
