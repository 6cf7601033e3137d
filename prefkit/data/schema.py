"""The canonical preference schema, declared once: pairs, and unpaired feedback.

One record per pair: ``id``, ``source``, ``prompt``, ``chosen``, ``rejected``, ``score_chosen``,
``score_rejected``. In the conversational style (the default) ``prompt`` is a list of
``{role, content}`` messages ending with a user turn, and ``chosen``/``rejected`` each hold the one
assistant reply: TRL's conversational preference format with an explicit prompt, so DPOTrainer reads
it unchanged. The standard style holds the same pair as plain strings.

Unpaired feedback (what KTO trains on) has one record per reply: ``id``, ``pair_id`` (the pair
it was cut from, null for a record that was never a pair), ``source``, ``prompt``, ``completion``
(the one assistant reply) and ``label`` (true: desirable). :func:`detect_kind` tells the two apart.

Every row-level rule is a :class:`RowCheck`: a polars expression that is True where a row passes,
plus the reject reason it maps to. ``convert`` uses the checks to route rows to the rejects file;
the pandera models in :mod:`prefkit.data.pandera_schema` are built from the very same expressions, so what
``convert`` writes is exactly what ``validate`` accepts. This module imports no pandera, which keeps
``convert`` quick to start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from prefkit.data.messages import (
    MESSAGES,
    ROLES,
    alternates_from_user,
    any_blank_content,
    is_blank,
    reply_text,
    role_codes,
)
from prefkit.data.reasons import RejectReason

COLUMNS = ("id", "source", "prompt", "chosen", "rejected", "score_chosen", "score_rejected")
UNPAIRED_COLUMNS = ("id", "pair_id", "source", "prompt", "completion", "label")
KINDS = ("pairs", "unpaired")
STYLES = ("conversational", "standard")
OPTIONAL_COLUMNS = {
    "margin": lambda dtype: dtype == pl.Float64,
    "metadata": lambda dtype: isinstance(dtype, pl.Struct) and all(f.dtype == pl.String for f in dtype.fields),
}
"""Columns a canonical file may have, and the dtype test each must pass: ``margin`` (the strength
of the preference as its source defines it: a rating gap, a rank gap, a score ratio; null where
unknown) and ``metadata`` (source fields worth keeping: subset, original id, model names,
language, every value a string)."""


def optional_columns(kind: str = "pairs") -> dict:
    """The optional columns of a kind and their dtype tests: unpaired records have no ``margin``."""
    return OPTIONAL_COLUMNS if kind == "pairs" else {"metadata": OPTIONAL_COLUMNS["metadata"]}


def canonical_columns(frame: pl.DataFrame, kind: str = "pairs") -> list[str]:
    """The canonical columns in order, with the optional ones the frame has."""
    required = UNPAIRED_COLUMNS if kind == "unpaired" else COLUMNS
    return [*required, *(name for name in optional_columns(kind) if name in frame.columns)]


def frame_schema(style: str, kind: str = "pairs") -> dict[str, pl.DataType]:
    """The polars dtypes of a canonical frame in the given style and kind."""
    text = MESSAGES if style == "conversational" else pl.String
    if kind == "unpaired":
        return {
            "id": pl.String,
            "pair_id": pl.String,
            "source": pl.String,
            "prompt": text,
            "completion": text,
            "label": pl.Boolean,
        }
    return {
        "id": pl.String,
        "source": pl.String,
        "prompt": text,
        "chosen": text,
        "rejected": text,
        "score_chosen": pl.Float64,
        "score_rejected": pl.Float64,
    }


@dataclass(frozen=True)
class RowCheck:
    """One row-level rule of the schema."""

    name: str
    reason: RejectReason
    description: str
    """What a passing row satisfies (shown by ``validate``)."""
    failure: str
    """What is wrong with a failing row (the ``detail`` in rejects files)."""
    passes: Callable[[], pl.Expr]


def _one_assistant_reply(column: str) -> Callable[[], pl.Expr]:
    def passes() -> pl.Expr:
        col = pl.col(column)
        return (col.list.len() == 1) & (col.list.first().struct.field("role") == "assistant")

    return passes


def _scores_finite() -> pl.Expr:
    def finite(column: str) -> pl.Expr:
        return pl.col(column).is_null() | pl.col(column).is_finite()

    return finite("score_chosen") & finite("score_rejected")


def _roles_valid(columns: tuple[str, ...] = ("prompt", "chosen", "rejected")) -> Callable[[], pl.Expr]:
    # role_codes marks unknown roles with "?"; the prompt's codes are shared with the alternation check.
    return lambda: pl.all_horizontal(~role_codes(pl.col(c)).str.contains("?", literal=True) for c in columns)


def _reply(column: str, style: str) -> pl.Expr:
    """The reply text of ``chosen``/``rejected``: the one message's content, or the plain string."""
    return reply_text(pl.col(column)) if style == "conversational" else pl.col(column)


