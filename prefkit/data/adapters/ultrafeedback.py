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

import polars as pl

from prefkit.data.adapters.base import AdaptOptions, adapted, pairs_from_fields, rejected_batch, require, start
from prefkit.data.adapters.binarize import ranked_list_pairs
from prefkit.data.messages import text_message
from prefkit.errors import FieldMappingError


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


def rated_aspects(annotations: pl.DataType | None) -> list[str]:
    """The aspects of an ``annotations`` dtype that carry a plain ``Rating`` (others cannot be read).

    >>> rated_aspects(pl.Struct({"helpfulness": pl.Struct({"Rating": pl.String}), "": pl.Null}))
    ['helpfulness']
    """
    if not isinstance(annotations, pl.Struct):
        return []
    return [
        f.name
        for f in annotations.fields
        if isinstance(f.dtype, pl.Struct)
        and any(g.name == "Rating" and not g.dtype.is_nested() for g in f.dtype.fields)
    ]


def adapt_raw(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    """Binarizes each instruction's completions, scored by :func:`mean_aspect_rating`, with
    ``--binarize`` (see :mod:`prefkit.data.adapters.binarize`): by default the best against a
    seeded random lower-rated one, the Zephyr recipe. Instructions whose completions are all rated
    alike give a ``tie``."""
    frame = start(frame)
    frame, instruction, _ = require(frame, "prompt", "instruction", ("string",))
    if "completions" not in frame.columns:
        raise FieldMappingError("no record has the field 'completions' needed for completions")
    completions_dtype = frame.schema["completions"]
    inner = completions_dtype.inner if isinstance(completions_dtype, pl.List) else None
    fields = {f.name: f.dtype for f in inner.fields} if isinstance(inner, pl.Struct) else {}
    annotations = fields.get("annotations")
    aspects = rated_aspects(annotations)
    if "response" not in fields or not aspects:
        # These records' completions have another shape (null, empty, not rated): each is a reject.
        detail = (
            f"'completions' must be a list of objects with 'response' and rated 'annotations', got {completions_dtype}"
        )
        return rejected_batch(frame, instruction, detail)
    rated = pl.col("completions").list.eval(
        pl.struct(
            response=pl.element().struct.field("response"),
            rating=mean_aspect_rating(pl.element().struct.field("annotations"), aspects),
        )
    )
    candidates = ranked_list_pairs(frame, rated, "response", "rating", False, options)
    return adapted(
        candidates,
        text_message(instruction, "user"),
        text_message(pl.col("__chosen"), "assistant"),
        text_message(pl.col("__rejected"), "assistant"),
        pl.col("chosen_order"),
        pl.col("rejected_order"),
    )
