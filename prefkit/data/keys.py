"""The keys that dedupe, decontamination and splits compare pairs by: normalized text and its hashes.

A pool's keys (:mod:`prefkit.data.pool`) are computed from these once per row, a batch at a time.
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
