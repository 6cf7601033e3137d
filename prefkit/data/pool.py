"""The pool that ``mix`` and ``dedupe`` work on: canonical pairs on disk, their keys in memory.

A pool is the rows of every source in priority order, each with its position ``__row``. Dedupe,
sampling and the split need only a few values per row, so a :class:`SpilledPool` keeps just those
in memory (its ``keys``: position, source, file, line, id, a 128-bit hash of the normalized pair and
of the normalized prompt, and the margin that ranks pairs of one prompt), and writes the rows
themselves to Arrow IPC files a batch at a time. The steps that need the text (near-duplicate
search, decontamination, writing) read the batches back in order, and :meth:`SpilledPool.gather`
puts rows into any order (a shuffled split) through buckets on disk, one bucket in memory at a
time. Memory then grows with the keys, not with the text.

:class:`FramePool` is the same interface over a frame already in memory: what the dedupe functions
take from tests and small callers.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
import polars as pl

from prefkit.data.adapters import AdaptOptions, Format, get_format
from prefkit.data.columns import FILE, LINE, ROW, SOURCE
from prefkit.data.convert import SourceCounts, kept_pairs
from prefkit.data.keys import exact_key, near_text, prompt_hash, ranking_margin, signatures
from prefkit.data.sources import HubSource
from prefkit.progress import ReportProgress

EXACT = "__exact"
"""The pair's exact-duplicate key (:func:`~prefkit.data.keys.exact_key`)."""
PROMPT = "__prompt"
"""A 128-bit hash of the normalized prompt (:func:`~prefkit.data.keys.prompt_key`): prompt dedupe and splits group by it."""
MARGIN = "__margin"
"""How strongly the pair is preferred (:func:`~prefkit.data.keys.ranking_margin`): prompt dedupe keeps the largest."""
POSITION = "__position"
"""A row's place in the order :meth:`SpilledPool.gather` writes."""

KEYS_SCHEMA = {
    ROW: pl.UInt32,
    SOURCE: pl.Int32,
    FILE: pl.Int32,
    LINE: pl.Int64,
    "id": pl.String,
    "source": pl.String,
    EXACT: pl.UInt128,
    PROMPT: pl.UInt128,
    MARGIN: pl.Float64,
}
"""The keys of a pool with no pairs (those of a pool with pairs have the same columns, ``__source`` in a mix)."""

BUCKET_BYTES = 64 * 2**20
"""About how much of the pool :meth:`SpilledPool.gather` holds at once."""


def key_columns(frame: pl.DataFrame) -> list[pl.Expr]:
    """The expressions of a pool's keys: its hashes and margin, and the bookkeeping columns the frame has.

    >>> from prefkit.data.keys import _example_pool
    >>> keys = _example_pool().select(key_columns(_example_pool()))
    >>> keys.columns, keys[EXACT][0] == keys[EXACT][1], keys[MARGIN].to_list()
    (['__row', '__exact', '__prompt', '__margin'], True, [-1.0, 1.0, -1.0])
    """
    carried = [c for c in (SOURCE, FILE, LINE, "id", "source") if c in frame.columns]
    return [
        pl.col(ROW),
        *(pl.col(c) for c in carried),
        exact_key().alias(EXACT),
        prompt_hash().alias(PROMPT),
        ranking_margin(frame.columns).alias(MARGIN),
    ]


class Pool:
    """What the dedupe steps read of a pool: ``keys``, the rows a batch at a time, and their signatures."""

    keys: pl.DataFrame

    def batches(self, rows: pl.Series | None = None) -> Iterator[pl.DataFrame]:
        raise NotImplementedError

    def signed_batches(
        self, rows: pl.Series | None, fields: str, ngram: int, num_perm: int, seed: int
    ) -> Iterator[tuple[list[int], list]]:
        """Each batch's rows (those in ``rows``) with tokens and their MinHash signatures
        (:func:`~prefkit.data.keys.signatures` of :func:`~prefkit.data.keys.near_text`), in pool order."""
        for batch in self.batches(rows):
            yield signatures(batch, near_text(fields), ngram, num_perm, seed)


class FramePool(Pool):
    """A pool held whole in memory, with the keys a :class:`SpilledPool` keeps.

    >>> from prefkit.data.keys import _example_pool
    >>> pool = FramePool(_example_pool())
    >>> pool.keys.height, [b.height for b in pool.batches(pl.Series([0, 2], dtype=pl.UInt32))]
    (3, [2])
    """

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame
        self.keys = frame.select(key_columns(frame))

    def batches(self, rows: pl.Series | None = None) -> Iterator[pl.DataFrame]:
        """The pool's rows (those in ``rows`` when given), in pool order."""
        yield self.frame if rows is None else self.frame.filter(pl.col(ROW).is_in(rows.implode()))

    def gather(self, order: pl.DataFrame) -> Iterator[pl.DataFrame]:
        """The rows ``order[ROW]`` names, in that order, with ``order``'s other columns replacing the row's own."""
        yield _with_columns_of(self.frame, order)


