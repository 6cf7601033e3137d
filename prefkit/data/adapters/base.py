"""What every adapter shares: options, reason marking, type requirements, and building pairs from
prompt/chosen/rejected columns that are either strings or message lists.

An adapter takes the frame the read step produced (``__line`` plus the record's fields) and returns
a frame with ``__line``, ``__reason``, ``__detail`` and the canonical pair columns. Rows it cannot
turn into a sound pair keep their place and get a reason; nothing is dropped here.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import polars as pl

from prefkit.config import check_fields, option
from prefkit.data.messages import MESSAGES, is_messages_dtype, normalize_messages, text_message
from prefkit.data.reasons import RejectReason
from prefkit.data.sources import DETAIL, LINE, REASON
from prefkit.errors import FieldMappingError

PAIR_COLUMNS = ("prompt", "chosen", "rejected", "score_chosen", "score_rejected")


BINARIZE = ("best-random-lower", "best-worst", "all-pairs")
AXES = ("better", "safer", "both")


@dataclass(kw_only=True)
class PairingOptions:
    """How records of ranked, rated and labelled sources become pairs; convert, validate and mix
    sources take these fields, and the CLI derives its flags from them."""

    binarize: str = option(
        "best-random-lower",
        "Ranked and rated sources: best vs. a seeded random lower one, best vs. worst, or every pair.",
        choices=BINARIZE,
    )
    max_pairs_per_prompt: int | None = option(None, "With --binarize all-pairs: at most this many per prompt.", min=1)
    score: str | None = option(
        None, "helpsteer2: rank replies by this attribute or weighted sum (helpfulness=1,correctness=0.5)."
    )
    axis: str = option(
        "better", "pku-saferlhf: the label that picks the chosen reply (both: the two must agree).", choices=AXES
    )
    min_score_ratio: float = option(2.0, "shp: reject pairs whose score ratio is below this.", min=1)
    lang: list[str] = option([], "oasst: keep messages in this language (repeatable; all when unset).")
    min_margin: float | None = option(
        None, "Reject pairs whose margin is below this as weak_preference (pairs without a margin are kept)."
    )
    pair_reference: bool = option(
        False,
        "Scored completions (prefkit score): a prompt whose completions all score below --pass-score is paired "
        "as its reference (chosen) against the model's own answer (rejected).",
    )
    pass_score: float = option(
        1.0, "With --pair-reference: the score a completion needs to pass (a verifier's True is 1)."
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def pairing(self) -> dict:
        """The pairing fields' values, to build another config that takes them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(PairingOptions)}


PAIRING_FIELDS = tuple(f.name for f in dataclasses.fields(PairingOptions))


@dataclass(kw_only=True)
class AdaptOptions(PairingOptions):
    """Everything that changes how records become pairs (shared by ``convert`` and mix recipes)."""

    fields: tuple[tuple[str, str], ...] = ()
    """Custom JSONL mapping, e.g. ``(("prompt", "question"), ("chosen", "answers.good"))``."""
    seed: int = 0
    """Seed for every random choice an adapter makes."""
    keep_ties: bool = False
    """Ranked and rated sources: pair equally scored replies too (the tie rule then keeps them)."""


def start(frame: pl.DataFrame) -> pl.DataFrame:
    """Adds empty ``__reason``/``__detail`` columns."""
    return frame.with_columns(pl.lit(None, pl.String).alias(REASON), pl.lit(None, pl.String).alias(DETAIL))


@dataclass(frozen=True)
class Rule:
    """Rows meeting ``condition`` are rejected with ``reason``; ``detail`` says what is wrong."""

    condition: pl.Expr
    reason: RejectReason
    detail: str | pl.Expr


def mark(frame: pl.DataFrame, *rules: Rule) -> pl.DataFrame:
    """Gives each row that has no reason yet the reason of the first rule it meets.

    All conditions are evaluated in one parallel pass, then folded in order, so adding rules does
    not add passes over the data.
    """
    if not rules:
        return frame
    names = [f"__rule{i}" for i in range(len(rules))]
    frame = frame.with_columns(r.condition.fill_null(False).alias(n) for r, n in zip(rules, names, strict=True))
    reason = pl.when(pl.col(REASON).is_not_null()).then(pl.col(REASON))
    detail = pl.when(pl.col(REASON).is_not_null()).then(pl.col(DETAIL))
    for rule, name in zip(rules, names, strict=True):
        reason = reason.when(pl.col(name)).then(pl.lit(str(rule.reason)))
        detail = detail.when(pl.col(name)).then(pl.lit(rule.detail) if isinstance(rule.detail, str) else rule.detail)
    return frame.with_columns(
        reason.otherwise(pl.lit(None, pl.String)).alias(REASON), detail.otherwise(pl.lit(None, pl.String)).alias(DETAIL)
    ).drop(names)


