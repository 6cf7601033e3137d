"""Unpaired feedback: one reply and a verdict on it, the data KTO trains on and most products collect.

TRL's unpaired layout is ``prompt``, ``completion`` and a boolean ``label``; product logs carry a
thumbs field instead (``"up"``/``"down"``, ``1``/``-1``, ``1``/``0``, 👍/👎), mapped with
``--field label=PATH`` (``--field prompt=PATH --field completion=PATH`` for the other two). A label
prefkit cannot read as desirable or undesirable is an ``invalid_label`` reject naming the value,
never a guess. The prompt and completion are read as pairs' are (strings or message lists; a
completion given as a conversation brings its own prompt), so the same checks apply.
"""

from __future__ import annotations

import polars as pl

from prefkit.data.adapters.base import (
    AdaptOptions,
    Rule,
    as_text_struct,
    mark,
    pairs_from_fields,
    require,
    start,
)
from prefkit.data.columns import DETAIL, LINE, REASON
from prefkit.data.messages import is_messages_dtype
from prefkit.data.reasons import RejectReason

DESIRABLE_WORDS = (
    "true",
    "yes",
    "1",
    "+1",
    "up",
    "thumbs_up",
    "thumbsup",
    "👍",
    "good",
    "positive",
    "desirable",
    "like",
)
UNDESIRABLE_WORDS = (
    "false",
    "no",
    "0",
    "-1",
    "down",
    "thumbs_down",
    "thumbsdown",
    "👎",
    "bad",
    "negative",
    "undesirable",
    "dislike",
)
LABEL_RULE = "true/false, 1/0/-1, up/down, 👍/👎, good/bad or positive/negative"


def looks_like(frame: pl.DataFrame) -> bool:
    """TRL's unpaired layout and prefkit's canonical unpaired files: a completion and a label, no pair."""
    return {"completion", "label"} <= set(frame.columns) and "chosen" not in frame.columns


def label_value(value: pl.Expr, kind: str) -> pl.Expr:
    """A label of any of the usual spellings as a boolean (true: desirable); null where it is none.

    >>> frame = pl.DataFrame({"v": ["up", "Down", "👍", " good ", "meh", None]})
    >>> frame.select(label_value(pl.col("v"), "string")).to_series().to_list()
    [True, False, True, True, None, None]
    >>> pl.DataFrame({"v": [1, 0, -1, 2]}).select(label_value(pl.col("v"), "number")).to_series().to_list()
    [True, False, False, None]
    """
    if kind == "boolean":
        return value
    if kind == "number":
        return pl.when(value == 1).then(True).when((value == 0) | (value == -1)).then(False).otherwise(None)
    word = value.str.strip_chars().str.to_lowercase().str.replace_all(" ", "_")
    return pl.when(word.is_in(DESIRABLE_WORDS)).then(True).when(word.is_in(UNDESIRABLE_WORDS)).then(False)


def unpaired_records(
    frame: pl.DataFrame,
    prompt: str | None,
    completion: str,
    label: str,
    system: str | None = None,
    metadata: pl.Series | None = None,
) -> pl.DataFrame:
    """``__line``, ``__reason``, ``__detail``, ``prompt`` and ``completion`` as message lists, ``label``
    (boolean), and ``pair_id`` and ``metadata`` where the records carry them.

    The prompt and completion go through :func:`pairs_from_fields` as both replies of one pair,
    so a completion is read exactly as a chosen reply is (a conversation's history becomes its prompt).
    """
    frame = start(frame)
    frame, value, kind = require(frame, "label", label, ("boolean", "number", "string"))
    frame = frame.with_columns(label_value(value, kind).alias("__label"))
    shown = value.cast(pl.String).fill_null("null")
    frame = mark(
        frame,
        Rule(
            pl.col("__label").is_null(),
            RejectReason.INVALID_LABEL,
            pl.format(f"{label} must be {LABEL_RULE}, got {{}}", shown),
        ),
    )
    reply = pairs_from_fields(frame, prompt, completion, completion, system=system)
    extra = {"label": frame["__label"]}
    if frame.schema.get("pair_id") in (pl.String, pl.Null):
        extra["pair_id"] = frame["pair_id"].cast(pl.String)
    if metadata is not None:
        extra["metadata"] = metadata
    elif isinstance(frame.schema.get("metadata"), pl.Struct):
        extra["metadata"] = frame.select(as_text_struct(pl.col("metadata"), frame.schema["metadata"])).to_series()
    return reply.select(LINE, REASON, DETAIL, "prompt", pl.col("chosen").alias("completion")).with_columns(**extra)


def adapt(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    """TRL's unpaired layout (``prompt``, ``completion``, ``label``) and prefkit's unpaired files."""
    conversation = is_messages_dtype(frame.schema.get("completion", pl.Null))
    prompt = "prompt" if "prompt" in frame.columns or not conversation else None
    return unpaired_records(frame, prompt, "completion", "label")
