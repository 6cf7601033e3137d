"""A mix whose reading and near-duplicate signatures run on a Ray cluster (``mix --ray``).

For the user whose mixture outgrows one machine's cores. A :class:`RayPool` is a
:class:`~prefkit.data.pool.SpilledPool` with its two costly per-batch steps in Ray tasks: each input
file (a partition: one shard of a folder source, or a file of its own) is read, adapted, checked,
keyed and spilled by a task of its own, and near-duplicate search's MinHash signatures are computed a
spilled batch per task. What must be in one place and in order stays with the driver: the keys, the
LSH index and its queries, sampling, the split and the writing. The driver adopts the tasks' results
in input order, so the output is the single-process run's, byte for byte.

Two things differ from one process. Every file detects its own format where the source names none
(one process detects once per source, from its first file: the same for shards of one layout). And
the spill folder, inside the output folder, must be storage every node reads and writes (a shared
filesystem on a cluster; any folder on one machine).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from prefkit.cluster import connect_ray, require_ray
from prefkit.data.convert import SourceCounts, kept_pairs
from prefkit.data.keys import near_text, signatures
from prefkit.data.pool import ReadJob, SpilledBatch, SpilledPool, local_rows, read_spilled, spill
from prefkit.progress import ReportProgress

IN_FLIGHT = 8
"""Signature tasks submitted ahead of the one the driver waits for: bounds what waits in Ray's object store."""


class RayPool(SpilledPool):
    """A :class:`~prefkit.data.pool.SpilledPool` that reads its files and signs its batches in Ray
    tasks on the cluster at ``address`` (``auto``, ``local`` or an address; a process already
    connected, e.g. by its own ``ray.init``, stays on its cluster)."""

    def __init__(self, folder: str | Path, address: str):
        require_ray("mix --ray")
        super().__init__(folder)
        connect_ray(address, "mix --ray")

    def read(self, jobs: list[ReadJob], progress: ReportProgress | None = None) -> None:
        """One task per file of every job, all submitted at once; their batches are adopted in input order."""
        import ray

        task = ray.remote(read_partition)
        parts = [
            (job, task.remote(replace(job, files=[file], first_file=job.first_file + k), str(self.folder), f"{n:06d}"))
            for n, (job, k, file) in enumerate((j, k, f) for j in jobs for k, f in enumerate(j.files))
        ]
        for n, (job, ref) in enumerate(parts):
            if progress:
                progress(f"reading {job.files[0][1]} on Ray", n, len(parts))
            batches, rejects, counts = ray.get(ref)
            for batch in batches:
                self.adopt(batch)
            job.rejects.extend(rejects)
            merge_counts(job.counts, counts)

    def signed_batches(
        self, rows: pl.Series | None, fields: str, ngram: int, num_perm: int, seed: int
    ) -> Iterator[tuple[list[int], list]]:
        """The signatures of each spilled batch's ``rows``, computed in Ray tasks and yielded in pool order."""
        import ray

        task = ray.remote(sign_spilled)
        wanted = None if rows is None else rows.sort().to_numpy()
        pending: deque = deque()
        for path, first, end in self.spilled:
            local = local_rows(wanted, first, end)
            if local is not None and not local.size:
                continue
            pending.append(task.remote(str(path), first, local, fields, ngram, num_perm, seed))
            if len(pending) > IN_FLIGHT:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())


def read_partition(job: ReadJob, folder: str, prefix: str) -> tuple[list[SpilledBatch], list[str], SourceCounts]:
    """A Ray task: reads one file of a job into spilled batches under ``folder``; returns them, the
    file's rejects lines and its counts."""
    counts, rejects = SourceCounts(source=job.counts.source), []
    batches = kept_pairs(
        job.files, job.forced(), job.options, job.keep_ties, counts, rejects, job.first_file, None, job.names
    )
    spilled = [spill(batch, job.source, Path(folder) / f"{prefix}-{k:06d}.arrow") for k, batch in enumerate(batches)]
    return spilled, rejects, counts


def sign_spilled(
    path: str, first: int, local: np.ndarray | None, fields: str, ngram: int, num_perm: int, seed: int
) -> tuple[list[int], list]:
    """A Ray task: the rows of a spilled batch (``local``: their places in it) and their MinHash signatures."""
    batch = read_spilled(Path(path), first)
    return signatures(batch if local is None else batch[local], near_text(fields), ngram, num_perm, seed)


def merge_counts(into: SourceCounts, part: SourceCounts) -> None:
    """Adds one partition's counts to its source's, as reading the partition in the same process would.

    >>> total = SourceCounts(source="s", read=3, written=2, rejected=1, candidates=3, reasons={"invalid_json": 1})
    >>> merge_counts(total, SourceCounts(source="s", format="trl", read=2, written=2, candidates=2))
    >>> total.format, total.read, total.written, total.reasons
    ('trl', 5, 4, {'invalid_json': 1})
    """
    into.format = part.format if part.format != "-" else into.format
    for name in ("read", "candidates", "written", "rejected", "blank_lines"):
        setattr(into, name, getattr(into, name) + getattr(part, name))
    into.reasons = dict(sorted((Counter(into.reasons) + Counter(part.reasons)).items()))
