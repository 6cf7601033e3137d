"""PKU-Alignment/PKU-SafeRLHF: two replies with two labels, helpfulness and harmlessness.

``better_response_id`` (0 or 1) names the more helpful reply, ``safer_response_id`` the safer one;
``is_response_0_safe`` and ``is_response_1_safe`` say whether each is safe. ``--axis`` picks the
label: ``better`` (default), ``safer``, or ``both``, where a pair whose two labels name different
replies goes to rejects as ``conflicting_labels`` (the dataset card's "dual preference" view). The
chosen and rejected replies' safety flags and harm categories go to ``metadata``.
"""

from __future__ import annotations

import polars as pl

from prefkit.data.adapters.base import AXES, AdaptOptions, Rule, metadata_struct, require, source_field, start
from prefkit.data.adapters.labelled import by_side, labelled_pair
from prefkit.data.messages import text_message
from prefkit.data.reasons import RejectReason
from prefkit.errors import FieldMappingError

LABELS = {"better": "better_response_id", "safer": "safer_response_id"}


def looks_like(frame: pl.DataFrame) -> bool:
    return {"response_0", "response_1", "better_response_id"} <= set(frame.columns)


def _id_problem(frame: pl.DataFrame, name: str) -> tuple[pl.DataFrame, pl.Expr, pl.Expr, pl.Expr]:
    """``(frame, value, valid, detail)`` of a label field: which response (0 or 1) it names."""
    frame, value, _ = require(frame, name, name, ("number",))
    valid = ((value == 0) | (value == 1)).fill_null(False)
    detail = pl.format(f"{name} must be 0 or 1, got {{}}", value.cast(pl.String).fill_null("null"))
    return frame, value, valid, detail


def adapt(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    if options.axis not in AXES:
        raise FieldMappingError(f"unknown axis '{options.axis}' (expected one of {', '.join(AXES)})")
    frame = start(frame)
    frame, prompt, _ = require(frame, "prompt", "prompt", ("string",))
    frame, first, _ = require(frame, "response_0", "response_0", ("string",))
    frame, second, _ = require(frame, "response_1", "response_1", ("string",))
    axes = ("better", "safer") if options.axis == "both" else (options.axis,)
    checks, values = [], {}
    for axis in axes:
        frame, values[axis], valid, detail = _id_problem(frame, LABELS[axis])
        checks.append((valid, detail))
    valid = pl.all_horizontal(v for v, _ in checks)
    detail = pl.coalesce(pl.when(~v).then(d) for v, d in checks)
    first_better = values[axes[0]] == 0
    rules = ()
    if options.axis == "both":
        better, safer = values["better"], values["safer"]
        rules = (
            Rule(
                better != safer,
                RejectReason.CONFLICTING_LABELS,
                pl.format("better_response_id is {} but safer_response_id is {}", better, safer),
            ),
        )

    safe_c, safe_r = by_side(source_field(frame, "is_response_0_safe"), source_field(frame, "is_response_1_safe"))
    harm_c, harm_r = by_side(_harm(frame, "response_0_harm_category"), _harm(frame, "response_1_harm_category"))
    return labelled_pair(
        frame,
        prompt=text_message(prompt, "user"),
        first=first,
        second=second,
        valid=valid,
        label_detail=detail,
        first_better=first_better,
        tie_detail="",
        metadata=metadata_struct(
            axis=pl.lit(options.axis),
            chosen_safe=safe_c,
            rejected_safe=safe_r,
            chosen_harm=harm_c,
            rejected_harm=harm_r,
            prompt_source=source_field(frame, "prompt_source"),
        ),
        rules=rules,
    )


def _harm(frame: pl.DataFrame, name: str) -> pl.Expr:
    """The harm categories marked true, joined: ``{"Violence": true, "Privacy": false}`` gives ``Violence``."""
    dtype = frame.schema.get(name)
    if not isinstance(dtype, pl.Struct):
        return pl.lit(None, pl.String)
    marked = [pl.when(pl.col(name).struct.field(f.name)).then(pl.lit(f.name)) for f in dtype.fields]
    return pl.concat_list(marked).list.drop_nulls().list.join(", ")
