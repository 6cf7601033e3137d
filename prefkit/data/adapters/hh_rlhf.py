"""Anthropic HH-RLHF: raw ``{chosen, rejected}`` transcripts with no prompt field.

Each transcript is parsed into messages on its ``\\n\\nHuman:`` / ``\\n\\nAssistant:`` markers; the
prompt is the conversation both transcripts share before their final assistant reply. The real
files hold pairs that must not become silently wrong pairs, and each gets its own reason:

- text before the first marker, or a NUL character: ``malformed_transcript``;
- no final assistant reply: ``no_assistant_turn``;
- a literal ``\\n\\nAssistant:`` inside a reply, so turns stop alternating: ``non_alternating_turns``;
- one transcript a turn-wise prefix of the other: ``transcript_is_prefix``;
- transcripts that differ before the last turn: ``diverged_before_last_turn``.

Empty final replies are left to the schema's ``empty_response`` check.
The variant with a ``prompt`` column (``"\\n\\nHuman: ...\\n\\nAssistant:"`` plus reply-only
``chosen``/``rejected``) is read by joining the prompt back onto each reply.

Speed: in almost every pair the text before the last ``Assistant:`` marker is byte-identical on
both sides, which settles the prompt without parsing the rejected transcript at all. Only pairs
whose prompt texts differ are parsed on both sides, to tell a prefix from a divergence from a mere
whitespace difference.
"""

from __future__ import annotations

import re

import polars as pl

from prefkit.data.adapters.base import AdaptOptions, Rule, adapted, mark, require, start
from prefkit.data.messages import is_blank
from prefkit.data.reasons import RejectReason
from prefkit.data.sources import DETAIL, LINE, REASON

NAME = "hh-rlhf"
HH_MARKER = re.compile(r"\n\n(Human|Assistant):")
_HH_ROLE = {"Human": "user", "Assistant": "assistant"}
# A separator that real text does not contain lets one vectorized split stand in for a parser.
_TURN_SEP = "\x00"


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


def looks_like(frame: pl.DataFrame) -> bool:
    """String ``chosen``/``rejected`` whose first records contain HH turn markers."""
    schema = frame.schema
    if schema.get("chosen") != pl.String or schema.get("rejected") != pl.String:
        return False
    text = pl.col("prompt") + pl.col("chosen") if schema.get("prompt") == pl.String else pl.col("chosen")
    head = frame.head(100).select(text.str.contains("Human:", literal=True).any()).item()
    return bool(head)


def _structure_rules(side: str, codes: pl.Expr) -> list[Rule]:
    """Rules on a transcript's role codes: ``"uaua"`` is sound, ``"uau"`` ends with Human."""
    return [
        Rule(
            ~codes.str.contains("a", literal=True),
            RejectReason.NO_ASSISTANT_TURN,
            f"{side} transcript has no Assistant turn",
        ),
        Rule(codes.str.ends_with("u"), RejectReason.NO_ASSISTANT_TURN, f"{side} transcript ends with a Human turn"),
        Rule(
            ~codes.str.contains("^(ua)+$"),
            RejectReason.NON_ALTERNATING_TURNS,
            f"{side} turns do not alternate Human/Assistant (a literal 'Assistant:' inside a reply?)",
        ),
    ]


def adapt(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    frame = start(frame)
    frame, chosen, _ = require(frame, "chosen", "chosen", ("string",))
    frame, rejected, _ = require(frame, "rejected", "rejected", ("string",))
    if frame.schema.get("prompt") == pl.String:
        chosen, rejected = pl.col("prompt") + chosen, pl.col("prompt") + rejected
    frame = frame.with_columns(__seg_c=transcript_segments(chosen)[1], __seg_r=transcript_segments(rejected)[1])

    def prompt_segments(segments: str) -> pl.Expr:
        # The raw text before the last marker, as segments: equal segments mean equal text.
        return pl.col(segments).list.slice(0, pl.col(segments).list.len() - 1)

    def codes(segments: str) -> pl.Expr:
        return pl.col(segments).list.slice(1).list.eval(pl.element().str.head(1)).list.join("")

    frame = frame.with_columns(
        __codes_c=codes("__seg_c"),
        __codes_r=codes("__seg_r"),
        __same_prompt=prompt_segments("__seg_c") == prompt_segments("__seg_r"),
    )
    rules = [
        Rule(
            chosen.str.contains("\x00", literal=True) | rejected.str.contains("\x00", literal=True),
            RejectReason.MALFORMED_TRANSCRIPT,
            "transcript contains a NUL character",
        ),
        Rule(
            ~is_blank(pl.col("__seg_c").list.first()) | ~is_blank(pl.col("__seg_r").list.first()),
            RejectReason.MALFORMED_TRANSCRIPT,
            "text before the first 'Human:' turn",
        ),
        *_structure_rules("chosen", pl.col("__codes_c")),
        *_structure_rules("rejected", pl.col("__codes_r")),
    ]
    frame = mark(frame, *rules)
    frame = _judge_different_prompts(frame)

    reply_r = pl.col("__seg_r").list.last().str.slice(1).str.strip_chars()
    frame = frame.with_columns(__c=segment_messages(pl.col("__seg_c")))
    n_c = pl.col("__c").list.len()
    return adapted(
        frame,
        pl.col("__c").list.slice(0, n_c - 1),
        pl.col("__c").list.slice(-1),
        pl.concat_list(pl.struct(role=pl.lit("assistant"), content=reply_r)),
    )


def _judge_different_prompts(frame: pl.DataFrame) -> pl.DataFrame:
    """Pairs whose prompt texts differ: a turn-wise prefix, a divergence, or only whitespace apart."""
    differ = pl.col(REASON).is_null() & ~pl.col("__same_prompt")
    if not frame.select(differ.any()).item():
        return frame
    rows = frame.filter(differ).select(LINE, "__seg_c", "__seg_r")
    rows = rows.with_columns(__c=segment_messages(pl.col("__seg_c")), __r=segment_messages(pl.col("__seg_r")))
    c, r = pl.col("__c"), pl.col("__r")
    n_c, n_r = c.list.len(), r.list.len()
    shorter = pl.min_horizontal(n_c, n_r)
    rows = start(rows).pipe(
        mark,
        Rule(
            (n_c != n_r) & (c.list.slice(0, shorter) == r.list.slice(0, shorter)),
            RejectReason.TRANSCRIPT_IS_PREFIX,
            pl.format("one transcript is a prefix of the other ({} vs {} turns)", n_c, n_r),
        ),
        Rule(
            c.list.slice(0, n_c - 1) != r.list.slice(0, n_r - 1),
            RejectReason.DIVERGED_BEFORE_LAST_TURN,
            pl.format("transcripts differ before the last turn ({} vs {} turns)", n_c, n_r),
        ),
    )
    verdicts = rows.select(LINE, pl.col(REASON).alias("__r2"), pl.col(DETAIL).alias("__d2"))
    frame = frame.join(verdicts, on=LINE, how="left", maintain_order="left")
    return frame.with_columns(
        pl.coalesce(REASON, "__r2").alias(REASON), pl.coalesce(DETAIL, "__d2").alias(DETAIL)
    ).drop("__r2", "__d2")
