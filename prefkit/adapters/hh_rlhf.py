"""Anthropic HH-RLHF: raw ``{chosen, rejected}`` transcripts with no prompt field.

Each transcript is parsed into messages on its ``\\n\\nHuman:`` / ``\\n\\nAssistant:`` markers; the
prompt is the conversation both transcripts share before their final assistant reply. The real
files hold pairs that must not become silently wrong pairs, and each gets its own reason:

- text before the first marker: ``malformed_transcript``;
- no final assistant reply: ``no_assistant_turn``;
- a literal ``\\n\\nAssistant:`` inside a reply, so turns stop alternating: ``non_alternating_turns``;
- one transcript a turn-wise prefix of the other: ``transcript_is_prefix``;
- transcripts that differ before the last turn: ``diverged_before_last_turn``.

Empty final replies are left to the schema's ``empty_response`` check.
The variant with a ``prompt`` column (``"\\n\\nHuman: ...\\n\\nAssistant:"`` plus reply-only
``chosen``/``rejected``) is read by joining the prompt back onto each reply.
"""

from __future__ import annotations

import polars as pl

from prefkit.adapters.base import AdaptOptions, mark, require, start
from prefkit.messages import MESSAGES, alternates_from_user, roles, transcript_messages
from prefkit.reasons import RejectReason
from prefkit.sources import DETAIL, LINE, REASON

NAME = "hh-rlhf"


def looks_like(frame: pl.DataFrame) -> bool:
    """String ``chosen``/``rejected`` whose first records contain HH turn markers."""
    schema = frame.schema
    if schema.get("chosen") != pl.String or schema.get("rejected") != pl.String:
        return False
    text = pl.col("prompt") + pl.col("chosen") if schema.get("prompt") == pl.String else pl.col("chosen")
    head = frame.head(100).select(text.str.contains("Human:", literal=True).any()).item()
    return bool(head)


def adapt(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    frame = start(frame)
    frame, chosen, _ = require(frame, "chosen", "chosen", ("string",))
    frame, rejected, _ = require(frame, "rejected", "rejected", ("string",))
    if frame.schema.get("prompt") == pl.String:
        chosen, rejected = pl.col("prompt") + chosen, pl.col("prompt") + rejected

    lead_c, msgs_c = transcript_messages(chosen)
    lead_r, msgs_r = transcript_messages(rejected)
    frame = frame.with_columns(__c=msgs_c, __r=msgs_r, __lead_c=lead_c, __lead_r=lead_r)
    c, r = pl.col("__c"), pl.col("__r")
    n_c, n_r = c.list.len(), r.list.len()

    def has_text(expr: pl.Expr) -> pl.Expr:
        return expr.str.strip_chars().str.len_bytes() > 0

    frame = mark(
        frame,
        has_text(pl.col("__lead_c")) | has_text(pl.col("__lead_r")),
        RejectReason.MALFORMED_TRANSCRIPT,
        "text before the first 'Human:' turn",
    )
    for side, msgs in (("chosen", c), ("rejected", r)):
        has_assistant = roles(msgs).list.contains("assistant")
        frame = mark(frame, ~has_assistant, RejectReason.NO_ASSISTANT_TURN, f"{side} transcript has no Assistant turn")
        frame = mark(
            frame,
            roles(msgs).list.last() != "assistant",
            RejectReason.NO_ASSISTANT_TURN,
            f"{side} transcript ends with a Human turn",
        )
        frame = mark(
            frame,
            ~alternates_from_user(msgs),
            RejectReason.NON_ALTERNATING_TURNS,
            f"{side} turns do not alternate Human/Assistant (a literal 'Assistant:' inside a reply?)",
        )
    shorter = pl.min_horizontal(n_c, n_r)
    frame = mark(
        frame,
        (n_c != n_r) & (c.list.slice(0, shorter) == r.list.slice(0, shorter)),
        RejectReason.TRANSCRIPT_IS_PREFIX,
        pl.format("one transcript is a prefix of the other ({} vs {} turns)", n_c, n_r),
    )
    frame = mark(
        frame,
        c.list.slice(0, n_c - 1) != r.list.slice(0, n_r - 1),
        RejectReason.DIVERGED_BEFORE_LAST_TURN,
        pl.format("transcripts differ before the last turn ({} vs {} turns)", n_c, n_r),
    )
    return frame.select(
        LINE,
        REASON,
        DETAIL,
        c.list.slice(0, n_c - 1).cast(MESSAGES).alias("prompt"),
        c.list.slice(-1).cast(MESSAGES).alias("chosen"),
        r.list.slice(-1).cast(MESSAGES).alias("rejected"),
        pl.lit(None, pl.Float64).alias("score_chosen"),
        pl.lit(None, pl.Float64).alias("score_rejected"),
    )
