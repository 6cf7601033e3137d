"""CI gates beyond the schema, on mix's machinery: evaluation prompts in the training data, and
exact duplicate pairs.

Each gate takes a :class:`ReadPool` (the files' pairs read for their keys alone, read again where a
gate needs their text) and returns what it found; the caller decides what fails. Memory grows with
the keys, one row per pair, never with the text: ``validate`` stays small on any CI runner.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from prefkit.data.adapters import AdaptOptions
from prefkit.data.columns import ROW
from prefkit.data.convert import SourceCounts, kept_pairs, read_pairs, resolve_all
from prefkit.data.dedupe import (
    DecontaminateConfig,
    Removal,
    _contaminated,
    _exact,
    removal_frame,
    removal_info,
    removals_of,
)
from prefkit.data.pool import KEYS_SCHEMA, Pool, key_columns, local_rows
from prefkit.data.sources import HubSource


class ReadPool(Pool):
    """The pairs of some files as a pool that keeps only its keys: :meth:`batches` reads the files
    again (the gates need the text only for the near-overlap search and a few examples)."""

    def __init__(self, files: list[tuple[str, Path | HubSource]], options: AdaptOptions):
        self.files, self.options = files, options
        keys = [batch.select(key_columns(batch)) for batch in self._read()]
        self.keys = pl.concat(keys or [pl.DataFrame(schema=KEYS_SCHEMA)], how="diagonal_relaxed")

    def _read(self) -> Iterator[pl.DataFrame]:
        first = 0
        for batch in kept_pairs(self.files, None, self.options, True, SourceCounts(source="gates"), []):
            yield batch.with_row_index(ROW, offset=first)
            first += batch.height

    def batches(self, rows: pl.Series | None = None) -> Iterator[pl.DataFrame]:
        """The pool's rows (those in ``rows`` when given), in pool order, read from the files again."""
        if rows is not None and rows.len() == 0:
            return
        wanted = None if rows is None else rows.sort().to_numpy()
        for batch in self._read():
            first = batch[ROW][0] if batch.height else 0
            local = local_rows(wanted, first, first + batch.height)
            if local is None:
                yield batch
            elif local.size:
                yield batch[local]


def read_pool(specs: list[str], options: AdaptOptions = AdaptOptions()) -> tuple[ReadPool, list[str]]:
    """The pairs of ``specs`` (any format convert reads) as a pool, and the file labels."""
    files = resolve_all(specs)
    return ReadPool(files, options), [str(p) for _, p in files]


def prompt_overlap(
    pool: ReadPool, labels: list[str], eval_specs: list[str], threshold: float, seed: int = 0
) -> list[Removal]:
    """Training pairs whose prompt matches an evaluation prompt, exactly or with Jaccard similarity
    of at least ``threshold`` (MinHash LSH, as mix's decontamination), each with the evaluation
    file and line it matches."""
    files = resolve_all(eval_specs)
    eval_pool, _ = read_pairs(files, None, AdaptOptions(), True, SourceCounts(source=",".join(eval_specs)))
    eval_pool = eval_pool.with_row_index(ROW)
    config = DecontaminateConfig(files=eval_specs, threshold=threshold)
    found = _contaminated(pool, pool.keys, eval_pool, config, seed)
    frame = removal_frame(found, removal_info(pool, found), labels, eval_pool, [str(p) for _, p in files])
    return list(removals_of(frame))


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
    pool: ReadPool, labels: list[str], examples: int = 10, max_share: float | None = None
) -> DuplicateShare:
    """How many pairs repeat an earlier pair after NFKC, whitespace and case normalization."""
    found = _exact(pool.keys)
    first = found.head(examples)
    records = list(removals_of(removal_frame(first, removal_info(pool, first), labels)))
    pairs = pool.keys.height
    share = found.height / pairs if pairs else 0.0
    return DuplicateShare(pairs, found.height, records, share=share, max_share=max_share)
