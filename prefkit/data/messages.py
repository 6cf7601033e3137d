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
# A separator that real text does not contain lets one vectorized split stand in for a parser.
_TURN_SEP = "\x00"


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


def transcript_segments(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Splits transcripts on their markers: returns ``(text, segments)`` expressions.

    ``"\\n\\nHuman: Hi\\n\\nAssistant: Hey"`` gives segments ``["", "u Hi", "a Hey"]``: the text
    before the first marker, then each turn prefixed by its role code (``u`` or ``a``). ``text`` is
    the transcript as parsed: one that starts with ``Human:`` instead of a marker (some derived
    copies of HH-RLHF drop the first blank line) gets the blank line back. Literal replacements, no
    regex, one Aho-Corasick pass, make this fast; text containing the separator itself (a NUL) cannot
    be split this way, and callers reject it.
    """
    text = pl.when(expr.str.starts_with("Human:")).then(pl.lit("\n\n") + expr).otherwise(expr)
    segments = text.str.replace_many(["\n\nHuman:", "\n\nAssistant:"], [f"{_TURN_SEP}u", f"{_TURN_SEP}a"]).str.split(
        _TURN_SEP
    )
    return text, segments


def segment_messages(segments: pl.Expr) -> pl.Expr:
    """Turns the segments of :func:`transcript_segments` into messages (the leading text is dropped)."""
    return segments.list.slice(1).list.eval(
        pl.struct(
            role=pl.when(pl.element().str.starts_with("u")).then(pl.lit("user")).otherwise(pl.lit("assistant")),
            content=pl.element().str.slice(1).str.strip_chars(),
        )
    )


def transcript_messages(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Vectorized :func:`parse_transcript`: returns ``(leading_text, messages)`` expressions."""
    _, segments = transcript_segments(expr)
    return segments.list.first(), segment_messages(segments)


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


_ROLE_CODES = {"system": "s", "user": "u", "assistant": "a"}


def role_codes(expr: pl.Expr) -> pl.Expr:
    """A message list's roles as one string of codes: system, user, assistant, user gives ``"suau"``.

    Unknown roles become ``?``, so no pattern over the codes can mistake them for a known role.
    """
    return roles(expr).list.eval(pl.element().replace_strict(_ROLE_CODES, default="?")).list.join("")


def alternates_from_user(expr: pl.Expr, end_with_user: bool = False) -> pl.Expr:
    """True where messages go user, assistant, user, ... with an optional system message first.

    ``[system, user, assistant, user]`` is True; ``[user, user]``, ``[assistant, user]`` and ``[]``
    are False. With ``end_with_user`` the last message must also be a user turn (a prompt).
    """
    pattern = "^s?u(au)*$" if end_with_user else "^s?u(au)*a?$"
    return role_codes(expr).str.contains(pattern)


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
    transcript = expr.list.eval(
        pl.concat_str(
            pl.lit("\n\n"),
            pl.element().struct.field("role").replace_strict(speaker, return_dtype=pl.String),
            pl.lit(": "),
            pl.element().struct.field("content"),
        )
    ).list.join("") + pl.lit("\n\nAssistant:")
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
            pl.concat_str(pl.element().struct.field("role"), pl.lit("\x1f"), pl.element().struct.field("content"))
        ).list.join("\x1e")

    return pl.concat_str(side(prompt), pl.lit("\x1d"), side(chosen), pl.lit("\x1d"), side(rejected))
