"""Duplicate removal and decontamination over a pool of canonical pairs.

Every function here takes a *pool*: a canonical frame whose row order is its priority (earlier
sources and lines first) with a ``__row`` column holding each row's position. Each returns the rows
to remove as a frame of ``__row``, ``__dup_of`` (the ``__row`` of the row that stays),
``method`` and ``similarity``, so every removal can be traced to what it duplicates.

- ``exact``: the same pair after Unicode NFKC, whitespace collapsing and lowercasing.
- ``prompt``: at most ``k`` pairs per normalized prompt; the pairs with the largest score margin
  stay when scores exist, otherwise a seeded choice.
- ``near``: MinHash LSH (rensa) over word n-grams of the prompt, or of the whole pair, with a
  Jaccard threshold; clusters are joined transitively and their first row stays.
- decontamination: pairs whose prompt matches an evaluation prompt, exactly or near.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers the .nchash namespace)

from prefkit.atomic_files import check_outputs, line_sink
from prefkit.config import DEFAULT_SEED, check_fields, option
from prefkit.data.adapters import AdaptOptions
from prefkit.data.columns import FILE, LINE, ROW
from prefkit.data.convert import SourceCounts, read_pairs, resolve_all, to_style
from prefkit.data.messages import messages_text
from prefkit.data.writers import check_pairs_path, sidecar, write_pairs
from prefkit.progress import ReportProgress
from prefkit.results import Result, plain

REMOVED_SCHEMA = {ROW: pl.UInt32, "__dup_of": pl.UInt32, "method": pl.String, "similarity": pl.Float64}


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


def _nfkc(texts: pl.Series) -> pl.Series:
    # NFKC leaves ASCII unchanged, and most text is ASCII: normalize only the rows that are not.
    non_ascii = texts.str.len_bytes() != texts.str.len_chars()
    if not non_ascii.any():
        return texts
    return texts.scatter(non_ascii.arg_true(), texts.filter(non_ascii).str.normalize("NFKC"))


def normalize_text(expr: pl.Expr) -> pl.Expr:
    """NFKC, lowercase, whitespace runs collapsed to one space, trimmed.

    >>> pl.select(normalize_text(pl.lit("  Ｈello\\u00a0\\n World "))).item()
    'hello world'
    """
    # Matching only what must change (a run, or whitespace other than a plain space) leaves most
    # strings untouched, where "\s+" would rewrite every single space.
    collapsed = expr.map_batches(_nfkc, return_dtype=pl.String).str.replace_all(r"\s{2,}|[^\S ]", " ")
    return collapsed.str.to_lowercase().str.strip_chars()


def prompt_key() -> pl.Expr:
    """The normalized prompt text of a canonical row: what ``prompt`` dedupe and splits group by.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> pool.select(prompt_key()).to_series().to_list()
    ['user: hi there!', 'user: hi there!', 'user: bye now']
    """
    return normalize_text(messages_text(pl.col("prompt")))


def exact_key() -> pl.Expr:
    """A 128-bit hash of the normalized pair (the three parts separated so boundaries count).

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> keys = pool.select(exact_key()).to_series()
    >>> keys.dtype, keys[0] == keys[1], keys[0] == keys[2]
    (UInt128, True, False)
    """
    parts = [normalize_text(messages_text(pl.col(c))) for c in ("prompt", "chosen", "rejected")]
    return pl.concat_str(parts, separator="\x1d").nchash.xxh3_128()


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
    keyed = pool.select(ROW, exact_key().alias("key"))
    first = pl.col(ROW).first().over("key")
    dups = keyed.with_columns(first.alias("__dup_of")).filter(pl.col(ROW) != pl.col("__dup_of"))
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
    margin = (pl.col("score_chosen") - pl.col("score_rejected")).abs()
    if "margin" in pool.columns:
        margin = pl.coalesce(pl.col("margin"), margin)
    margin = margin.fill_nan(None).fill_null(-1.0)
    ranked = pool.select(
        ROW,
        prompt_key().alias("key"),
        margin.alias("margin"),
        pl.Series("shuffle", np.random.default_rng(seed).random(pool.height)),
    ).sort(["key", "margin", "shuffle"], descending=[False, True, False], maintain_order=True)
    ranked = ranked.with_columns(
        rank=pl.int_range(pl.len()).over("key"), __dup_of=pl.col(ROW).first().over("key")
    ).filter(pl.col("rank") >= k)
    ranked = ranked.sort(ROW)
    return _removed(ranked[ROW], ranked["__dup_of"], "prompt")


def shingles(text: pl.Expr, ngram: int) -> pl.Expr:
    """Word n-grams of normalized text with punctuation removed; short texts fall back to their words.

    >>> pl.select(shingles(pl.lit("What is the capital, of France?"), 2)).item().to_list()
    ['what is', 'is the', 'the capital', 'capital of', 'of france']
    """
    words = (
        normalize_text(text)
        .str.replace_all(r"[^\w\s]", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.split(" ")
    )
    words = words.list.eval(pl.element().filter(pl.element() != ""))
    if ngram == 1:
        return words
    grams = words.list.eval(pl.concat_str([pl.element().shift(-i) for i in range(ngram)], separator=" ").drop_nulls())
    return pl.when(words.list.len() < ngram).then(words).otherwise(grams)


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
    """MinHash signatures of a set of texts (rensa), with an LSH index over them."""

    def __init__(self, token_lists: list[list[str]], threshold: float, num_perm: int, seed: int):
        from rensa import RMinHash, RMinHashLSH

        self.minhashes = RMinHash.from_token_sets(token_lists, num_perm, seed)
        self.lsh = RMinHashLSH(threshold, num_perm, lsh_bands(threshold, num_perm))
        self.lsh.insert_pairs(list(enumerate(self.minhashes)))

    def matches(self, queries: list, threshold: float, earlier_only: bool) -> tuple[list[int], list[int], list[float]]:
        """Verified matches ``(query, key, jaccard)``; with ``earlier_only`` only keys below the query's own."""
        qs, ks, sims = [], [], []
        for q, candidates in enumerate(self.lsh.query_all(queries)):
            for key in candidates:
                if earlier_only and key >= q:
                    continue
                sim = queries[q].jaccard(self.minhashes[key])
                if sim >= threshold:
                    qs.append(q)
                    ks.append(key)
                    sims.append(sim)
        return qs, ks, sims


