"""prefkit's own scored completions (``prefkit generate`` then ``prefkit score``): a ranked source.

Each record holds a prompt, the model's ``completions`` (each with its ``scores`` by scorer name),
an optional ``reference`` answer, and ``rank_by``, the score that ranks. It is binarized by
:mod:`binarize`, the one rule every ranked source uses (``--binarize``, ties rejected as ``tie``,
the margin the score gap, ``--min-margin``).

With ``--pair-reference``, a prompt whose completions all score below ``--pass-score`` (a
verifier's False is 0, its True 1) gets its reference as one more candidate, scored
``--pass-score``: the pair is then the reference (chosen) against the model's own answer
(rejected), the pairing that teaches where the model rarely answers right; its ``metadata``
says ``chosen_origin: reference``.
"""

from __future__ import annotations

import polars as pl

from prefkit.data.adapters.base import (
    AdaptOptions,
    Rule,
    adapted,
    mark,
    metadata_struct,
    require,
    start,
)
from prefkit.data.adapters.binarize import ranked_list_pairs
from prefkit.data.columns import REASON
from prefkit.data.messages import is_blank, text_message
from prefkit.data.reasons import RejectReason


def looks_like(frame: pl.DataFrame) -> bool:
    return {"prompt", "completions", "rank_by"} <= set(frame.columns)


def candidates(rank_by: str, reference_score: float | None) -> pl.Expr:
    """Each record's completions as ``{text, score, finish_reason, origin}``; with a
    ``reference_score``, records whose completions all score below it get the reference too.

    >>> frame = pl.DataFrame({"reference": ["4"], "completions": [[
    ...     {"text": "5", "finish_reason": "stop", "scores": {"ok": 0.0}},
    ...     {"text": "3", "finish_reason": "stop", "scores": {"ok": 0.0}}]]})
    >>> frame.select(candidates("ok", 1.0)).item().to_list()[-1]
    {'text': '4', 'score': 1.0, 'finish_reason': None, 'origin': 'reference'}
    """
    own = pl.col("completions").list.eval(
        pl.struct(
            text=pl.element().struct.field("text").cast(pl.String),
            score=pl.element().struct.field("scores").struct.field(rank_by).cast(pl.Float64),
            finish_reason=pl.element().struct.field("finish_reason").cast(pl.String),
            origin=pl.lit("model"),
        )
    )
    if reference_score is None:
        return own
    reference = pl.struct(
        text=pl.col("reference").cast(pl.String),
        score=pl.lit(reference_score, pl.Float64),
        finish_reason=pl.lit(None, pl.String),
        origin=pl.lit("reference"),
    )
    # An unscored completion (null) does not pass either.
    all_fail = own.list.eval((pl.element().struct.field("score") < reference_score).fill_null(True)).list.all()
    usable = all_fail & (own.list.len() > 0) & ~is_blank(pl.col("reference"))
    return pl.when(usable).then(pl.concat_list(own, pl.concat_list(reference))).otherwise(own)


def adapt(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    frame = start(frame)
    frame, prompt, kind = require(frame, "prompt", "prompt", ("messages", "string"))
    frame, ranked_by, _ = require(frame, "rank_by", "rank_by", ("string",))
    # One score ranks a file: the one most records name (a record naming another is rejected).
    rank_by = frame.filter(pl.col(REASON).is_null()).select(ranked_by.drop_nulls().mode().first()).item()
    completion = frame.schema.get("completions")
    inner = completion.inner if isinstance(completion, pl.List) else None
    fields = {f.name: f.dtype for f in inner.fields} if isinstance(inner, pl.Struct) else {}
    scores = fields.get("scores")
    if (
        rank_by is None
        or fields.get("text") != pl.String
        or not isinstance(scores, pl.Struct)
        or rank_by not in {f.name for f in scores.fields}
    ):
        detail = (
            f"'completions' must be a list of objects with text 'text' and a number scores.{rank_by}, got {completion}"
        )
        # These records' completions have another shape: each is one reject.
        frame = mark(frame, Rule(pl.lit(True), RejectReason.WRONG_TYPE, detail))
        nothing = text_message(pl.lit(None, pl.String), "assistant")
        return adapted(frame, prompt if kind == "messages" else text_message(prompt, "user"), nothing, nothing)
    if "finish_reason" not in fields:
        frame = frame.with_columns(
            completions=pl.col("completions").list.eval(
                pl.element().struct.with_fields(pl.lit(None, pl.String).alias("finish_reason"))
            )
        )
    if frame.schema.get("reference") != pl.String:
        # No reference in these records (absent, or null in every one): nothing to pair against.
        frame = frame.with_columns(reference=pl.lit(None, pl.String))
    frame = mark(
        frame,
        Rule(pl.col("completions").is_null(), RejectReason.MISSING_FIELD, "field 'completions' is missing or null"),
        Rule(
            ranked_by != rank_by,
            RejectReason.INVALID_SCORE,
            pl.format("ranked by {}, not {}", ranked_by, pl.lit(rank_by)),
        ),
    )
    reference_score = options.pass_score if options.pair_reference else None
    pairs = ranked_list_pairs(
        frame, candidates(rank_by, reference_score), "text", "score", False, options, ("finish_reason", "origin")
    )
    messages = prompt if kind == "messages" else text_message(prompt, "user")
    generation = frame.schema.get("generation")
    made_by = {f.name for f in generation.fields} if isinstance(generation, pl.Struct) else set()

    def lineage(name: str) -> pl.Expr:
        """The generation's ``name`` (model, policy, round) where the records have it."""
        return pl.col("generation").struct.field(name) if name in made_by else pl.lit(None)

    return adapted(
        pairs,
        messages,
        text_message(pl.col("__chosen"), "assistant"),
        text_message(pl.col("__rejected"), "assistant"),
        score_chosen=pl.col("chosen_order"),
        score_rejected=pl.col("rejected_order"),
        margin=pl.col("chosen_order") - pl.col("rejected_order"),
        metadata=metadata_struct(
            prompt_id=pl.col("id") if "id" in frame.columns else pl.lit(None),
            rank_by=pl.lit(rank_by),
            model=lineage("model"),
            # The policy that wrote the model's replies (the rejected one, and the chosen one unless it
            # is the reference) and the loop round: a pair's lineage.
            policy=lineage("policy"),
            round=lineage("round"),
            chosen_origin=pl.col("chosen_origin"),
            rejected_origin=pl.col("rejected_origin"),
            chosen_finish_reason=pl.col("chosen_finish_reason"),
            rejected_finish_reason=pl.col("rejected_finish_reason"),
        ),
    )
