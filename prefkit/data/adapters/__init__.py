"""Format adapters: detection from the columns, and the registry ``--format`` names.

Detection runs in the order of ``FORMATS``: the most specific layouts first, the generic TRL /
canonical form last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from prefkit.data.adapters import (
    chatbot_arena,
    distilabel_orca,
    helpsteer,
    hh_rlhf,
    nectar,
    oasst,
    pku_saferlhf,
    reward_bench,
    scored,
    shp,
    ultrafeedback,
    unpaired,
)
from prefkit.data.adapters.base import AdaptOptions, as_text_struct, pairs_from_fields
from prefkit.data.adapters.custom import adapt_custom
from prefkit.data.messages import is_messages_dtype
from prefkit.errors import UnknownFormatError


def adapt_trl(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    """TRL preference data (standard or conversational, explicit or implicit prompt) and canonical
    files; a canonical file's ``margin`` and ``metadata`` are kept."""
    prompt = "prompt" if "prompt" in frame.columns else None
    scores = [c if c in frame.columns else None for c in ("score_chosen", "score_rejected")]
    pairs = pairs_from_fields(frame, prompt, "chosen", "rejected", *scores)
    extra = {}
    if "margin" in frame.columns and (frame.schema["margin"].is_numeric() or frame.schema["margin"] == pl.Null):
        extra["margin"] = frame["margin"].cast(pl.Float64)
    if isinstance(frame.schema.get("metadata"), pl.Struct):
        extra["metadata"] = frame.select(as_text_struct(pl.col("metadata"), frame.schema["metadata"])).to_series()
    return pairs.with_columns(**extra) if extra else pairs


def _rated_rows(options: AdaptOptions) -> bool:
    return any(key == "group" for key, _ in options.fields)


def _looks_like_trl(frame: pl.DataFrame) -> bool:
    schema = frame.schema
    kinds = {schema.get("chosen"), schema.get("rejected")}
    return kinds == {pl.String} or all(k is not None and is_messages_dtype(k) for k in kinds)


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    detect: Callable[[pl.DataFrame], bool]
    adapt: Callable[[pl.DataFrame, AdaptOptions], pl.DataFrame]
    grouped: Callable[[AdaptOptions], bool] = lambda options: False
    """True when records of one prompt may be anywhere in the file (rated rows, message trees):
    the adapter then gets the whole file at once instead of batches."""


FORMATS: tuple[Format, ...] = (
    Format(
        "ultrafeedback-raw",
        "openbmb/UltraFeedback: instruction + rated completions",
        ultrafeedback.looks_like_raw,
        ultrafeedback.adapt_raw,
    ),
    Format(
        "ultrafeedback-argilla",
        "argilla/ultrafeedback-binarized-preferences",
        ultrafeedback.looks_like_argilla,
        ultrafeedback.adapt_argilla,
    ),
    Format(
        "ultrafeedback-argilla-cleaned",
        "argilla/ultrafeedback-binarized-preferences-cleaned",
        ultrafeedback.looks_like_argilla_cleaned,
        ultrafeedback.adapt_argilla_cleaned,
    ),
    Format(
        "ultrafeedback",
        "HuggingFaceH4/ultrafeedback_binarized (train_prefs, test_prefs)",
        ultrafeedback.looks_like_h4,
        ultrafeedback.adapt_h4,
    ),
    Format(
        "helpsteer2-preference",
        "nvidia/HelpSteer2 preference: response_1/response_2 and preference_strength -3..3",
        helpsteer.looks_like_helpsteer2_preference,
        helpsteer.adapt_helpsteer2_preference,
    ),
    Format(
        "helpsteer3",
        "nvidia/HelpSteer3 preference: context messages, response1/response2, overall_preference -3..3",
        helpsteer.looks_like_helpsteer3,
        helpsteer.adapt_helpsteer3,
    ),
    Format(
        "helpsteer2",
        "nvidia/HelpSteer2 ratings: one row per reply with five 0-4 attributes",
        helpsteer.looks_like_helpsteer2,
        helpsteer.adapt_helpsteer2,
        grouped=lambda options: True,
    ),
    Format("nectar", "berkeley-nest/Nectar: transcript prompt and 7 ranked answers", nectar.looks_like, nectar.adapt),
    Format(
        "pku-saferlhf",
        "PKU-Alignment/PKU-SafeRLHF: two replies, better_response_id and safer_response_id",
        pku_saferlhf.looks_like,
        pku_saferlhf.adapt,
    ),
    Format("shp", "stanfordnlp/SHP: a post, two comments, labels and score_ratio", shp.looks_like, shp.adapt),
    Format(
        "chatbot-arena",
        "LMSYS Chatbot Arena: conversation_a/b with winner, or the 55k human-preference layout",
        chatbot_arena.looks_like,
        chatbot_arena.adapt,
    ),
    Format(
        "oasst",
        "OpenAssistant oasst1/oasst2 message rows, ranked siblings",
        oasst.looks_like,
        oasst.adapt,
        grouped=lambda options: True,
    ),
    Format(
        "distilabel-orca",
        "argilla/distilabel-intel-orca-dpo-pairs: rated Orca pairs with status and in_gsm8k_train",
        distilabel_orca.looks_like,
        distilabel_orca.adapt,
    ),
    Format(
        "reward-bench",
        "allenai/reward-bench: prompt, chosen, rejected and subset (for evaluation)",
        reward_bench.looks_like,
        reward_bench.adapt,
    ),
    Format(
        "scored",
        "prefkit generate + prefkit score: completions with scores, ranked by rank_by",
        scored.looks_like,
        scored.adapt,
    ),
    Format("hh-rlhf", "Anthropic/hh-rlhf raw transcripts (or with a prompt column)", hh_rlhf.looks_like, hh_rlhf.adapt),
    Format("trl", "TRL preference data or prefkit canonical files", _looks_like_trl, adapt_trl),
    Format(
        "unpaired",
        "unpaired feedback: prompt, completion and a label (TRL's KTO layout, prefkit convert --to unpaired)",
        unpaired.looks_like,
        unpaired.adapt,
    ),
    Format(
        "custom",
        "any layout (JSON Lines, JSON or Parquet) mapped with --field key=path",
        lambda frame: False,
        adapt_custom,
        grouped=_rated_rows,
    ),
)
ALIASES = {"canonical": "trl", "jsonl": "custom"}
"""Other names a format answers to: ``jsonl`` is what ``custom`` was called before it read every file type."""
BY_NAME = {f.name: f for f in FORMATS}
BY_NAME |= {alias: BY_NAME[name] for alias, name in ALIASES.items()}


def get_format(name: str) -> Format:
    if name not in BY_NAME:
        raise UnknownFormatError(f"unknown format '{name}' (expected one of {', '.join(BY_NAME)})")
    return BY_NAME[name]


def detect_format(frame: pl.DataFrame, label: str) -> Format:
    """The first format whose detector accepts the frame's columns."""
    for fmt in FORMATS:
        if fmt.detect(frame):
            return fmt
    keys = ", ".join(c for c in frame.columns if not c.startswith("__")) or "none"
    raise UnknownFormatError(
        f"{label}: cannot detect the format from keys ({keys}); name it with --format, "
        "or map keys with --field prompt=KEY --field chosen=KEY --field rejected=KEY"
    )


__all__ = ["FORMATS", "AdaptOptions", "Format", "detect_format", "get_format"]
