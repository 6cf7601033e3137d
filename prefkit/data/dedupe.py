"""Duplicate removal and decontamination over a pool of canonical pairs.

Every function here takes a *pool*: a canonical frame whose row order is its priority (earlier
sources and lines first) with a ``__row`` column holding each row's position, or a
:class:`~prefkit.data.pool.SpilledPool`, whose rows wait on disk while exact and prompt dedupe
work on its keys alone. Each returns the rows to remove as a frame of ``__row``, ``__dup_of`` (the
``__row`` of the row that stays), ``method`` and ``similarity``, so every removal can be traced to
what it duplicates.

- ``exact``: the same pair after Unicode NFKC, whitespace collapsing and lowercasing.
- ``prompt``: at most ``k`` pairs per normalized prompt; the pairs with the largest score margin
  stay when scores exist, otherwise a seeded choice.
- ``near``: MinHash LSH (rensa) over word n-grams of the prompt, or of the whole pair, with a
  Jaccard threshold; clusters are joined transitively and their first row stays.
- decontamination: pairs whose prompt matches an evaluation prompt, exactly or near.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers the .nchash namespace)

from prefkit.atomic_files import check_outputs, line_sink
from prefkit.config import DEFAULT_SEED, check_fields, option
from prefkit.data.adapters import AdaptOptions
from prefkit.data.columns import FILE, LINE, ROW
from prefkit.data.convert import SourceCounts, kept_pairs, resolve_all, to_style
from prefkit.data.keys import _example_pool, exact_key, prompt_hash, token_lists  # noqa: F401  (_example_pool: the doctests)
from prefkit.data.messages import messages_text
from prefkit.data.pool import EXACT, MARGIN, PROMPT, FramePool, SpilledPool, spill_folder
from prefkit.data.writers import check_pairs_path, pair_sink, sidecar
from prefkit.progress import ReportProgress
from prefkit.results import Result, plain

REMOVED_SCHEMA = {ROW: pl.UInt32, "__dup_of": pl.UInt32, "method": pl.String, "similarity": pl.Float64}
REMOVAL_SCHEMA = {
    **dict.fromkeys(("id", "source", "file"), pl.String),
    "line": pl.Int64,
    **dict.fromkeys(("method", "duplicate_of", "duplicate_of_file"), pl.String),
    "duplicate_of_line": pl.Int64,
    "similarity": pl.Float64,
    "prompt": pl.String,
}
"""The columns of :func:`removal_frame`: :class:`Removal`'s fields."""
LAST_PROMPT = "__last_prompt"
"""A removed pair's last prompt turn, as its :class:`Removal` shows it."""


@dataclass
class DedupeConfig:
    """Which duplicates to remove; the recipe's ``dedupe:`` block and the ``dedupe`` command's flags."""

    exact: bool = option(True, "Remove pairs equal after NFKC, whitespace and case normalization.")
    prompt: bool = option(False, "Keep at most prompt_k pairs per normalized prompt.")
    prompt_k: int = option(1, "Pairs kept per prompt (largest margin or score gap first, else seeded).", min=1)
    near: bool = option(False, "Remove near-duplicates found by MinHash LSH.")
    near_threshold: float = option(
        0.7, "Jaccard similarity at which two texts are near-duplicates.", min=0, min_open=True, max=1
    )
    near_fields: str = option(
        "prompt", "prompt: compare prompts; pair: prompt + chosen + rejected.", choices=("prompt", "pair")
    )
    ngram: int = option(2, "Word n-gram size of the MinHash shingles.", min=1)
    num_perm: int = option(128, "MinHash permutations (more: finer similarity estimates).", min=16)

    def __post_init__(self) -> None:
        check_fields(self)