def _reply_checks(style: str) -> tuple[RowCheck, ...]:
    """The checks both styles share, over their reply texts and scores."""
    return (
        RowCheck(
            "replies_not_empty",
            RejectReason.EMPTY_RESPONSE,
            "chosen and rejected replies are not blank",
            "a reply is blank",
            lambda: ~is_blank(_reply("chosen", style)) & ~is_blank(_reply("rejected", style)),
        ),
        RowCheck(
            "replies_differ",
            RejectReason.IDENTICAL_RESPONSES,
            "chosen and rejected replies differ",
            "chosen and rejected replies are the same text",
            lambda: (
                _reply("chosen", style).str.strip_chars() != _reply("rejected", style).str.strip_chars()
            ).fill_null(True),
        ),
        RowCheck(
            "scores_finite",
            RejectReason.INVALID_SCORE,
            "scores are finite numbers when present",
            "a score is NaN or infinite",
            _scores_finite,
        ),
    )


def _conversational_prompt_checks(columns: tuple[str, ...]) -> tuple[RowCheck, ...]:
    """The prompt's checks, and the roles of every message of ``columns``."""
    return (
        RowCheck(
            "prompt_not_empty",
            RejectReason.EMPTY_PROMPT,
            "prompt has at least one message and no message is blank",
            "the prompt is empty or has a blank message",
            lambda: (pl.col("prompt").list.len() > 0) & ~any_blank_content(pl.col("prompt")),
        ),
        RowCheck(
            "roles_valid",
            RejectReason.INVALID_ROLE,
            f"every role is one of {', '.join(ROLES)}",
            "a message has an unknown role",
            _roles_valid(columns),
        ),
        RowCheck(
            "prompt_alternates_and_ends_with_user",
            RejectReason.NON_ALTERNATING_TURNS,
            "prompt turns alternate user/assistant (optional system first) and end with a user turn",
            "prompt turns do not alternate user/assistant or do not end with a user turn",
            lambda: alternates_from_user(pl.col("prompt"), end_with_user=True),
        ),
    )


# Order matters: in ``convert`` a row failing several checks is rejected with the first reason.
CONVERSATIONAL_CHECKS: tuple[RowCheck, ...] = (
    *_conversational_prompt_checks(("prompt", "chosen", "rejected")),
    RowCheck(
        "chosen_is_one_assistant_reply",
        RejectReason.NO_ASSISTANT_TURN,
        "chosen holds exactly one assistant message",
        "chosen is not exactly one assistant message",
        _one_assistant_reply("chosen"),
    ),
    RowCheck(
        "rejected_is_one_assistant_reply",
        RejectReason.NO_ASSISTANT_TURN,
        "rejected holds exactly one assistant message",
        "rejected is not exactly one assistant message",
        _one_assistant_reply("rejected"),
    ),
    *_reply_checks("conversational"),
)

STANDARD_PROMPT_CHECK = RowCheck(
    "prompt_not_empty",
    RejectReason.EMPTY_PROMPT,
    "prompt is not blank",
    "the prompt is blank",
    lambda: ~is_blank(pl.col("prompt")),
)

STANDARD_CHECKS: tuple[RowCheck, ...] = (STANDARD_PROMPT_CHECK, *_reply_checks("standard"))


def _completion_not_empty(style: str) -> RowCheck:
    return RowCheck(
        "completion_not_empty",
        RejectReason.EMPTY_RESPONSE,
        "the completion is not blank",
        "the completion is blank",
        lambda: ~is_blank(_reply("completion", style)),
    )


UNPAIRED_CONVERSATIONAL_CHECKS: tuple[RowCheck, ...] = (
    *_conversational_prompt_checks(("prompt", "completion")),
    RowCheck(
        "completion_is_one_assistant_reply",
        RejectReason.NO_ASSISTANT_TURN,
        "completion holds exactly one assistant message",
        "completion is not exactly one assistant message",
        _one_assistant_reply("completion"),
    ),
    _completion_not_empty("conversational"),
)

UNPAIRED_STANDARD_CHECKS: tuple[RowCheck, ...] = (STANDARD_PROMPT_CHECK, _completion_not_empty("standard"))


def checks_for(style: str, kind: str = "pairs") -> tuple[RowCheck, ...]:
    if kind == "unpaired":
        return UNPAIRED_CONVERSATIONAL_CHECKS if style == "conversational" else UNPAIRED_STANDARD_CHECKS
    return CONVERSATIONAL_CHECKS if style == "conversational" else STANDARD_CHECKS


def detect_kind(schema: dict[str, pl.DataType] | pl.Schema) -> str:
    """``unpaired`` for records with a ``completion`` and no ``chosen``, otherwise ``pairs``.

    >>> detect_kind({"prompt": pl.String, "completion": pl.String, "label": pl.Boolean})
    'unpaired'
    """
    return "unpaired" if "completion" in schema and "chosen" not in schema else "pairs"


def detect_style(schema: dict[str, pl.DataType] | pl.Schema) -> str:
    """``standard`` when the replies are plain strings, otherwise ``conversational``."""
    reply = "completion" if detect_kind(schema) == "unpaired" else "chosen"
    return "standard" if schema.get(reply) == pl.String else "conversational"