NULL_OF_KIND = {"string": pl.String, "messages": MESSAGES, "number": pl.Float64, "boolean": pl.Boolean}
"""The dtype of a null standing in for a field of each kind in rows already rejected."""


def kind_of(dtype: pl.DataType) -> str:
    """``string``, ``messages``, ``number``, ``boolean``, ``null`` or ``other``: what an adapter can accept."""
    if dtype == pl.String:
        return "string"
    if dtype == pl.Boolean:
        return "boolean"
    if is_messages_dtype(dtype):
        return "messages"
    if dtype.is_numeric():
        return "number"
    if dtype == pl.Null:
        return "null"
    return "other"


def resolve_path(frame: pl.DataFrame, path: str) -> tuple[pl.Expr, pl.DataType] | None:
    """A dotted path into nested objects as an expression and its dtype; None if no record has it.

    ``"meta.question"`` becomes ``pl.col("meta").struct.field("question")``.
    """
    head, *rest = path.split(".")
    if head not in frame.schema:
        return None
    expr, dtype = pl.col(head), frame.schema[head]
    for part in rest:
        if not isinstance(dtype, pl.Struct):
            return None
        fields = {f.name: f.dtype for f in dtype.fields}
        if part not in fields:
            return None
        expr, dtype = expr.struct.field(part), fields[part]
    return expr, dtype


def require(frame: pl.DataFrame, name: str, path: str, accepted: tuple[str, ...], optional: bool = False):
    """Looks up a field the adapter needs and marks rows where it is missing or of the wrong type.

    Returns ``(frame, expr, kind)``; ``expr`` is None only for an optional field no record has.
    A required field that no record has at all is the user's mistake, not the data's: it raises.
    When the whole column has a type the adapter cannot use (null in every record of the batch, a
    list where text belongs), every row is marked, and ``expr`` becomes a null of the first
    accepted kind, so the adapter's later expressions still type-check on the rows it rejects.
    """
    found = resolve_path(frame, path)
    if found is None:
        if optional:
            return frame, None, "null"
        keys = ", ".join(c for c in frame.columns if not c.startswith("__")) or "none"
        raise FieldMappingError(f"no record has the field '{path}' needed for {name} (top-level keys: {keys})")
    expr, dtype = found
    kind = kind_of(dtype)
    if kind == "null":
        if optional:
            return frame, expr, kind
        frame = mark(frame, Rule(pl.lit(True), RejectReason.MISSING_FIELD, f"field '{path}' is null in every record"))
        return _typed_null(frame, path, accepted[0])
    if kind not in accepted:
        detail = f"field '{path}' is {dtype}, expected {' or '.join(accepted)}"
        frame = mark(frame, Rule(expr.is_not_null(), RejectReason.WRONG_TYPE, detail))
        if not optional:
            frame = mark(frame, Rule(expr.is_null(), RejectReason.MISSING_FIELD, f"field '{path}' is missing or null"))
        return _typed_null(frame, path, accepted[0])
    if not optional:
        frame = mark(frame, Rule(expr.is_null(), RejectReason.MISSING_FIELD, f"field '{path}' is missing or null"))
    return frame, expr, kind


def _typed_null(frame: pl.DataFrame, path: str, kind: str) -> tuple[pl.DataFrame, pl.Expr, str]:
    """A null of ``kind`` in place of an unusable column (every row already marked), so expressions
    written for that kind, ``pl.col(path)`` ones too, still type-check on the rejected rows."""
    null = pl.lit(None, NULL_OF_KIND.get(kind, pl.String))
    if "." in path:
        return frame, null, kind
    return frame.with_columns(null.alias(path)), pl.col(path), kind


def rejected_batch(frame: pl.DataFrame, prompt: pl.Expr, detail: str) -> pl.DataFrame:
    """Every record of the batch rejected as ``wrong_type`` with ``detail``, in the adapter's output
    shape: a list-of-objects field whose objects have another shape in every record of the batch
    cannot be read, and each record is one reject, never a failed file."""
    frame = mark(frame, Rule(pl.lit(True), RejectReason.WRONG_TYPE, detail))
    nothing = text_message(pl.lit(None, pl.String), "assistant")
    return adapted(frame, text_message(prompt, "user"), nothing, nothing)


