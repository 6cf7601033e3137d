"""UltraFeedback in its three published layouts.

- ``ultrafeedback``: HuggingFaceH4/ultrafeedback_binarized (``train_prefs``, ``test_prefs``):
  ``chosen``/``rejected`` message lists, ``score_chosen``/``score_rejected``.
- ``ultrafeedback-argilla``: argilla/ultrafeedback-binarized-preferences: ``instruction``,
  ``chosen_response``, ``rejected_response``, ``chosen_avg_rating``, ``rejected_avg_rating``.
- ``ultrafeedback-argilla-cleaned``: the ``-cleaned`` variant: ``prompt``, ``chosen`` and
  ``rejected`` message lists, ``chosen-rating``, ``rejected-rating``.
- ``ultrafeedback-raw``: openbmb/UltraFeedback: ``instruction`` and four ``completions`` with
  per-aspect ratings, binarized here.

Ties (equal scores) are common in UltraFeedback; the pipeline rejects them with ``tie`` unless
asked to keep them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from prefkit.data.adapters.base import AdaptOptions, Rule, adapted, mark, pairs_from_fields, require, start
from prefkit.data.messages import is_blank, text_message
from prefkit.data.reasons import RejectReason
from prefkit.data.sources import LINE
from prefkit.errors import FieldMappingError

BINARIZE = ("random-lower", "best-worst")


def looks_like_h4(frame: pl.DataFrame) -> bool:
    return {"prompt_id", "chosen", "rejected"} <= set(frame.columns)


def looks_like_argilla(frame: pl.DataFrame) -> bool:
    return {"instruction", "chosen_response", "rejected_response"} <= set(frame.columns)


def looks_like_argilla_cleaned(frame: pl.DataFrame) -> bool:
    return {"chosen", "rejected", "chosen-rating"} <= set(frame.columns)


def looks_like_raw(frame: pl.DataFrame) -> bool:
    return {"instruction", "completions"} <= set(frame.columns)


def adapt_h4(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    return pairs_from_fields(frame, "prompt", "chosen", "rejected", "score_chosen", "score_rejected")


def adapt_argilla(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    return pairs_from_fields(
        frame, "instruction", "chosen_response", "rejected_response", "chosen_avg_rating", "rejected_avg_rating"
    )


def adapt_argilla_cleaned(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    return pairs_from_fields(frame, "prompt", "chosen", "rejected", "chosen-rating", "rejected-rating")


def mean_aspect_rating(annotations: pl.Expr, aspects: list[str]) -> pl.Expr:
    """The mean of the numeric per-aspect ratings; ``"N/A"`` ratings are left out.

    ``{"helpfulness": {"Rating": "4"}, "honesty": {"Rating": "5"}, "truthfulness": {"Rating": "N/A"}}``
    gives 4.5. The published ``overall_score`` is not used: it is known to be wrong for about 2k rows.
    """
    ratings = [
        annotations.struct.field(a).struct.field("Rating").cast(pl.String).cast(pl.Float64, strict=False)
        for a in aspects
    ]
    return pl.mean_horizontal(ratings, ignore_nulls=True)


def adapt_raw(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    """Binarizes each instruction's completions into one pair.

    The chosen reply is the best by mean aspect rating (first on ties). The rejected one is, by
    default, a seeded random completion rated lower than the best; with ``binarize="best-worst"``
    the lowest rated. When all are rated alike the partner is a seeded random other completion, and
    the equal scores then make it a tie.
    """
    if options.binarize not in BINARIZE:
        raise FieldMappingError(f"unknown binarize method '{options.binarize}' (expected {' or '.join(BINARIZE)})")
    frame = start(frame)
    frame, instruction, _ = require(frame, "prompt", "instruction", ("string",))
    completions_dtype = frame.schema["completions"]
    inner = completions_dtype.inner if isinstance(completions_dtype, pl.List) else None
    fields = {f.name: f.dtype for f in inner.fields} if isinstance(inner, pl.Struct) else {}
    if not {"response", "annotations"} <= set(fields) or not isinstance(fields["annotations"], pl.Struct):
        raise FieldMappingError("'completions' must be a list of objects with 'response' and 'annotations'")
    aspects = [f.name for f in fields["annotations"].fields]

    comps = (
        frame.select(LINE, pl.col("completions").alias("c"))
        .explode("c")
        .with_columns(idx=pl.int_range(pl.len()).over(LINE))
        .select(
            LINE,
            "idx",
            pl.col("c").struct.field("response").alias("response"),
            mean_aspect_rating(pl.col("c").struct.field("annotations"), aspects).alias("rating"),
        )
        .filter(pl.col("rating").is_not_null() & ~is_blank(pl.col("response")))
    )
    comps = comps.with_columns(key=pl.Series(np.random.default_rng(options.seed).random(comps.height)))
    best = (
        comps.sort([LINE, "rating", "idx"], descending=[False, True, False])
        .group_by(LINE, maintain_order=True)
        .first()
        .select(LINE, pl.col("idx").alias("best_idx"), pl.col("rating").alias("best_rating"), "response")
    )
    others = comps.join(best.select(LINE, "best_idx", "best_rating"), on=LINE).filter(
        pl.col("idx") != pl.col("best_idx")
    )
    if options.binarize == "best-worst":
        order, descending = [LINE, "rating", "idx"], [False, False, False]
    else:
        others = others.with_columns(lower=pl.col("rating") < pl.col("best_rating"))
        order, descending = [LINE, "lower", "key"], [False, True, False]
    partner = others.sort(order, descending=descending).group_by(LINE, maintain_order=True).first()
    rated = comps.group_by(LINE).len("n_rated")

    frame = (
        frame.join(best.select(LINE, "best_rating", pl.col("response").alias("chosen_text")), on=LINE, how="left")
        .join(partner.select(LINE, "rating", pl.col("response").alias("rejected_text")), on=LINE, how="left")
        .join(rated, on=LINE, how="left")
    )
    frame = mark(
        frame,
        Rule(
            pl.col("rejected_text").is_null(),
            RejectReason.TOO_FEW_COMPLETIONS,
            pl.format("needs two rated, non-empty completions, found {}", pl.col("n_rated").fill_null(0)),
        ),
    )
    return adapted(
        frame,
        text_message(instruction, "user"),
        text_message(pl.col("chosen_text"), "assistant"),
        text_message(pl.col("rejected_text"), "assistant"),
        pl.col("best_rating"),
        pl.col("rating"),
    ).sort(LINE)
