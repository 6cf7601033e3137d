"""Chat messages: the dtype, and small functions over one example or over a column.

Each function here comes in the form the pipeline needs: polars expressions that work on a whole
column at once. Where a single-example form helps readers and tests, it sits beside the expression
and both are checked against each other in the tests.
"""

from __future__ import annotations

import re

import polars as pl

ROLES = ("system", "user", "assistant")
MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
MESSAGES = pl.List(MESSAGE)

HH_MARKER = re.compile(r"\n\n(Human|Assistant):")
_HH_ROLE = {"Human": "user", "Assistant": "assistant"}
# Separators that never occur in real text let one vectorized split stand in for a parser.
_TURN_SEP = "\x00"
_ROLE_SEP = "\x01"


def is_messages_dtype(dtype: pl.DataType) -> bool:
    """True for a list of structs with at least ``role`` and ``content`` fields (extra fields allowed)."""
    if not isinstance(dtype, pl.List) or not isinstance(dtype.inner, pl.Struct):
        return False
    return {"role", "content"} <= {f.name for f in dtype.inner.fields}


def parse_transcript(text: str) -> tuple[str, list[dict[str, str]]]:
    """Splits an Anthropic HH-RLHF transcript into its leading text and its messages.

    Example:
    ```python
    >>> parse_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
    ('', [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}])
    ```

    The leading text is whatever stands before the first marker (empty for well-formed input).
    Contents are stripped of surrounding whitespace: the space after ``Human:`` is format, not text.
    """
    parts = HH_MARKER.split(text)
    messages = [
        {"role": _HH_ROLE[role], "content": content.strip()}
        for role, content in zip(parts[1::2], parts[2::2], strict=True)
    ]
    return parts[0], messages


def transcript_messages(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Vectorized :func:`parse_transcript`: returns ``(leading_text, messages)`` expressions.

    A transcript that does not start with a marker but with ``Human:`` is read as if it did, since
    some derived copies of HH-RLHF drop the first blank line.
    """
    text = pl.when(expr.str.starts_with("Human:")).then(pl.lit("\n\n") + expr).otherwise(expr)
    segments = text.str.replace_all(
        HH_MARKER.pattern, f"{_TURN_SEP}${{1}}{_ROLE_SEP}"
    ).str.split(_TURN_SEP)
    leading = segments.list.first()
    messages = segments.list.slice(1).list.eval(
        pl.struct(
            role=pl.element()
            .str.extract(rf"^(\w+){_ROLE_SEP}")
            .replace_strict(_HH_ROLE, return_dtype=pl.String),
            content=pl.element().str.replace(rf"^\w+{_ROLE_SEP}", "").str.strip_chars(),
        )
    )
    return leading, messages


def text_message(expr: pl.Expr, role: str) -> pl.Expr:
    """Wraps a string column as a one-message list: ``"Hi"`` becomes ``[{"role": role, "content": "Hi"}]``."""
    return pl.concat_list(pl.struct(role=pl.lit(role), content=expr)).cast(MESSAGES)


def normalize_messages(expr: pl.Expr) -> pl.Expr:
    """Keeps only ``role`` and ``content`` of each message, in that order, whatever the input had.

    UltraFeedback stores ``{content, role}``; TRL writes ``{role, content}``; some exports add
    ``name`` or ``weight``. Field order matters to polars dtypes, so every source goes through here.
    """
    return expr.list.eval(
        pl.struct(
            role=pl.element().struct.field("role").cast(pl.String),
            content=pl.element().struct.field("content").cast(pl.String),
        )
    )


def roles(expr: pl.Expr) -> pl.Expr:
    """The list of roles of a message-list column."""
    return expr.list.eval(pl.element().struct.field("role"))


def alternates_from_user(expr: pl.Expr) -> pl.Expr:
    """True where the messages go user, assistant, user, ... with an optional system message first.

    ``[system, user, assistant, user]`` is True; ``[user, user]`` and ``[assistant, user]`` are False.
    """
    body = (
        pl.when(roles(expr).list.first() == "system")
        .then(roles(expr).list.slice(1))
        .otherwise(roles(expr))
    )
    expected = pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("user")).otherwise(pl.lit("assistant"))
    return body.list.eval(pl.element() == expected).list.all() & (body.list.len() > 0)


def any_blank_content(expr: pl.Expr) -> pl.Expr:
    """True where some message's content is missing or only whitespace."""
    return expr.list.eval(
        pl.element().struct.field("content").str.strip_chars().str.len_bytes().fill_null(0) == 0
    ).list.any()


def reply_text(expr: pl.Expr) -> pl.Expr:
    """The content of the last message of a message list (the reply, for chosen/rejected)."""
    return expr.list.last().struct.field("content")


def render_standard_prompt(expr: pl.Expr) -> pl.Expr:
    """Flattens prompt messages to one string for ``--style standard`` (base models, no chat template).

    A single user message becomes its content unchanged. Anything longer is written as an HH-style
    transcript ending in ``\\n\\nAssistant:``, the form base-model DPO recipes have always used:
    ``[{user: "Hi"}, {assistant: "Hey"}, {user: "Bye?"}]`` becomes
    ``"\\n\\nHuman: Hi\\n\\nAssistant: Hey\\n\\nHuman: Bye?\\n\\nAssistant:"``.
    """
    speaker = {"user": "Human", "assistant": "Assistant", "system": "System"}
    transcript = (
        expr.list.eval(
            pl.concat_str(
                pl.lit("\n\n"),
                pl.element().struct.field("role").replace_strict(speaker, return_dtype=pl.String),
                pl.lit(": "),
                pl.element().struct.field("content"),
            )
        ).list.join("")
        + pl.lit("\n\nAssistant:")
    )
    single_user = (expr.list.len() == 1) & (expr.list.first().struct.field("role") == "user")
    return pl.when(single_user).then(expr.list.first().struct.field("content")).otherwise(transcript)


def serialize_pair(prompt: pl.Expr, chosen: pl.Expr, rejected: pl.Expr) -> pl.Expr:
    """One unambiguous string per pair, the input of the content hash that becomes ``id``.

    Roles and contents are joined with control characters that text never contains, so two
    different pairs cannot serialize alike. The form is prefkit's own, independent of any
    library's JSON writer, which keeps ids stable across polars versions.
    """

    def side(messages: pl.Expr) -> pl.Expr:
        return messages.list.eval(
            pl.concat_str(
                pl.element().struct.field("role"), pl.lit("\x1f"), pl.element().struct.field("content")
            )
        ).list.join("\x1e")

    return pl.concat_str(side(prompt), pl.lit("\x1d"), side(chosen), pl.lit("\x1d"), side(rejected))