def _token_lists(frame: pl.DataFrame, text: pl.Expr, ngram: int) -> tuple[pl.Series, list[list[str]]]:
    """Rows with at least one token (a text of only punctuation has nothing to compare) and their tokens."""
    tokens = frame.select(ROW, shingles(text, ngram).alias("tokens")).filter(pl.col("tokens").list.len() > 0)
    return tokens[ROW], tokens["tokens"].to_list()


def near_text(fields: str) -> pl.Expr:
    """The text near-duplicate search compares: the prompt, or (``pair``) prompt and both replies.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> pool.select(near_text("pair")).to_series()[2]
    'user: Bye now\\nassistant: b\\nassistant: d'
    """
    text = messages_text(pl.col("prompt"))
    if fields == "pair":
        text = pl.concat_str(text, messages_text(pl.col("chosen")), messages_text(pl.col("rejected")), separator="\n")
    return text


def near_duplicates(pool: pl.DataFrame, config: DedupeConfig, seed: int) -> pl.DataFrame:
    """Rows in a near-duplicate cluster with an earlier row; each points at its cluster's first row.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> near_duplicates(pool, DedupeConfig(near=True, near_threshold=0.5), seed=0).rows()
    [(1, 0, 'near', 1.0)]
    """
    rows, tokens = _token_lists(pool, near_text(config.near_fields), config.ngram)
    if not tokens:
        return pl.DataFrame(schema=REMOVED_SCHEMA)
    index = MinHashIndex(tokens, config.near_threshold, config.num_perm, seed)
    later, earlier, sims = index.matches(index.minhashes, config.near_threshold, earlier_only=True)
    roots = _cluster_roots(len(tokens), later, earlier)
    best_sim: dict[int, float] = {}
    for q, s in zip(later, sims, strict=True):
        best_sim[q] = max(best_sim.get(q, 0.0), s)
    members = sorted(best_sim)
    row_ids = rows.to_list()
    return _removed(
        [row_ids[m] for m in members],
        [row_ids[roots[m]] for m in members],
        "near",
        [best_sim[m] for m in members],
    )