class SpilledPool(Pool):
    """A pool written to Arrow IPC files in ``folder`` batch by batch (:meth:`add`); only ``keys`` stays in memory.

    Use it as a context manager: the folder and everything in it is removed on leaving, error or not.

    >>> from prefkit.data.keys import _example_pool
    >>> import tempfile
    >>> with SpilledPool(tempfile.mkdtemp()) as pool:
    ...     pool.add(_example_pool().drop(ROW).head(2), source=0)
    ...     pool.add(_example_pool().drop(ROW).tail(1), source=1)
    ...     order = pl.DataFrame({ROW: pl.Series([2, 0], dtype=pl.UInt32)})
    ...     [(b[ROW].to_list(), b[SOURCE].to_list()) for b in pool.gather(order)]
    [([2, 0], [1, 0])]
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(tempfile.mkdtemp(prefix=".prefkit-pool-", dir=folder))
        self.spilled: list[tuple[Path, int, int]] = []  # (file, first row, row after the last)
        self.schemas: list[pl.DataFrame] = []  # an empty frame of each distinct batch schema, in order
        self.key_batches: list[pl.DataFrame] = []
        self.row_bytes = 0
        self.rows = 0
        self._keys: pl.DataFrame | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def add(self, batch: pl.DataFrame, source: int = 0) -> None:
        """Appends a batch of canonical pairs (with ``__file`` and ``__line``) from mix source ``source``."""
        self.adopt(spill(batch, source, self.folder / f"{len(self.spilled):06d}.arrow"))

    def adopt(self, spilled: SpilledBatch) -> None:
        """Appends a batch :func:`spill` wrote (here or in another process), numbering its rows after the pool's."""
        # A batch with no kept rows still brings its columns, as it would to one concatenated frame.
        if not any(spilled.columns.schema == s.schema for s in self.schemas):
            self.schemas.append(spilled.columns)
        if spilled.rows == 0:
            return
        self.spilled.append((spilled.path, self.rows, self.rows + spilled.rows))
        self.key_batches.append(spilled.keys.with_columns((pl.col(ROW) + self.rows).cast(pl.UInt32)))
        self.row_bytes += spilled.size
        self.rows += spilled.rows
        self._keys = None

    def read(self, jobs: list[ReadJob], progress: ReportProgress | None = None) -> None:
        """Reads each job's files through :func:`~prefkit.data.convert.kept_pairs` into the pool, in order."""
        for job in jobs:
            batches = kept_pairs(
                job.files,
                job.forced(),
                job.options,
                job.keep_ties,
                job.counts,
                job.rejects,
                job.first_file,
                progress,
                job.names,
            )
            for batch in batches:
                self.add(batch, job.source)

    @property
    def keys(self) -> pl.DataFrame:
        """One row per pair: ``__row``, ``__source``, ``__file``, ``__line``, ``id``, ``source`` and the keys."""
        if self._keys is None:
            batches = self.key_batches or [pl.DataFrame(schema=KEYS_SCHEMA)]
            # Chunks kept as they are: a rechunk would hold every key twice for a moment.
            self._keys = pl.concat(batches, how="diagonal_relaxed", rechunk=False)
            self.key_batches = [self._keys]
        return self._keys

    def drop_keys(self) -> None:
        """Frees the keys once a caller has taken what it needs of them; the batches stay readable."""
        self.key_batches, self._keys = [], None

    @property
    def schema(self) -> pl.DataFrame:
        """An empty frame with the columns and types of all batches together, as concatenating them would give."""
        return pl.concat(self.schemas, how="diagonal_relaxed")

    def batches(self, rows: pl.Series | None = None, aligned: bool = False) -> Iterator[pl.DataFrame]:
        """The spilled batches in pool order, only the rows in ``rows`` (sorted) when given; ``aligned``
        gives every batch the pool's whole :attr:`schema`."""
        wanted = None if rows is None else rows.sort().to_numpy()
        schema = self.schema if aligned else None
        for path, first, end in self.spilled:
            local = local_rows(wanted, first, end)
            if local is not None and not local.size:
                continue
            batch = read_spilled(path, first)
            batch = batch if local is None else batch[local]
            yield pl.concat([schema, batch], how="diagonal_relaxed") if aligned else batch

    def gather(self, order: pl.DataFrame) -> Iterator[pl.DataFrame]:
        """The rows ``order[ROW]`` names (a row may come more than once), in that order, a bucket at a
        time, each with ``order``'s other columns replacing the row's own.

        One pass over the batches sends each wanted row to the bucket of its place in ``order``; each
        bucket is then read, sorted and yielded. Rows come aligned to the pool's :attr:`schema`.
        """
        if order.height == 0:
            yield _with_columns_of(self.schema, order)
            return
        import pyarrow as pa

        per_row = max(1, self.row_bytes // max(1, self.rows))
        bucket_rows = max(1_000, BUCKET_BYTES // per_row)
        placed = order.with_row_index(POSITION).with_columns((pl.col(POSITION) // bucket_rows).alias("__bucket"))
        placed = placed.sort(ROW)
        placed_rows = placed[ROW].to_numpy()
        buckets = int(placed["__bucket"].max()) + 1
        folder = Path(tempfile.mkdtemp(prefix="gather-", dir=self.folder))
        writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        schema = self.schema
        try:
            for path, first, end in self.spilled:
                lo, hi = np.searchsorted(placed_rows, [first, end])
                if lo == hi:
                    continue
                batch = pl.concat([schema, read_spilled(path, first)], how="diagonal_relaxed")
                here = _with_columns_of(batch, placed[lo:hi])
                for (bucket,), piece in here.partition_by("__bucket", as_dict=True).items():
                    table = piece.drop("__bucket").to_arrow()
                    if bucket not in writers:
                        writers[bucket] = pa.ipc.new_stream(str(folder / f"{bucket:06d}.arrow"), table.schema)
                    writers[bucket].write_table(table)
            for writer in writers.values():
                writer.close()
            writers.clear()
            for bucket in range(buckets):
                # polars reads the bucket itself, so one allocator holds the rows, not pyarrow's too.
                yield pl.read_ipc_stream(folder / f"{bucket:06d}.arrow").sort(POSITION).drop(POSITION)
        finally:
            for writer in writers.values():
                writer.close()
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class SpilledBatch:
    """A batch :func:`spill` wrote, and what a pool keeps of it."""

    path: Path
    rows: int
    columns: pl.DataFrame
    """An empty frame of the batch's columns (``__row`` and ``__source`` with them)."""
    keys: pl.DataFrame
    """The batch's keys, its rows numbered from 0."""
    size: int
    """The batch's estimated size in memory, in bytes."""


def spill(batch: pl.DataFrame, source: int, path: Path) -> SpilledBatch:
    """Writes a batch of mix source ``source`` to ``path`` (Arrow IPC, lz4) and computes its keys.

    The file holds no ``__row``: a row's number depends on the batches before it, which the pool
    that adopts the batch knows and the process that spilled it may not.
    """
    batch = batch.with_columns(pl.lit(source, pl.Int32).alias(SOURCE)).with_row_index(ROW)
    if batch.height:
        batch.drop(ROW).write_ipc(path, compression="lz4")
    return SpilledBatch(path, batch.height, batch.clear(), batch.select(key_columns(batch)), batch.estimated_size())


def local_rows(wanted: np.ndarray | None, first: int, end: int) -> np.ndarray | None:
    """The places, within a batch holding rows ``first`` to ``end - 1``, of the sorted pool rows
    ``wanted`` that fall in it (None for every row, when ``wanted`` is None).

    >>> local_rows(np.array([1, 5, 6, 9]), 5, 8).tolist(), local_rows(None, 5, 8)
    ([0, 1], None)
    """
    if wanted is None:
        return None
    lo, hi = np.searchsorted(wanted, [first, end])
    return wanted[lo:hi] - first


def read_spilled(path: Path, first: int) -> pl.DataFrame:
    """A spilled batch, its rows numbered from ``first``."""
    return pl.read_ipc(path).with_row_index(ROW, offset=first)


@dataclass
class ReadJob:
    """One mix source to read into a pool: its files, how to adapt them, and where its counts and
    rejects lines go."""

    source: int
    files: list[tuple[str, Path | HubSource]]
    format: str | None
    """The format's name when the source gives one (else detected from the records)."""
    options: AdaptOptions
    keep_ties: bool
    first_file: int
    """The ``__file`` of the first of ``files``: the files of earlier sources come before."""
    names: dict[str, str]
    counts: SourceCounts
    rejects: list[str] = field(default_factory=list)

    def forced(self) -> Format | None:
        return get_format(self.format) if self.format else None


def _with_columns_of(frame: pl.DataFrame, order: pl.DataFrame) -> pl.DataFrame:
    """``frame``'s rows in ``order``'s order (by ``__row``), with ``order``'s columns in place of its own."""
    replaced = [c for c in order.columns if c != ROW and c in frame.columns]
    joined = order.join(frame.drop(replaced), on=ROW, how="left", maintain_order="left")
    return joined.select(*frame.columns, *(c for c in order.columns if c not in frame.columns))


def spill_folder(out: Path) -> Path:
    """Where a run writing ``out`` spills: ``out`` itself when it is a folder that exists, else the
    nearest folder above it that does (nothing new is created for a run that fails)."""
    place = out
    while not place.is_dir():
        place = place.parent
    return place
