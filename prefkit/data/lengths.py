"""Lengths of pairs, and the length bias of a preference set: is the chosen reply simply the longer one?

UltraFeedback's chosen replies are known to run long (SimPO, issue 20), and a judge or a source that
prefers length teaches length. :func:`length_gap` measures it on any pairs file, in words and
punctuation marks by default or in a tokenizer's tokens, with a bootstrap interval, so a
length-biased source or judge shows before training (``prefkit card`` and ``validate --json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from prefkit.data.messages import messages_text
from prefkit.results import Result

TOKEN_PATTERN = r"\w+|[^\w\s]"
FIELDS = ("prompt", "chosen", "rejected")
TokenCounter = Callable[[pl.DataFrame], dict[str, list[int]]]
"""Rows of a canonical frame to their token counts: ``{"prompt": [...], "chosen": [...], "rejected": [...]}``."""


def text_of(column: str, dtype: pl.DataType) -> pl.Expr:
    """The text of a canonical column in either style."""
    if dtype == pl.String:
        return pl.col(column)
    return messages_text(pl.col(column)) if column == "prompt" else pl.col(column).list.last().struct.field("content")


def word_counts(frame: pl.DataFrame) -> dict[str, list[int]]:
    """The default token counter: words and punctuation marks of each field.

    >>> word_counts(pl.DataFrame({"prompt": ["2 + 2?"], "chosen": ["It is 4."], "rejected": ["5"]}))
    {'prompt': [4], 'chosen': [4], 'rejected': [1]}
    """
    counted = frame.select(
        text_of(c, frame.schema[c]).str.count_matches(TOKEN_PATTERN).cast(pl.Int64).alias(c) for c in FIELDS
    )
    return {c: counted[c].to_list() for c in FIELDS}


@dataclass
class LengthGap(Result):
    """How much longer the chosen reply is than the rejected one: the share of pairs whose chosen
    reply is the longer, and the mean gap (chosen minus rejected) with its bootstrap 95% interval."""

    pairs: int
    unit: str
    chosen_longer: float | None
    mean_gap: float | None
    gap_low: float | None
    gap_high: float | None


def length_gap(
    frame: pl.DataFrame, counter: TokenCounter | None = None, unit: str = "words", seed: int = 0
) -> LengthGap:
    """The :class:`LengthGap` of a pairs frame (``counter`` counts tokens; default: words).

    >>> frame = pl.DataFrame({"prompt": ["q"] * 4, "chosen": ["a b c", "a b", "a", "a b c d"], "rejected": ["a"] * 4})
    >>> gap = length_gap(frame)
    >>> gap.chosen_longer, gap.mean_gap, gap.gap_low <= gap.mean_gap <= gap.gap_high
    (0.75, 1.5, True)
    """
    if not frame.height:
        return LengthGap(0, unit, None, None, None, None)
    counts = (counter or word_counts)(frame)
    return gap_of_counts(counts["chosen"], counts["rejected"], unit, seed)


BOOTSTRAP_MAX_PAIRS = 100_000
"""Above this many pairs the interval is the normal one (mean ± 1.96 standard errors): 2,000
resamples of millions of pairs cost a minute, and at this size the two agree to a hundredth of a word."""
_DRAWS = 2000
_DRAW_ELEMENTS = 8_000_000  # resampled values held at once: 64 MB, whatever the size of the file


def gap_of_counts(chosen, rejected, unit: str = "words", seed: int = 0) -> LengthGap:
    """The :class:`LengthGap` of counted replies: a percentile bootstrap (2,000 resamples, drawn a
    few at a time so memory stays flat) up to :data:`BOOTSTRAP_MAX_PAIRS` pairs, the normal interval above.

    >>> gap_of_counts([3, 1], [1, 1]).chosen_longer
    0.5
    """
    gap = np.asarray(chosen, dtype=float) - np.asarray(rejected, dtype=float)
    if not len(gap):
        return LengthGap(0, unit, None, None, None, None)
    if interval_name(len(gap)) == "normal":
        half = 1.96 * float(gap.std(ddof=1)) / np.sqrt(len(gap))
        low, high = gap.mean() - half, gap.mean() + half
    else:
        low, high = np.percentile(_bootstrap_means(gap, seed), [2.5, 97.5])
    return LengthGap(
        pairs=len(gap),
        unit=unit,
        chosen_longer=round(float((gap > 0).mean()), 4),
        mean_gap=round(float(gap.mean()), 2),
        gap_low=round(float(low), 2),
        gap_high=round(float(high), 2),
    )


def _bootstrap_means(gap: np.ndarray, seed: int) -> np.ndarray:
    """The means of 2,000 resamples of ``gap``, the same as drawing them in one ``(2000, n)`` array
    (numpy's stream is consumed value by value; an even number of rows per step keeps it aligned)."""
    rng = np.random.default_rng(seed)
    step = max(2, _DRAW_ELEMENTS // len(gap) // 2 * 2)
    means = [
        gap[rng.integers(0, len(gap), size=(min(step, _DRAWS - start), len(gap)))].mean(axis=1)
        for start in range(0, _DRAWS, step)
    ]
    return np.concatenate(means)


def interval_name(pairs: int) -> str:
    """Which 95% interval :func:`gap_of_counts` gives for this many pairs.

    >>> interval_name(2312), interval_name(400_000)
    ('bootstrap', 'normal')
    """
    return "bootstrap" if pairs <= BOOTSTRAP_MAX_PAIRS else "normal"