def _cluster_roots(n: int, a: list[int], b: list[int]) -> list[int]:
    """Union-find over edges; every node's root is the smallest index in its cluster."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(a, b, strict=True):
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    return [find(x) for x in range(n)]


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
    keyed = pool.select(ROW, prompt_key().alias("key"))
    eval_keys = eval_prompts.select(pl.col(ROW).alias("__dup_of"), prompt_key().alias("key")).unique(
        "key", keep="first", maintain_order=True
    )
    exact = keyed.join(eval_keys, on="key", how="inner").sort(ROW)
    removed = [_removed(exact[ROW], exact["__dup_of"], "decontaminate-exact")]
    if config.near:
        rest = pool.join(exact.select(ROW), on=ROW, how="anti")
        pool_rows, pool_tokens = _token_lists(rest, messages_text(pl.col("prompt")), config.ngram)
        eval_rows, eval_tokens = _token_lists(eval_prompts, messages_text(pl.col("prompt")), config.ngram)
        if pool_tokens and eval_tokens:
            from rensa import RMinHash

            index = MinHashIndex(eval_tokens, config.threshold, config.num_perm, seed)
            queries = RMinHash.from_token_sets(pool_tokens, config.num_perm, seed)
            qs, keys, sims = index.matches(queries, config.threshold, earlier_only=False)
            best: dict[int, tuple[float, int]] = {}
            for q, key, sim in zip(qs, keys, sims, strict=True):
                if sim > best.get(q, (-1.0, 0))[0]:
                    best[q] = (sim, key)
            hits = sorted(best)
            pr, er = pool_rows.to_list(), eval_rows.to_list()
            removed.append(
                _removed(
                    [pr[q] for q in hits],
                    [er[best[q][1]] for q in hits],
                    "decontaminate-near",
                    [best[q][0] for q in hits],
                )
            )
    return pl.concat(removed).sort(ROW)


def remove_duplicates(
    pool: pl.DataFrame,
    dedupe: DedupeConfig,
    seed: int,
    eval_pool: pl.DataFrame | None = None,
    decontaminate: DecontaminateConfig | None = None,
) -> pl.DataFrame:
    """Runs the configured dedupe steps, then decontamination, each on what the previous kept.

    Returns one removal per row (``__row``, ``__dup_of``, ``method``, ``similarity``).

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> remove_duplicates(pool, DedupeConfig(prompt=True), seed=0).rows()  # exact first; prompt finds no more
    [(1, 0, 'exact', None)]
    """
    steps = []
    if dedupe.exact:
        steps.append(exact_duplicates)
    if dedupe.prompt:
        steps.append(lambda alive: prompt_duplicates(alive, dedupe.prompt_k, seed))
    if dedupe.near:
        steps.append(lambda alive: near_duplicates(alive, dedupe, seed))
    if eval_pool is not None:
        steps.append(lambda alive: contaminated(alive, eval_pool, decontaminate or DecontaminateConfig(), seed))
    removed = [pl.DataFrame(schema=REMOVED_SCHEMA)]
    alive = pool
    for step in steps:
        gone = step(alive)
        removed.append(gone)
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
    pool = pool.select(ROW, "id", "source", FILE, LINE, "prompt")

    def targets(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(
            pl.col(ROW).alias("__dup_of"),
            pl.col("id").alias("dup_id"),
            pl.col(FILE).alias("dup_file"),
            pl.col(LINE).alias("dup_line"),
        )

    records = []
    for (method,), frame in removed.join(pool, on=ROW, how="left").group_by("method", maintain_order=True):
        against_eval = method.startswith("decontaminate")
        names = eval_labels if against_eval else labels
        joined = frame.join(targets(eval_pool if against_eval else pool), on="__dup_of", how="left")
        records += [
            Removal(
                id=r["id"],
                source=r["source"],
                file=labels[r[FILE]],
                line=r[LINE],
                method=method,
                duplicate_of=r["dup_id"],
                duplicate_of_file=names[r["dup_file"]],
                duplicate_of_line=r["dup_line"],
                similarity=r["similarity"],
                prompt=r["prompt"][-1]["content"] if r["prompt"] else "",
            )
            for r in joined.iter_rows(named=True)
        ]
    records.sort(key=lambda r: (r.file, r.line))
    return records


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

    Writes the kept pairs in input order, ``NAME.removed.jsonl`` (each removal with the id of the
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
    pool, rejects = read_pairs(files, None, AdaptOptions(seed=seed), False, counts, progress=progress)
    pool = pool.with_row_index(ROW)
    removed = remove_duplicates(pool, dedupe, seed)
    kept = pool.filter(~pl.col(ROW).is_in(removed[ROW].implode()))
    write_pairs(to_style(kept, style), output)
    labels = [str(p) for _, p in files]
    with line_sink(paths["removed"]) as write:
        write(json.dumps(r.to_dict(), ensure_ascii=False) for r in removal_records(removed, pool, labels))
    with line_sink(paths["rejects"]) as write:
        write(rejects)
    return DedupeResult(
        output=str(output),
        removed_file=str(paths["removed"]),
        rejects=str(paths["rejects"]),
        read=counts.read,
        rejected=counts.rejected,
        removed=removed_counts(removed),
        written=kept.height,
    )


def _example_pool() -> pl.DataFrame:
    """This module's examples' pool: rows 0 and 1 are the same pair up to case and spaces (row 1 with
    scores), row 2 another."""
    turn = lambda role, text: [{"role": role, "content": text}]
    return pl.DataFrame(
        {
            ROW: pl.Series([0, 1, 2], dtype=pl.UInt32),
            "prompt": [turn("user", t) for t in ("Hi  there!", "hi there!", "Bye now")],
            "chosen": [turn("assistant", t) for t in "aab"],
            "rejected": [turn("assistant", t) for t in "ccd"],
            "score_chosen": [None, 2.0, None],
            "score_rejected": [None, 1.0, None],
        }
    )
