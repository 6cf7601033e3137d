"""Unpaired feedback: each pair as two records, the chosen reply labelled true and the rejected one
false, as KTO trains (``prefkit convert --to unpaired``, ``method: kto``).

A record keeps its pair's id as ``pair_id`` and takes the id ``PAIR_ID:chosen`` or
``PAIR_ID:rejected``; ``prompt``, ``source`` and ``metadata`` are the pair's. Every pair gives
exactly one true and one false record, so the classes are balanced, and KTO's
``desirable_weight``/``undesirable_weight`` (which correct an imbalance) stay 1.
"""

from __future__ import annotations

import polars as pl


def unpair(pairs: pl.DataFrame) -> pl.DataFrame:
    """Canonical pairs as unpaired records, in pair order, the chosen record first.

    >>> pairs = pl.DataFrame({"id": ["a"], "source": ["s"], "prompt": ["2 + 2?"], "chosen": ["4"], "rejected": ["5"]})
    >>> unpair(pairs).select("id", "pair_id", "completion", "label").rows()
    [('a:chosen', 'a', '4', True), ('a:rejected', 'a', '5', False)]
    """
    extra = [c for c in ("metadata",) if c in pairs.columns]

    def side(column: str, label: bool) -> pl.DataFrame:
        return pairs.with_row_index("__pair").select(
            "__pair",
            pl.lit(0 if label else 1, dtype=pl.UInt8).alias("__side"),
            (pl.col("id") + f":{column}").alias("id"),
            pl.col("id").alias("pair_id"),
            "source",
            "prompt",
            pl.col(column).alias("completion"),
            pl.lit(label).alias("label"),
            *extra,
        )

    both = pl.concat([side("chosen", True), side("rejected", False)])
    return both.sort("__pair", "__side").drop("__pair", "__side")


def label_balance(records: pl.DataFrame) -> dict[str, int]:
    """How many records are desirable (label true) and undesirable (false).

    >>> label_balance(pl.DataFrame({"label": [True, False, True]}))
    {'desirable': 2, 'undesirable': 1}
    """
    desirable = int(records["label"].sum())
    return {"desirable": desirable, "undesirable": records.height - desirable}
