"""CI gates beyond the schema, on mix's machinery: evaluation prompts in the training data, and
exact duplicate pairs.

Each gate takes a pool of canonical pairs (``__row``, ``__file``, ``__line`` and the pair columns,
as :func:`prefkit.data.convert.read_pairs` gives them) and returns what it found; the caller
decides what fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from prefkit.data.adapters import AdaptOptions
from prefkit.data.convert import SourceCounts, read_pairs, resolve_all
from prefkit.data.dedupe import ROW, DecontaminateConfig, Removal, contaminated, exact_duplicates, removal_records


def read_pool(specs: list[str], options: AdaptOptions = AdaptOptions()) -> tuple[pl.DataFrame, list[str]]:
    """The pairs of ``specs`` (any format convert reads) as a pool with ``__row``, and the file labels."""
    files = resolve_all(specs)
    pairs, _ = read_pairs(files, None, options, True, SourceCounts(source=",".join(specs)))
    return pairs.with_row_index(ROW), [str(p) for _, p in files]


def prompt_overlap(
    pool: pl.DataFrame, labels: list[str], eval_specs: list[str], threshold: float, seed: int = 0
) -> list[Removal]:
    """Training pairs whose prompt matches an evaluation prompt, exactly or with Jaccard similarity
    of at least ``threshold`` (MinHash LSH, as mix's decontamination), each with the evaluation
    file and line it matches."""
    eval_pool, eval_labels = read_pool(eval_specs)
    found = contaminated(pool, eval_pool, DecontaminateConfig(files=eval_specs, threshold=threshold), seed)
    return removal_records(found, pool, labels, eval_pool, eval_labels)


@dataclass
class DuplicateShare:
    """The ``max_duplicate_share`` gate: how many pairs repeat an earlier one, against the share allowed."""

    pairs: int
    duplicates: int
    examples: list[Removal]
    """The first duplicates: file and line of the copy and of the pair it repeats."""
    share: float = 0.0
    """``duplicates / pairs`` (0 for no pairs)."""
    max_share: float | None = None
    """The share the gate allows; None when only measured."""

    @property
    def failed(self) -> bool:
        return self.max_share is not None and self.share > self.max_share


def duplicate_share(
    pool: pl.DataFrame, labels: list[str], examples: int = 10, max_share: float | None = None
) -> DuplicateShare:
    """How many pairs repeat an earlier pair after NFKC, whitespace and case normalization."""
    found = exact_duplicates(pool)
    records = removal_records(found.head(examples), pool, labels)
    share = found.height / pool.height if pool.height else 0.0
    return DuplicateShare(pool.height, found.height, records, share=share, max_share=max_share)