def adapted(
    frame: pl.DataFrame,
    prompt: pl.Expr,
    chosen: pl.Expr,
    rejected: pl.Expr,
    score_chosen: pl.Expr | None = None,
    score_rejected: pl.Expr | None = None,
    margin: pl.Expr | None = None,
    metadata: pl.Expr | None = None,
) -> pl.DataFrame:
    """What every adapter returns: ``__line``, ``__reason``, ``__detail`` and the pair as message lists
    with float scores (null where the source has none), plus the optional ``margin`` and ``metadata``
    columns when the format has them."""

    def score(expr: pl.Expr | None) -> pl.Expr:
        return pl.lit(None, pl.Float64) if expr is None else expr.cast(pl.Float64)

    optional = []
    if margin is not None:
        optional.append(margin.cast(pl.Float64).alias("margin"))
    if metadata is not None:
        optional.append(metadata.alias("metadata"))
    return frame.select(
        LINE,
        REASON,
        DETAIL,
        prompt.cast(MESSAGES).alias("prompt"),
        chosen.cast(MESSAGES).alias("chosen"),
        rejected.cast(MESSAGES).alias("rejected"),
        score(score_chosen).alias("score_chosen"),
        score(score_rejected).alias("score_rejected"),
        *optional,
    )


def metadata_struct(**fields: pl.Expr) -> pl.Expr:
    """The ``metadata`` column: source fields worth keeping, every value a string (or null).

    Strings keep one dtype across formats, so files of different sources can be mixed and written
    to one Parquet file; a list (e.g. Nectar's ``source``) is joined with ``", "``.
    """

    return pl.struct(**{name: expr.cast(pl.String) for name, expr in fields.items()})


def source_field(frame: pl.DataFrame, name: str) -> pl.Expr:
    """A flat source column kept for ``metadata`` (a model name, a language, an id): the column
    where the records have it, else null. Nested values are left out, as metadata values are
    strings."""
    dtype = frame.schema.get(name)
    if dtype is None or dtype.is_nested():
        return pl.lit(None, pl.String)
    return pl.col(name)


