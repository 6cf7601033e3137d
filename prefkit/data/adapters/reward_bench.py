"""allenai/reward-bench: ``prompt``, ``chosen``, ``rejected``, ``chosen_model``, ``rejected_model``,
``subset``, ``id``; made for evaluation (``prefkit eval --by metadata.subset`` then adds the
RewardBench section scores, see :mod:`prefkit.lm.reward_bench_sections`).

The pairs are already ordered (chosen is the reference answer); ``subset``, ``id`` and the two model
names go to ``metadata``.
"""

from __future__ import annotations

import polars as pl

from prefkit.data.adapters.base import AdaptOptions, adapted, metadata_struct, require, source_field, start
from prefkit.data.messages import text_message


def looks_like(frame: pl.DataFrame) -> bool:
    return {"prompt", "chosen", "rejected", "subset"} <= set(frame.columns) and frame.schema["chosen"] == pl.String


def adapt(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    frame = start(frame)
    frame, prompt, _ = require(frame, "prompt", "prompt", ("string",))
    frame, chosen, _ = require(frame, "chosen", "chosen", ("string",))
    frame, rejected, _ = require(frame, "rejected", "rejected", ("string",))

    return adapted(
        frame,
        text_message(prompt, "user"),
        text_message(chosen, "assistant"),
        text_message(rejected, "assistant"),
        metadata=metadata_struct(
            subset=source_field(frame, "subset"),
            id=source_field(frame, "id"),
            chosen_model=source_field(frame, "chosen_model"),
            rejected_model=source_field(frame, "rejected_model"),
        ),
    )