def _removed(rows, dup_of, method: str, similarity=None) -> pl.DataFrame:
    n = len(rows)
    return pl.DataFrame(
        {
            ROW: pl.Series(rows, dtype=pl.UInt32),
            "__dup_of": pl.Series(dup_of, dtype=pl.UInt32),
            "method": [method] * n,
            "similarity": pl.Series(similarity if similarity is not None else [None] * n, dtype=pl.Float64),
        },
        schema=REMOVED_SCHEMA,
    )


def exact_duplicates(pool: pl.DataFrame) -> pl.DataFrame:
    """Rows whose normalized pair equals an earlier row's; ``__dup_of`` is that earlier row.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> exact_duplicates(pool).rows()
    [(1, 0, 'exact', None)]
    """
    return _exact(pool.select(ROW, exact_key().alias(EXACT)))


def _exact(keys: pl.DataFrame) -> pl.DataFrame:
    first = pl.col(ROW).first().over(EXACT)
    dups = keys.select(ROW, first.alias("__dup_of")).filter(pl.col(ROW) != pl.col("__dup_of"))
    return _removed(dups[ROW], dups["__dup_of"], "exact")


def prompt_duplicates(pool: pl.DataFrame, k: int, seed: int) -> pl.DataFrame:
    """Beyond the ``k`` best pairs of each normalized prompt.

    Best means the largest ``margin`` (the source's preference strength) where the pair has one,
    else the largest ``|score_chosen - score_rejected|``; ties and pairs with neither are ordered
    by a seeded random key.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> prompt_duplicates(pool, k=1, seed=0).rows()  # row 1 has the larger score gap: row 0 goes
    [(0, 1, 'prompt', None)]
    """
    return _prompt(FramePool(pool).keys, k, seed)


def _prompt(keys: pl.DataFrame, k: int, seed: int) -> pl.DataFrame:
    # Grouping by the prompt's hash rather than its text changes only the order the groups are
    # sorted in, never which rows a group holds or how they rank: the removals are the same.
    ranked = keys.select(
        ROW,
        pl.col(PROMPT).alias("key"),
        pl.col(MARGIN).alias("margin"),
        pl.Series("shuffle", np.random.default_rng(seed).random(keys.height)),
    ).sort(["key", "margin", "shuffle"], descending=[False, True, False], maintain_order=True)
    ranked = ranked.with_columns(
        rank=pl.int_range(pl.len()).over("key"), __dup_of=pl.col(ROW).first().over("key")
    ).filter(pl.col("rank") >= k)
    ranked = ranked.sort(ROW)
    return _removed(ranked[ROW], ranked["__dup_of"], "prompt")


def lsh_bands(threshold: float, num_perm: int, miss_weight: float = 0.9) -> int:
    """The band count whose LSH S-curve best fits ``threshold``, among those dividing ``num_perm``.

    The fit weighs missed candidates (``miss_weight``) against false ones, as datasketch's
    ``_optimal_param`` does. Every candidate is verified against the threshold afterwards, so a
    false candidate costs only time while a missed one is lost recall: misses weigh more.

    >>> lsh_bands(0.7, 128), lsh_bands(0.9, 128)
    (16, 8)
    """
    x = np.linspace(0, 1, 1001)
    best, best_err = 1, float("inf")
    for bands in (b for b in range(1, num_perm + 1) if num_perm % b == 0):
        rows = num_perm // bands
        prob = 1 - (1 - x**rows) ** bands
        below, above = x < threshold, x >= threshold
        false = np.trapezoid(prob[below], x[below])
        missed = np.trapezoid(1 - prob[above], x[above])
        err = (1 - miss_weight) * false + miss_weight * missed
        if err < best_err:
            best, best_err = bands, err
    return best


