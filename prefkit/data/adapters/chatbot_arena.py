"""LMSYS Chatbot Arena votes, in both published layouts.

- Conversations (lmsys/chatbot_arena_conversations): ``conversation_a`` and ``conversation_b`` are
  message lists, ``winner`` is one of ``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``.
- Human preference (lmsys/lmsys-arena-human-preference-55k): ``prompt``, ``response_a`` and
  ``response_b`` are JSON-encoded lists of turns (one string per user turn, one per reply), and
  the vote is one-hot over ``winner_model_a``, ``winner_model_b`` and ``winner_tie``.

The winner's conversation is chosen. Both ties are ties; a winner outside the definition is an
``invalid_label``. A vote is on whole conversations, so in a multi-turn conversation whose earlier
replies differ the vote says nothing about the last reply alone: such pairs go to rejects as
``diverged_before_last_turn``, as in HH-RLHF. The two model names go to ``metadata``.
"""

from __future__ import annotations

import json

import polars as pl

from prefkit.data.adapters.base import (
    AdaptOptions,
    Rule,
    mark,
    metadata_struct,
    pairs_from_fields,
    require,
    source_field,
    start,
)
from prefkit.data.adapters.labelled import by_side, choose
from prefkit.data.messages import MESSAGES
from prefkit.data.reasons import RejectReason
from prefkit.data.sources import LINE, REASON

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
ONE_HOT = ("winner_model_a", "winner_model_b", "winner_tie")


def looks_like_conversations(frame: pl.DataFrame) -> bool:
    return {"conversation_a", "conversation_b", "winner"} <= set(frame.columns)


def looks_like_human_preference(frame: pl.DataFrame) -> bool:
    return {"prompt", "response_a", "response_b", "winner_model_a"} <= set(frame.columns)


def looks_like(frame: pl.DataFrame) -> bool:
    return looks_like_conversations(frame) or looks_like_human_preference(frame)


def adapt(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    frame = start(frame)
    if looks_like_conversations(frame):
        frame, winner, _ = require(frame, "winner", "winner", ("string",))
        frame = mark(
            frame,
            Rule(
                ~winner.is_in(WINNERS).fill_null(False),
                RejectReason.INVALID_LABEL,
                pl.format(f"winner must be one of {', '.join(WINNERS)}; got {{}}", winner.fill_null("null")),
            ),
            Rule(winner.str.starts_with("tie"), RejectReason.TIE, pl.format("winner is '{}'", winner)),
        )
        first_better = winner == "model_a"
        frame, conv_a, _ = require(frame, "conversation_a", "conversation_a", ("messages",))
        frame, conv_b, _ = require(frame, "conversation_b", "conversation_b", ("messages",))
    else:
        frame = _one_hot_problems(frame)
        first_better = pl.col("winner_model_a") == 1
        frame = _decode_turns(frame)
        conv_a, conv_b = pl.col("__conv_a"), pl.col("__conv_b")
    frame = frame.with_columns(__first_is_chosen=first_better.fill_null(True))
    chosen, rejected = choose(pl.col("__first_is_chosen"), conv_a, conv_b)
    frame = frame.with_columns(chosen.alias("__chosen_conv"), rejected.alias("__rejected_conv"))
    pairs = pairs_from_fields(frame, None, "__chosen_conv", "__rejected_conv")

    model_c, model_r = by_side(source_field(frame, "model_a"), source_field(frame, "model_b"))
    metadata = frame.select(
        metadata_struct(
            chosen_model=model_c,
            rejected_model=model_r,
            language=source_field(frame, "language"),
            id=pl.coalesce(source_field(frame, "question_id"), source_field(frame, "id")),
        ).alias("metadata")
    )
    return pairs.with_columns(metadata.to_series())


def _one_hot_problems(frame: pl.DataFrame) -> pl.DataFrame:
    for name in ONE_HOT:
        frame, _, _ = require(frame, name, name, ("number",))
    values = [pl.col(n) for n in ONE_HOT]
    one_hot = pl.all_horizontal(v.is_in([0, 1]) for v in values).fill_null(False) & (pl.sum_horizontal(values) == 1)
    shown = pl.format(", ".join(f"{n}={{}}" for n in ONE_HOT), *[v.cast(pl.String).fill_null("null") for v in values])
    return mark(
        frame,
        Rule(~one_hot, RejectReason.INVALID_LABEL, pl.format("exactly one winner column must be 1: {}", shown)),
        Rule(pl.col("winner_tie") == 1, RejectReason.TIE, "winner_tie is 1"),
    )


def _decode(frame: pl.DataFrame, name: str) -> pl.Series:
    """A JSON-encoded list of strings as a list; text that is not such a list gives null."""
    try:
        return frame[name].str.json_decode(pl.List(pl.String))
    except pl.exceptions.PolarsError:
        # Rare: some row is not valid JSON; decode each row so only that row fails.
        def one(text: str | None):
            try:
                value = json.loads(text) if text is not None else None
            except ValueError:
                return None
            ok = isinstance(value, list) and all(v is None or isinstance(v, str) for v in value)
            return value if ok else None

        return pl.Series([one(t) for t in frame[name].to_list()], dtype=pl.List(pl.String))


def _decode_turns(frame: pl.DataFrame) -> pl.DataFrame:
    """Decodes prompt and replies and interleaves them into ``__conv_a`` and ``__conv_b``."""
    for name in ("prompt", "response_a", "response_b"):
        frame, _, _ = require(frame, name, name, ("string",))
    decoded = frame.select(LINE, *[_decode(frame, n).alias(f"__{n}") for n in ("prompt", "response_a", "response_b")])
    lengths = [pl.col(f"__{n}").list.len() for n in ("prompt", "response_a", "response_b")]
    sound = (
        pl.all_horizontal(c.is_not_null() for c in lengths) & (lengths[0] == lengths[1]) & (lengths[0] == lengths[2])
    )
    frame = frame.join(decoded, on=LINE, how="left", maintain_order="left")
    frame = mark(
        frame,
        Rule(
            ~sound.fill_null(False),
            RejectReason.MALFORMED_TRANSCRIPT,
            "prompt, response_a and response_b must be JSON lists of strings with one reply per user turn",
        ),
    )
    live = frame.filter(pl.col(REASON).is_null())
    for side in ("a", "b"):
        turns = (
            live.select(LINE, "__prompt", f"__response_{side}")
            .explode("__prompt", f"__response_{side}")
            .select(
                LINE,
                pl.concat_list(
                    pl.struct(role=pl.lit("user"), content=pl.col("__prompt")),
                    pl.struct(role=pl.lit("assistant"), content=pl.col(f"__response_{side}")),
                ).alias("__turns"),
            )
            .explode("__turns")
            .group_by(LINE, maintain_order=True)
            .agg(pl.col("__turns").alias(f"__conv_{side}"))
        )
        frame = frame.join(turns, on=LINE, how="left", maintain_order="left")
    empty = pl.lit([], MESSAGES)
    return frame.with_columns(pl.col("__conv_a").fill_null(empty), pl.col("__conv_b").fill_null(empty))
