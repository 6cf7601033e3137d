"""Chat messages: the dtype, and small functions over one example or over a column.

Each function here comes in the form the pipeline needs: polars expressions that work on a whole
column at once. Where a single-example form helps readers and tests, it sits beside the expression
and both are checked against each other in the tests.
"""

from __future__ import annotations

import polars as pl

ROLES = ("system", "user", "assistant")
MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
MESSAGES = pl.List(MESSAGE)


def is_messages_dtype(dtype: pl.DataType) -> bool:
    """True for a list of structs with text ``role`` and ``content`` fields (extra fields allowed).

    >>> is_messages_dtype(pl.List(pl.Struct({"role": pl.String, "content": pl.String, "name": pl.String})))
    True
    >>> is_messages_dtype(pl.List(pl.Struct({"role": pl.String, "content": pl.List(pl.Null)})))
    False
    """
    if not isinstance(dtype, pl.List) or not isinstance(dtype.inner, pl.Struct):
        return False
    fields = {f.name: f.dtype for f in dtype.inner.fields}
    return all(fields.get(name, pl.Object) in (pl.String, pl.Null) for name in ("role", "content"))


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


def is_blank(expr: pl.Expr) -> pl.Expr:
    """True where a string is missing, empty or only whitespace.

    >>> pl.select(is_blank(pl.Series(["a", " \\t", "", None]))).to_series().to_list()
    [False, True, True, True]
    """
    return expr.str.strip_chars().str.len_bytes().fill_null(0) == 0


def any_blank_content(expr: pl.Expr) -> pl.Expr:
    """True where some message's content is missing or only whitespace."""
    return expr.list.eval(is_blank(pl.element().struct.field("content"))).list.any()


def messages_text(expr: pl.Expr) -> pl.Expr:
    """A message list as one text, ``role: content`` per message (role kept: a system prompt is not a user turn)."""
    return expr.list.eval(
        pl.concat_str(pl.element().struct.field("role"), pl.lit(": "), pl.element().struct.field("content"))
    ).list.join("\n")


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