class MinHashIndex:
    """MinHash signatures of texts (rensa), numbered in the order they were added, with an LSH
    index over them; texts can be added a batch at a time.

    The signatures are kept as one matrix of ``uint32`` (a row per text), and a query's candidates
    are verified against it at once: the share of equal slots, which is rensa's ``jaccard``.
    """

    def __init__(self, threshold: float, num_perm: int, seed: int, token_lists: list[list[str]] = ()):
        from rensa import RMinHashLSH

        self.num_perm, self.seed = num_perm, seed
        self.digests = np.empty((1024, num_perm), dtype=np.uint32)
        self.count = 0
        self.lsh = RMinHashLSH(threshold, num_perm, lsh_bands(threshold, num_perm))
        if token_lists:
            self.add(token_lists)

    def signatures(self, token_lists: list[list[str]]) -> list:
        """The MinHash of each token list, with this index's permutations."""
        from rensa import RMinHash

        return RMinHash.from_token_sets(token_lists, self.num_perm, self.seed)

    def add(self, token_lists: list[list[str]]) -> int:
        """Adds texts to the index; returns the number of the first."""
        return self.add_signatures(self.signatures(token_lists))

    def add_signatures(self, added: list) -> int:
        """Adds texts by their signatures (:meth:`signatures`); returns the number of the first."""
        start, end = self.count, self.count + len(added)
        if end > len(self.digests):
            grown = np.empty((max(end, 2 * len(self.digests)), self.num_perm), dtype=np.uint32)
            grown[:start] = self.digests[:start]
            self.digests = grown
        self.digests[start:end] = _digests(added)
        self.lsh.insert_pairs(list(enumerate(added, start)))
        self.count = end
        return start

    def matches(
        self, queries: list, threshold: float, own_from: int | None = None
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """For each query with verified matches: ``(query, keys, jaccards)``, the keys in the order
        the LSH gave them. ``own_from``: the queries are the index's own texts numbered from there
        (queries count from it too), matched only with keys below their own."""
        # The index's own texts were digested as they were added.
        digests = _digests(queries) if own_from is None else self.digests[own_from : own_from + len(queries)]
        for i, candidates in enumerate(self.lsh.query_all(queries)):
            q = i if own_from is None else own_from + i
            keys = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
            if own_from is not None:
                keys = keys[keys < q]
            if not keys.size:
                continue
            sims = (self.digests[keys] == digests[i]).sum(axis=1) / self.num_perm
            hit = sims >= threshold
            if hit.any():
                yield q, keys[hit], sims[hit]


def _digests(minhashes: list) -> np.ndarray:
    return np.array([m.digest() for m in minhashes], dtype=np.uint32).reshape(len(minhashes), -1)


def near_duplicates(pool: pl.DataFrame, config: DedupeConfig, seed: int) -> pl.DataFrame:
    """Rows in a near-duplicate cluster with an earlier row; each points at its cluster's first row.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> near_duplicates(pool, DedupeConfig(near=True, near_threshold=0.5), seed=0).rows()
    [(1, 0, 'near', 1.0)]
    """
    framed = FramePool(pool)
    return _near(framed.signed_batches(None, config.near_fields, config.ngram, config.num_perm, seed), config, seed)


def _near(signed: Iterable[tuple[list[int], list]], config: DedupeConfig, seed: int) -> pl.DataFrame:
    """Near duplicates over a pool's signed batches (rows and signatures) in order: each batch joins
    the index before its rows are queried, so every row meets every earlier one and only the
    signatures stay in memory."""
    index = MinHashIndex(config.near_threshold, config.num_perm, seed)
    clusters = Clusters()
    row_ids: list[int] = []
    best_sim: dict[int, float] = {}
    for rows, minhashes in signed:
        if not rows:
            continue
        start = index.add_signatures(minhashes)
        clusters.grow(len(rows))
        row_ids += rows
        # Matches are joined as they come, never listed: a text with c copies has c^2 / 2 of them.
        for q, keys, sims in index.matches(minhashes, config.near_threshold, own_from=start):
            clusters.join(q, keys)
            best_sim[q] = float(sims.max())
    members = sorted(best_sim)
    return _removed(
        [row_ids[m] for m in members],
        [row_ids[r] for r in clusters.roots(np.array(members, dtype=np.int64)).tolist()] if members else [],
        "near",
        [best_sim[m] for m in members],
    )


class Clusters:
    """Union-find over numbered items; an item's root is the smallest number in its cluster.

    An item is joined, once, with all the earlier items it matches, looked up together.

    >>> clusters = Clusters()
    >>> clusters.grow(5)
    >>> clusters.join(3, np.array([1])); clusters.join(4, np.array([3, 2]))
    >>> clusters.roots(np.arange(5)).tolist()
    [0, 1, 1, 1, 1]
    """

    def __init__(self):
        self.parent = np.arange(1024, dtype=np.int64)
        self.count = 0

    def grow(self, n: int) -> None:
        """Adds ``n`` items, each a cluster of its own."""
        self.count += n
        if self.count > len(self.parent):
            grown = np.arange(max(self.count, 2 * len(self.parent)), dtype=np.int64)
            grown[: len(self.parent)] = self.parent
            self.parent = grown

    def roots(self, items: np.ndarray) -> np.ndarray:
        parent = self.parent
        found = parent[items]
        while True:
            up = parent[found]
            if (up == found).all():
                return found
            found = up

    def join(self, item: int, earlier: np.ndarray) -> None:
        """Joins ``item`` (alone in its cluster so far) with the clusters of ``earlier`` items (all below it)."""
        roots = np.unique(self.roots(earlier))
        self.parent[roots] = roots[0]
        self.parent[earlier] = roots[0]  # shortens the paths later lookups walk
        self.parent[item] = roots[0]


@dataclass
class DecontaminateConfig:
    """Evaluation sets whose prompts must not appear in training data."""

    files: list[str] = option([], "Evaluation files (any format convert reads).")
    near: bool = option(True, "Also remove near matches, not only exact ones.")
    threshold: float = option(0.8, "Jaccard similarity that counts as a near match.", min=0, min_open=True, max=1)
    ngram: int = option(2, "Word n-gram size of the MinHash shingles.", min=1)
    num_perm: int = option(128, "MinHash permutations.", min=16)

    def __post_init__(self) -> None:
        check_fields(self)


def contaminated(
    pool: pl.DataFrame, eval_prompts: pl.DataFrame, config: DecontaminateConfig, seed: int
) -> pl.DataFrame:
    """Pool rows whose prompt matches an evaluation prompt; ``__dup_of`` is the evaluation row.

    ``eval_prompts`` is a canonical frame (only ``prompt`` is used) with its own ``__row``.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> held_out = pl.DataFrame({"__row": pl.Series([0], dtype=pl.UInt32),
    ...                          "prompt": [[{"role": "user", "content": "BYE now"}]]})
    >>> contaminated(pool, held_out, DecontaminateConfig(), seed=0).rows()
    [(2, 0, 'decontaminate-exact', None)]
    """
    framed = FramePool(pool)
    return _contaminated(framed, framed.keys, eval_prompts, config, seed)


def _contaminated(
    pool: FramePool | SpilledPool,
    alive: pl.DataFrame,
    eval_prompts: pl.DataFrame,
    config: DecontaminateConfig,
    seed: int,
) -> pl.DataFrame:
    """Exact matches from the keys of the ``alive`` rows, then near ones a batch of the pool at a time."""
    eval_keys = eval_prompts.select(pl.col(ROW).alias("__dup_of"), prompt_hash().alias(PROMPT)).unique(
        PROMPT, keep="first", maintain_order=True
    )
    exact = alive.select(ROW, PROMPT).join(eval_keys, on=PROMPT, how="inner").sort(ROW)
    removed = [_removed(exact[ROW], exact["__dup_of"], "decontaminate-exact")]
    eval_rows, eval_tokens = token_lists(eval_prompts, messages_text(pl.col("prompt")), config.ngram)
    if config.near and eval_tokens:
        index = MinHashIndex(config.threshold, config.num_perm, seed, eval_tokens)
        er = eval_rows.to_list()
        rest = alive.join(exact.select(ROW), on=ROW, how="anti")[ROW]
        for batch in pool.batches(rest):
            pool_rows, pool_tokens = token_lists(batch, messages_text(pl.col("prompt")), config.ngram)
            if not pool_tokens:
                continue
            pr = pool_rows.to_list()
            hits, against, sims_of = [], [], []
            for q, keys, sims in index.matches(index.signatures(pool_tokens), config.threshold):
                best = int(np.argmax(sims))  # the first of equal bests, in the LSH's order
                hits.append(pr[q])
                against.append(er[int(keys[best])])
                sims_of.append(float(sims[best]))
            removed.append(_removed(hits, against, "decontaminate-near", sims_of))
    return pl.concat(removed).sort(ROW)


def remove_duplicates(
    pool: pl.DataFrame | FramePool | SpilledPool,
    dedupe: DedupeConfig,
    seed: int,
    eval_pool: pl.DataFrame | None = None,
    decontaminate: DecontaminateConfig | None = None,
) -> pl.DataFrame:
    """Runs the configured dedupe steps, then decontamination, each on what the previous kept.

    Exact and prompt dedupe read only the pool's keys; near dedupe and decontamination read its
    batches. Returns one removal per row (``__row``, ``__dup_of``, ``method``, ``similarity``).

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> remove_duplicates(pool, DedupeConfig(prompt=True), seed=0).rows()  # exact first; prompt finds no more
    [(1, 0, 'exact', None)]
    """
    pool = FramePool(pool) if isinstance(pool, pl.DataFrame) else pool
    steps = []
    if dedupe.exact:
        steps.append(_exact)
    if dedupe.prompt:
        steps.append(lambda alive: _prompt(alive, dedupe.prompt_k, seed))
    if dedupe.near:
        signed = lambda alive: pool.signed_batches(alive[ROW], dedupe.near_fields, dedupe.ngram, dedupe.num_perm, seed)
        steps.append(lambda alive: _near(signed(alive), dedupe, seed))
    if eval_pool is not None:
        config = decontaminate or DecontaminateConfig()
        steps.append(lambda alive: _contaminated(pool, alive, eval_pool, config, seed))
    removed = [pl.DataFrame(schema=REMOVED_SCHEMA)]
    # The steps read these keys alone; each filters a copy of them only for a step after it.
    alive = pool.keys.select(ROW, EXACT, PROMPT, MARGIN)
    for i, step in enumerate(steps):
        gone = step(alive)
        removed.append(gone)
        if i + 1 < len(steps):
            alive = alive.filter(~pl.col(ROW).is_in(gone[ROW].implode()))
    return pl.concat(removed)


@dataclass(frozen=True)
class Removal:
    """A pair removed as a duplicate (or, ``decontaminate*``, as a match of an evaluation prompt):
    where it was, how it was found, and the kept or evaluation pair it repeats."""

    id: str
    source: str
    file: str
    line: int
    method: str
    duplicate_of: str
    duplicate_of_file: str
    duplicate_of_line: int
    similarity: float | None
    prompt: str
    """The removed pair's last prompt turn."""

    def to_dict(self) -> dict:
        return plain(self)


def last_prompt() -> pl.Expr:
    """The content of a canonical row's last prompt turn ("" for none): what a :class:`Removal` shows.

    >>> _example_pool().select(last_prompt()).to_series().to_list()
    ['Hi  there!', 'hi there!', 'Bye now']
    """
    return pl.col("prompt").list.last().struct.field("content").fill_null("")


def removal_frame(
    removed: pl.DataFrame,
    info: pl.DataFrame,
    labels: list[str],
    eval_info: pl.DataFrame | None = None,
    eval_labels: list[str] = (),
) -> pl.DataFrame:
    """The removals as a frame of :class:`Removal`'s fields, in file and line order.

    ``info`` has ``__row``, ``id``, ``source``, ``__file`` and ``__line`` of the pool's rows and
    ``__last_prompt`` (:func:`last_prompt`) of the removed ones; ``eval_info`` the first four of the
    evaluation rows that decontamination matched. Only these columns are read, so a pool on disk
    needs in memory its keys and the removed rows' last prompts.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> pool = pool.with_columns(id=pl.Series(["p0", "p1", "p2"]), source=pl.lit("mine"), __file=0, __line=pool["__row"] + 1)
    >>> info = pool.with_columns(last_prompt().alias(LAST_PROMPT))
    >>> removal_frame(exact_duplicates(pool), info, ["a.jsonl"]).select("id", "line", "duplicate_of", "prompt").rows()
    [('p1', 2, 'p0', 'hi there!')]
    """
    info = info.select(ROW, "id", "source", FILE, LINE, LAST_PROMPT)

    def targets(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(
            pl.col(ROW).alias("__dup_of"),
            pl.col("id").alias("dup_id"),
            pl.col(FILE).alias("dup_file"),
            pl.col(LINE).alias("dup_line"),
        )

    def label(column: str, names: list[str]) -> pl.Expr:
        return pl.lit(pl.Series(list(names), dtype=pl.String)).gather(pl.col(column))

    parts = []
    for (method,), frame in removed.join(info, on=ROW, how="left").group_by("method", maintain_order=True):
        against_eval = method.startswith("decontaminate")
        names = eval_labels if against_eval else labels
        joined = frame.join(targets(eval_info if against_eval else info), on="__dup_of", how="left")
        parts.append(
            joined.select(
                "id",
                "source",
                label(FILE, labels).alias("file"),
                pl.col(LINE).cast(pl.Int64).alias("line"),
                pl.lit(method).alias("method"),
                pl.col("dup_id").alias("duplicate_of"),
                label("dup_file", names).alias("duplicate_of_file"),
                pl.col("dup_line").cast(pl.Int64).alias("duplicate_of_line"),
                "similarity",
                pl.col(LAST_PROMPT).alias("prompt"),
            )
        )
    if not parts:
        return pl.DataFrame(schema=REMOVAL_SCHEMA)
    return pl.concat(parts).sort("file", "line", maintain_order=True)


def removal_records(
    removed: pl.DataFrame,
    pool: pl.DataFrame,
    labels: list[str],
    eval_pool: pl.DataFrame | None = None,
    eval_labels: list[str] = (),
) -> list[Removal]:
    """One :class:`Removal` per removed pair: what it was, and which kept (or evaluation) pair it duplicates.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> pool = pool.with_columns(id=pl.Series(["p0", "p1", "p2"]), source=pl.lit("mine"), __file=0, __line=pool["__row"] + 1)
    >>> (removal,) = removal_records(exact_duplicates(pool), pool, ["a.jsonl"])
    >>> removal.id, removal.line, removal.method, removal.duplicate_of, removal.duplicate_of_line
    ('p1', 2, 'exact', 'p0', 1)
    """
    info = pool.with_columns(last_prompt().alias(LAST_PROMPT))
    return list(removals_of(removal_frame(removed, info, labels, eval_pool, eval_labels)))


def removal_info(pool: FramePool | SpilledPool, removed: pl.DataFrame) -> pl.DataFrame:
    """What :func:`removal_frame` reads of a pool: the keys of the removed rows and of the rows they
    repeat, with the last prompt turn of the removed ones."""
    wanted = pl.concat([removed[ROW], removed["__dup_of"]]).unique().implode()
    info = pool.keys.filter(pl.col(ROW).is_in(wanted)).select(ROW, "id", "source", FILE, LINE)
    prompts = [batch.select(ROW, last_prompt().alias(LAST_PROMPT)) for batch in pool.batches(removed[ROW])]
    if not prompts:
        return info.with_columns(pl.lit(None, pl.String).alias(LAST_PROMPT))
    return info.join(pl.concat(prompts), on=ROW, how="left")


def write_removals(frame: pl.DataFrame, path: Path) -> None:
    """The removals file: one JSON line per :class:`Removal`, in the frame's order."""
    with line_sink(path) as write:
        write(json.dumps(r.to_dict(), ensure_ascii=False) for r in removals_of(frame))


def removals_of(frame: pl.DataFrame) -> Iterator[Removal]:
    """The :class:`Removal` of each row of a :func:`removal_frame`, one at a time."""
    for row in frame.iter_rows(named=True):
        yield Removal(**row)


def removed_counts(removed: pl.DataFrame) -> dict[str, int]:
    """Removals per method, in the order the steps ran.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> held_out = pl.DataFrame({"__row": pl.Series([0], dtype=pl.UInt32),
    ...                          "prompt": [[{"role": "user", "content": "BYE now"}]]})
    >>> removed_counts(remove_duplicates(pool, DedupeConfig(), 0, held_out))
    {'exact': 1, 'decontaminate-exact': 1}
    """
    return dict(removed.group_by("method", maintain_order=True).len().iter_rows())


@dataclass
class DedupeResult(Result):
    output: str
    removed_file: str
    rejects: str
    read: int
    rejected: int
    removed: dict[str, int]
    written: int


def dedupe_file(
    source: str,
    output: str | Path,
    dedupe: DedupeConfig,
    seed: int = DEFAULT_SEED,
    style: str = "conversational",
    progress: ReportProgress | None = None,
) -> DedupeResult:
    """``prefkit dedupe``: one input (any format convert reads), the same dedupe steps as ``mix``.

    The pairs wait on disk beside the output while the dedupe steps run on their keys (see
    :mod:`prefkit.data.pool`). Writes the kept pairs in input order, ``NAME.removed.jsonl`` (each removal with the id of the
    pair it duplicates) and ``NAME.rejects.jsonl`` beside the output.

    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pairs = [{"prompt": "Hi there!", "chosen": "a", "rejected": "c"}, {"prompt": "hi  there!", "chosen": "a", "rejected": "c"}]
    >>> _ = (folder / "raw.jsonl").write_text("".join(json.dumps(p) + "\\n" for p in pairs))
    >>> result = dedupe_file(str(folder / "raw.jsonl"), folder / "dedup.jsonl", DedupeConfig())
    >>> result.read, result.written, result.removed
    (2, 1, {'exact': 1})
    """
    output = Path(output)
    check_pairs_path(output)
    files = resolve_all([source])
    paths = {"removed": sidecar(output, "removed.jsonl"), "rejects": sidecar(output, "rejects.jsonl")}
    outputs = [("-o", output), ("the removals file", paths["removed"]), ("the rejects file", paths["rejects"])]
    check_outputs(outputs, (p for _, p in files if isinstance(p, Path)))
    counts = SourceCounts(source=source)
    rejects: list[str] = []
    with SpilledPool(spill_folder(output.parent)) as pool:
        for batch in kept_pairs(files, None, AdaptOptions(seed=seed), False, counts, rejects, progress=progress):
            pool.add(batch)
        removed = remove_duplicates(pool, dedupe, seed)
        kept = pool.keys.filter(~pl.col(ROW).is_in(removed[ROW].implode()))[ROW]
        with pair_sink(output, style) as write:
            for batch in pool.batches(kept, aligned=True) if pool.schemas else ():
                write(to_style(batch, style))
        labels = [str(p) for _, p in files]
        write_removals(removal_frame(removed, removal_info(pool, removed), labels), paths["removed"])
    with line_sink(paths["rejects"]) as write:
        write(rejects)
    return DedupeResult(
        output=str(output),
        removed_file=str(paths["removed"]),
        rejects=str(paths["rejects"]),
        read=counts.read,
        rejected=counts.rejected,
        removed=removed_counts(removed),
        written=kept.len(),
    )
