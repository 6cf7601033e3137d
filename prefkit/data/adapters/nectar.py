"""berkeley-nest/Nectar: an HH-style transcript prompt and 7 ranked answers.

``prompt`` is ``"\\n\\nHuman: ...\\n\\nAssistant:"`` (multi-turn prompts hold earlier turns the same
way); ``answers`` is a list of ``{answer, model, rank}`` where rank 1 is the best (GPT-4 ranked
them). Binarized by :mod:`binarize` on the negated rank, so the chosen answer always outranks the
rejected one; the margin is the rank gap, and both ranks and models go to ``metadata``.

A rank that is missing, not a whole number from 1 to the number of answers, or repeated within a
record makes the record ``invalid_label``: a ranking with a hole cannot say which answer is better.
"""

from __future__ import annotations

import polars as pl

from prefkit.data.adapters.base import (
    AdaptOptions,
    Rule,
    adapted,
    mark,
    metadata_struct,
    rejected_batch,
    require,
    start,
)
from prefkit.data.adapters.binarize import ranked_list_pairs
from prefkit.data.adapters.hh_rlhf import segment_messages, transcript_segments
from prefkit.data.messages import is_blank, text_message
from prefkit.data.reasons import RejectReason
from prefkit.errors import FieldMappingError


def looks_like(frame: pl.DataFrame) -> bool:
    return {"prompt", "answers"} <= set(frame.columns)


def transcript_prompt(expr: pl.Expr) -> pl.Expr:
    """An HH-style prompt ending in ``Assistant:`` as messages, the empty last turn dropped.

    >>> pl.select(transcript_prompt(pl.lit("\\n\\nHuman: Hi\\n\\nAssistant:"))).item().to_list()
    [{'role': 'user', 'content': 'Hi'}]
    """
    _, segments = transcript_segments(expr)
    messages = segment_messages(segments)
    last = messages.list.last()
    empty_assistant = (last.struct.field("role") == "assistant") & is_blank(last.struct.field("content"))
    return pl.when(empty_assistant).then(messages.list.slice(0, messages.list.len() - 1)).otherwise(messages)


def rank_problem(ranks: pl.Expr) -> pl.Expr:
    """Why a record's ranks are not a ranking (null if they are): every answer needs a whole-number
    rank from 1 to the number of answers, each used once.

    >>> pl.DataFrame({"r": [[2, 1, 3], [1, 1, 2], [1, None], [1, 9]]}).select(rank_problem(pl.col("r"))).to_series().to_list()
    [None, 'rank repeated: [1, 1, 2]', 'rank missing: [1, null]', 'rank outside 1..2: [1, 9]']
    """
    n = ranks.list.len()
    shown = ranks.cast(pl.List(pl.String)).list.eval(pl.element().fill_null("null")).list.join(", ")
    return (
        pl.when(ranks.list.eval(pl.element().is_null()).list.any())
        .then(pl.format("rank missing: [{}]", shown))
        .when(
            ranks.list.eval(
                (pl.element() < 1) | (pl.element() > pl.element().len()) | (pl.element().round() != pl.element())
            ).list.any()
        )
        .then(pl.format("rank outside 1..{}: [{}]", n, shown))
        .when(ranks.list.n_unique() != n)
        .then(pl.format("rank repeated: [{}]", shown))
        .otherwise(pl.lit(None, pl.String))
    )


def adapt(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    frame = start(frame)
    frame, prompt, _ = require(frame, "prompt", "prompt", ("string",))
    if "answers" not in frame.columns:
        raise FieldMappingError("no record has the field 'answers' needed for answers")
    dtype = frame.schema["answers"]
    inner = dtype.inner if isinstance(dtype, pl.List) else None
    fields = {f.name: f.dtype for f in inner.fields} if isinstance(inner, pl.Struct) else {}
    names = set(fields)
    rank = fields.get("rank")
    if fields.get("answer") not in (pl.String, pl.Null) or rank is None or not (rank.is_numeric() or rank == pl.Null):
        # These records' answers have another shape: each is one reject.
        detail = f"'answers' must be a list of objects with text 'answer' and number 'rank', got {dtype}"
        return rejected_batch(frame, prompt, detail)
    extra = ("model",) if "model" in names else ()
    ranks = pl.col("answers").list.eval(pl.element().struct.field("rank"))
    frame = mark(
        frame,
        Rule(pl.col("answers").is_null(), RejectReason.MISSING_FIELD, "field 'answers' is missing or null"),
        Rule(rank_problem(ranks).is_not_null(), RejectReason.INVALID_LABEL, rank_problem(ranks)),
    )
    candidates = ranked_list_pairs(frame, pl.col("answers"), "answer", "rank", True, options, extra)
    model = {
        f"{side}_model": pl.col(f"{side}_model") if extra else pl.lit(None, pl.String)
        for side in ("chosen", "rejected")
    }
    source = frame.schema.get("source")
    origin = pl.col("source").cast(pl.List(pl.String)).list.join(", ") if isinstance(source, pl.List) else None
    return adapted(
        candidates,
        transcript_prompt(prompt),
        text_message(pl.col("__chosen"), "assistant"),
        text_message(pl.col("__rejected"), "assistant"),
        margin=pl.col("rejected_order") - pl.col("chosen_order"),
        metadata=metadata_struct(
            **model,
            chosen_rank=pl.col("chosen_order").cast(pl.Int64),
            rejected_rank=pl.col("rejected_order").cast(pl.Int64),
            **({"source": origin} if origin is not None else {}),
        ),
    )
