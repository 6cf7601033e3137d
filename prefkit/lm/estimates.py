"""Estimates with intervals: a statistic over pairs or prompts and its percentile bootstrap 95% interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Estimate:
    """A statistic and its 95% interval; printed as ``0.742 (0.667–0.817)``.

    >>> print(Estimate(0.7416666, 0.6666666, 0.8166666))
    0.742 (0.667–0.817)
    """

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} ({self.low:.3f}–{self.high:.3f})"


def bootstrap(values: np.ndarray, statistic=np.mean, n: int = 2000, seed: int = 0) -> Estimate:
    """The statistic with a percentile bootstrap 95% interval over pairs."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n, len(values)))
    stats = statistic(values[draws], axis=1)
    return Estimate(float(statistic(values)), float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5)))


def wins(better: np.ndarray, worse: np.ndarray) -> np.ndarray:
    """1 where ``better > worse``, 0.5 on a tie, else 0.

    >>> wins(np.array([2.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0])).tolist()
    [1.0, 0.5, 0.0]
    """
    return (better > worse) + 0.5 * (better == worse)
