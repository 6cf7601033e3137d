"""The keys that dedupe, decontamination and splits compare pairs by: normalized text, its hashes,
its shingles and their MinHash signatures.

A pool's keys (:mod:`prefkit.data.pool`) are computed from these once per row, a batch at a time;
the signatures wherever the pool computes them (here, or in Ray tasks).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
import polars_hash  # noqa: F401  (registers the .nchash namespace)

from prefkit.data.columns import ROW
from prefkit.data.messages import messages_text


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


def prompt_hash() -> pl.Expr:
    """A 128-bit hash of :func:`prompt_key`: what a pool keeps of the prompt, and decontamination compares.

    >>> keys = _example_pool().select(prompt_hash()).to_series()
    >>> keys.dtype, keys[0] == keys[1], keys[0] == keys[2]
    (UInt128, True, False)
    """
    return prompt_key().nchash.xxh3_128()


def exact_key() -> pl.Expr:
    """A 128-bit hash of the normalized pair (the three parts separated so boundaries count).

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> keys = pool.select(exact_key()).to_series()
    >>> keys.dtype, keys[0] == keys[1], keys[0] == keys[2]
    (UInt128, True, False)
    """
    parts = [normalize_text(messages_text(pl.col(c))) for c in ("prompt", "chosen", "rejected")]
    return pl.concat_str(parts, separator="\x1d").nchash.xxh3_128()


def ranking_margin(columns: Iterable[str]) -> pl.Expr:
    """How strongly a pair is preferred, as ``prompt`` dedupe ranks the pairs of one prompt: its
    ``margin`` where it has one, else ``|score_chosen - score_rejected|``, else -1.

    >>> pool = _example_pool()  # rows 0 and 1 are one pair up to case and spaces; row 2 differs
    >>> pool.select(ranking_margin(pool.columns)).to_series().to_list()
    [-1.0, 1.0, -1.0]
    """
    columns = set(columns)
    score = lambda name: pl.col(name) if name in columns else pl.lit(None, pl.Float64)
    margin = (score("score_chosen") - score("score_rejected")).abs()
    if "margin" in columns:
        margin = pl.coalesce(pl.col("margin"), margin)
    return margin.cast(pl.Float64).fill_nan(None).fill_null(-1.0)


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


def token_lists(frame: pl.DataFrame, text: pl.Expr, ngram: int) -> tuple[pl.Series, list[list[str]]]:
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


def signatures(frame: pl.DataFrame, text: pl.Expr, ngram: int, num_perm: int, seed: int) -> tuple[list[int], list]:
    """The ``__row`` of each row with tokens, and the MinHash signature (rensa) of its shingles.

    >>> rows, minhashes = signatures(_example_pool(), near_text("prompt"), 2, 128, seed=0)
    >>> rows, minhashes[0].jaccard(minhashes[1]), minhashes[0].jaccard(minhashes[2])
    ([0, 1, 2], 1.0, 0.0)
    """
    from rensa import RMinHash

    rows, tokens = token_lists(frame, text, ngram)
    return rows.to_list(), RMinHash.from_token_sets(tokens, num_perm, seed) if tokens else []


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
