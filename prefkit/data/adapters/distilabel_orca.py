"""argilla/distilabel-intel-orca-dpo-pairs: Intel's Orca DPO pairs, re-rated by GPT-4 with distilabel.

Columns ``system``, ``input``, ``chosen``, ``rejected`` are already in the rated order (the
``status`` column says whether the rating kept the original order, ``unchanged``, or ``swapped``
it). The card's recommended filter is kept, with reasons: ``status == "tie"`` goes to rejects as
``tie``, and ``in_gsm8k_train`` (the prompt is in GSM8K's train set) as ``contaminated``.
``chosen_score`` becomes ``score_chosen``.
"""

from __future__ import annotations

import polars as pl

from prefkit.data.adapters.base import AdaptOptions, Rule, adapted, mark, metadata_struct, require, start
from prefkit.data.messages import is_blank, text_message
from prefkit.data.reasons import RejectReason


def looks_like(frame: pl.DataFrame) -> bool:
    return {"input", "chosen", "rejected", "status", "in_gsm8k_train"} <= set(frame.columns)


def adapt(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    frame = start(frame)
    frame, prompt, _ = require(frame, "input", "input", ("string",))
    frame, chosen, _ = require(frame, "chosen", "chosen", ("string",))
    frame, rejected, _ = require(frame, "rejected", "rejected", ("string",))
    frame, status, _ = require(frame, "status", "status", ("string",))
    frame, system, _ = require(frame, "system", "system", ("string",), optional=True)
    in_gsm8k = pl.col("in_gsm8k_train") if frame.schema.get("in_gsm8k_train") == pl.Boolean else pl.lit(False)
    frame = mark(
        frame,
        Rule(status == "tie", RejectReason.TIE, "status is tie: the rater found both replies equally good"),
        Rule(in_gsm8k, RejectReason.CONTAMINATED, "in_gsm8k_train: the prompt is in GSM8K's train set"),
    )
    user = text_message(prompt, "user")
    if system is not None:
        with_system = pl.concat_list(text_message(system, "system"), user)
        user = pl.when(is_blank(system)).then(user).otherwise(with_system)
    score = pl.col("chosen_score") if frame.schema.get("chosen_score", pl.Null).is_numeric() else None
    return adapted(
        frame,
        user,
        text_message(chosen, "assistant"),
        text_message(rejected, "assistant"),
        score,
        metadata=metadata_struct(status=status),
    )
