"""Format adapters: detection from the columns, and the registry ``--format`` names.

Detection runs in the order of ``FORMATS``: the most specific layouts first, the generic TRL /
canonical form last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from prefkit.data.adapters import hh_rlhf, ultrafeedback
from prefkit.data.adapters.base import AdaptOptions, pairs_from_fields, resolve_path
from prefkit.data.messages import is_messages_dtype
from prefkit.errors import FieldMappingError, UnknownFormatError

CUSTOM_FIELDS = ("prompt", "chosen", "rejected", "score_chosen", "score_rejected", "system")


def adapt_custom(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    """Custom JSON Lines mapped with ``--field key=path``; paths may be dotted into nested objects."""
    mapping = dict(options.fields)
    unknown = sorted(set(mapping) - set(CUSTOM_FIELDS))
    if unknown:
        raise FieldMappingError(f"--field {unknown[0]}=...: unknown key (expected one of {', '.join(CUSTOM_FIELDS)})")
    for key, path in options.fields:
        if resolve_path(frame, path) is None:
            keys = ", ".join(c for c in frame.columns if not c.startswith("__"))
            raise FieldMappingError(f"--field {key}={path}: no record has the key '{path}' (top-level keys: {keys})")
    for key in ("chosen", "rejected"):
        mapping.setdefault(key, key)
    if "prompt" not in mapping and "prompt" in frame.columns:
        mapping["prompt"] = "prompt"
    return pairs_from_fields(
        frame,
        mapping.get("prompt"),
        mapping["chosen"],
        mapping["rejected"],
        mapping.get("score_chosen"),
        mapping.get("score_rejected"),
        mapping.get("system"),
    )


def adapt_trl(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    """TRL preference data (standard or conversational, explicit or implicit prompt) and canonical files."""
    prompt = "prompt" if "prompt" in frame.columns else None
    scores = [c if c in frame.columns else None for c in ("score_chosen", "score_rejected")]
    return pairs_from_fields(frame, prompt, "chosen", "rejected", *scores)


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
    Format("hh-rlhf", "Anthropic/hh-rlhf raw transcripts (or with a prompt column)", hh_rlhf.looks_like, hh_rlhf.adapt),
    Format("trl", "TRL preference data or prefkit canonical files", _looks_like_trl, adapt_trl),
    Format("jsonl", "custom JSON Lines mapped with --field key=path", lambda frame: False, adapt_custom),
)
BY_NAME = {f.name: f for f in FORMATS} | {"canonical": FORMATS[-2]}


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