def as_text_struct(expr: pl.Expr, dtype: pl.Struct) -> pl.Expr:
    """A metadata struct read from a file, every field as a string (nested values as JSON text), so
    that files keep one metadata dtype whatever JSON gave each field."""

    def text(name: str, inner: pl.DataType) -> pl.Expr:
        field = expr.struct.field(name)
        if inner.is_nested():
            return pl.when(field.is_not_null()).then(
                pl.struct(field.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
            )
        return field.cast(pl.String)

    return pl.struct(**{f.name: text(f.name, f.dtype) for f in dtype.fields}).alias("metadata")


def as_score(expr: pl.Expr | None, kind: str) -> pl.Expr:
    if expr is None or kind != "number":
        return pl.lit(None, pl.Float64)
    return expr.cast(pl.Float64)


def pairs_from_fields(
    frame: pl.DataFrame,
    prompt: str | None,
    chosen: str,
    rejected: str,
    score_chosen: str | None = None,
    score_rejected: str | None = None,
    system: str | None = None,
) -> pl.DataFrame:
    """Builds canonical pairs from fields holding strings or message lists.

    Replies given as message lists keep only their last message; the messages before it form the
    prompt, and must be the same on both sides. A separate prompt field is used when the reply lists
    carry no prompt: ``{"prompt": "Hi", "chosen": [{"role": "assistant", "content": "Hey"}]}`` and
    ``{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]}``
    give the same pair.
    """
    frame = start(frame) if REASON not in frame.columns else frame
    text = ("string", "messages")
    frame, chosen_expr, chosen_kind = require(frame, "chosen", chosen, text)
    frame, rejected_expr, rejected_kind = require(frame, "rejected", rejected, text)
    prompt_expr, prompt_kind = None, "null"
    if prompt is not None:
        frame, prompt_expr, prompt_kind = require(frame, "prompt", prompt, text)
    score_c = score_r = system_expr = None
    sc_kind = sr_kind = system_kind = "null"
    if score_chosen:
        frame, score_c, sc_kind = require(frame, "score_chosen", score_chosen, ("number",), optional=True)
    if score_rejected:
        frame, score_r, sr_kind = require(frame, "score_rejected", score_rejected, ("number",), optional=True)
    if system:
        frame, system_expr, system_kind = require(frame, "system", system, ("string",), optional=True)
    if chosen_kind != rejected_kind and {chosen_kind, rejected_kind} <= set(text):
        frame = mark(frame, Rule(pl.lit(True), RejectReason.WRONG_TYPE, "chosen and rejected have different types"))

    if chosen_kind == "string" and rejected_kind == "string" and prompt_expr is None:
        frame = _split_shared_prefix(frame, chosen_expr, rejected_expr)
        prompt_expr, prompt_kind = pl.col("__prompt_text"), "string"
        chosen_expr, rejected_expr = pl.col("__chosen_text"), pl.col("__rejected_text")

    chosen_msgs = _as_reply_list(chosen_expr, chosen_kind)
    rejected_msgs = _as_reply_list(rejected_expr, rejected_kind)
    frame = frame.with_columns(__c=chosen_msgs, __r=rejected_msgs)
    history_c = pl.col("__c").list.slice(0, pl.col("__c").list.len() - 1)
    history_r = pl.col("__r").list.slice(0, pl.col("__r").list.len() - 1)
    frame = mark(
        frame,
        Rule(
            (pl.col("__c").list.len() == 0) | (pl.col("__r").list.len() == 0),
            RejectReason.NO_ASSISTANT_TURN,
            "chosen or rejected holds no message",
        ),
        Rule(
            history_c != history_r,
            RejectReason.DIVERGED_BEFORE_LAST_TURN,
            "chosen and rejected conversations differ before their last message",
        ),
    )
    prompt_msgs = _as_prompt_list(prompt_expr, prompt_kind)
    prompt_final = pl.when(history_c.list.len() > 0).then(history_c).otherwise(prompt_msgs)
    if system_expr is not None and system_kind == "string":
        system_msg = text_message(system_expr, "system")
        has_system = prompt_final.list.first().struct.field("role") == "system"
        prompt_final = (
            pl.when(system_expr.is_not_null() & ~has_system.fill_null(False))
            .then(pl.concat_list(system_msg, prompt_final))
            .otherwise(prompt_final)
        )
    return adapted(
        frame,
        prompt_final,
        pl.col("__c").list.slice(-1),
        pl.col("__r").list.slice(-1),
        as_score(score_c, sc_kind),
        as_score(score_r, sr_kind),
    )


def _as_reply_list(expr: pl.Expr, kind: str) -> pl.Expr:
    if kind == "string":
        return text_message(expr, "assistant")
    if kind == "messages":
        return normalize_messages(expr).fill_null(pl.lit([], MESSAGES))
    return pl.lit([], MESSAGES)


def _as_prompt_list(expr: pl.Expr | None, kind: str) -> pl.Expr:
    if kind == "string":
        return pl.when(expr.is_null()).then(pl.lit([], MESSAGES)).otherwise(text_message(expr, "user"))
    if kind == "messages":
        return normalize_messages(expr).fill_null(pl.lit([], MESSAGES))
    return pl.lit([], MESSAGES)


def split_shared_prefix(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Splits two full texts into their shared prompt and the two replies, at a word boundary.

    Example:
    ```python
    >>> split_shared_prefix("The sky is blue.", "The sky is green.")
    ('The sky is', ' blue.', ' green.')

    ```

    TRL's ``extract_prompt`` cuts at the first differing character, so replies that start with the
    same word lose it to the prompt; backing off to whitespace keeps words whole.
    """
    n = len(os.path.commonprefix([chosen, rejected]))
    if n < min(len(chosen), len(rejected)) and n and not chosen[n - 1].isspace():
        cut = max(chosen.rfind(" ", 0, n), chosen.rfind("\n", 0, n))
        n = cut + 1 if cut >= 0 else 0
    prompt = chosen[:n].rstrip()
    return prompt, chosen[len(prompt) :], rejected[len(prompt) :]


def _split_shared_prefix(frame: pl.DataFrame, chosen: pl.Expr, rejected: pl.Expr) -> pl.DataFrame:
    # Standard data without a prompt field is rare (TRL's "implicit prompt"), so a per-row function
    # over that format alone is the clear choice here.
    parts = frame.select(chosen.alias("c"), rejected.alias("r"))
    split = [
        split_shared_prefix(c, r) if c is not None and r is not None else (None, c, r)
        for c, r in zip(parts["c"].to_list(), parts["r"].to_list(), strict=True)
    ]
    return frame.with_columns(
        pl.Series("__prompt_text", [s[0] for s in split], pl.String),
        pl.Series("__chosen_text", [s[1] for s in split], pl.String),
        pl.Series("__rejected_text", [s[2] for s in split], pl.String),
    )
