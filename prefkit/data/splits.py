"""Leak-free train/test splits: grouped by normalized prompt, deterministic for a seed."""

from __future__ import annotations

import numpy as np
import polars as pl


def grouped_test_mask(keys: pl.Series, test_size: float, seed: int) -> pl.Series:
    """True for rows assigned to test; every row sharing a key lands on the same side.

    Groups are taken in a seeded random order for as long as the test side stays within
    ``round(test_size * n)`` rows, so one prompt never sits in both splits and the same keys and
    seed always give the same split. With many small groups the test side hits the target almost
    exactly; a large group can leave it a little short, never over.

    ``grouped_test_mask(pl.Series(["a", "a", "b", "c"]), 0.5, seed=0)`` puts both ``"a"`` rows on
    one side and, with this seed, ``"b"`` and ``"c"`` on the other.
    """
    n = len(keys)
    target = round(test_size * n)
    if target == 0 or n == 0:
        return pl.Series("test", [False] * n)
    groups = keys.to_frame("key").group_by("key", maintain_order=True).len()
    order = np.random.default_rng(seed).permutation(groups.height)
    within = np.cumsum(groups["len"].to_numpy()[order]) <= target
    test_keys = groups["key"].gather(order[within])
    return keys.is_in(test_keys.implode()).alias("test")


def grouped_folds(keys: pl.Series, k: int, seed: int) -> pl.Series:
    """Each row's fold (0 to ``k - 1``); every row sharing a key lands in the same fold.

    Groups are dealt to the folds in a seeded random order, one group at a time to the fold with the
    fewest rows so far, so the folds come out about equal in rows and a prompt is never in two.

    >>> grouped_folds(pl.Series(["a", "a", "b", "c", "d", "d"]), 2, seed=0).to_list()
    [1, 1, 0, 0, 0, 0]
    """
    groups = keys.to_frame("key").group_by("key", maintain_order=True).len()
    order = np.random.default_rng(seed).permutation(groups.height)
    sizes, fold_of = [0] * k, {}
    for g in order:
        fold = min(range(k), key=lambda f: (sizes[f], f))
        fold_of[groups["key"][int(g)]] = fold
        sizes[fold] += int(groups["len"][int(g)])
    return keys.replace_strict(fold_of, return_dtype=pl.Int64).alias("fold")
