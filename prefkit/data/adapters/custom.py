"""Custom JSON Lines mapped with ``--field KEY=PATH``, in any of four shapes.

- **Pair**: ``prompt``, ``chosen``, ``rejected`` (and ``score_chosen``, ``score_rejected``,
  ``system``): the record already says which reply is chosen.
- **Labelled pair**: ``responses=PATH_A,PATH_B`` and either ``label=PATH`` (the 0-based index of
  the better reply: 0 or 1) or ``preference=PATH`` (any signed number: negative means the first
  is better, 0 a tie, positive the second; its size becomes the margin).
- **Ranked list**: ``responses=PATH`` (a list of objects) and ``rank=PATH.FIELD`` (lower is better)
  or ``score=PATH.FIELD`` (higher is better). ``responses=answers`` finds the text field of the
  objects by name (answer, response, text, content, completion); ``responses=answers.text`` names it.
- **Rated rows**: one row per reply, ``group=PATH`` (rows with the same value share a prompt),
  ``response=PATH``, and ``score=PATH`` or ``rank=PATH``; ``prompt`` defaults to the group.
- **Unpaired feedback**: ``completion=PATH`` and ``label=PATH`` (a boolean or a thumbs field:
  up/down, 1/-1, 👍/👎, ...), with ``prompt``: one reply and its verdict per record, written with
  ``--to unpaired`` (:mod:`prefkit.data.adapters.unpaired`).

Paths are dotted into nested objects. Ranked and rated records are binarized by ``--binarize``.
"""

from __future__ import annotations

import polars as pl

from prefkit.data.adapters.base import (
    AdaptOptions,
    Rule,
    adapted,
    mark,
    metadata_struct,
    pairs_from_fields,
    require,
    resolve_path,
    start,
)
from prefkit.data.adapters.binarize import ranked_list_pairs, rated_rows_pairs
from prefkit.data.adapters.labelled import labelled_pair, signed_pair
from prefkit.data.adapters.unpaired import unpaired_records
from prefkit.data.messages import text_message
from prefkit.data.reasons import RejectReason
from prefkit.errors import FieldMappingError

PAIR_KEYS = ("prompt", "chosen", "rejected", "score_chosen", "score_rejected", "system")
UNPAIRED_KEYS = ("prompt", "completion", "label", "system")
SHAPE_KEYS = ("responses", "label", "preference", "rank", "score", "group", "response")
TEXT_FIELDS = ("answer", "response", "text", "content", "completion")


def adapt_custom(frame: pl.DataFrame, options: AdaptOptions) -> pl.DataFrame:
    metadata = {key.removeprefix("metadata."): path for key, path in options.fields if key.startswith("metadata.")}
    mapping = {key: path for key, path in options.fields if not key.startswith("metadata.")}
    unknown = sorted(set(mapping) - set(PAIR_KEYS) - set(SHAPE_KEYS) - set(UNPAIRED_KEYS))
    if unknown:
        expected = ", ".join(dict.fromkeys(PAIR_KEYS + SHAPE_KEYS + UNPAIRED_KEYS))
        raise FieldMappingError(f"--field {unknown[0]}=...: unknown key (expected one of {expected})")
    for key, path in options.fields:
        for part in path.split(","):
            if _resolve(frame, part) is None:
                keys = ", ".join(c for c in frame.columns if not c.startswith("__"))
                raise FieldMappingError(
                    f"--field {key}={path}: no record has the key '{part}' (top-level keys: {keys})"
                )
    if metadata and ({"group", "responses"} & set(mapping)):
        raise FieldMappingError("--field metadata.KEY=PATH is read from records that hold one pair each")
    if "completion" in mapping:
        return _unpaired(frame, mapping, metadata)
    if "group" in mapping:
        return _rated_rows(frame, mapping, options)
    if "responses" in mapping:
        if "," in mapping["responses"]:
            return _labelled(frame, mapping)
        return _ranked_list(frame, mapping, options)
    extra = sorted(set(mapping) & set(SHAPE_KEYS))
    if extra:
        raise FieldMappingError(
            f"--field {extra[0]}=...: needs --field responses=... (labelled pair or ranked list) or --field group=..."
        )
    for key in ("chosen", "rejected"):
        mapping.setdefault(key, key)
    if "prompt" not in mapping and "prompt" in frame.columns:
        mapping["prompt"] = "prompt"
    pairs = pairs_from_fields(
        frame,
        mapping.get("prompt"),
        mapping["chosen"],
        mapping["rejected"],
        mapping.get("score_chosen"),
        mapping.get("score_rejected"),
        mapping.get("system"),
    )
    return pairs.with_columns(_metadata(frame, metadata)) if metadata else pairs


def _unpaired(frame: pl.DataFrame, mapping: dict, metadata: dict[str, str]) -> pl.DataFrame:
    extra = sorted(set(mapping) - set(UNPAIRED_KEYS))
    if extra:
        raise FieldMappingError(
            f"--field {extra[0]}=...: unpaired records (--field completion=...) take only "
            f"{', '.join(UNPAIRED_KEYS)} and metadata.NAME"
        )
    prompt = mapping.get("prompt", "prompt" if "prompt" in frame.columns else None)
    return unpaired_records(
        frame,
        prompt,
        mapping["completion"],
        mapping.get("label", "label"),
        mapping.get("system"),
        _metadata(frame, metadata) if metadata else None,
    )


def _metadata(frame: pl.DataFrame, metadata: dict[str, str]) -> pl.Series:
    """``--field metadata.task=task``: flat source fields kept in each pair's ``metadata`` (as text)."""
    fields = {}
    for key, path in metadata.items():
        expr, dtype = _resolve(frame, path)
        if dtype.is_nested():
            raise FieldMappingError(
                f"--field metadata.{key}={path}: '{path}' holds {dtype}; metadata keeps flat values"
            )
        fields[key] = expr
    return frame.select(metadata_struct(**fields).alias("metadata")).to_series()


def _resolve(frame: pl.DataFrame, path: str):
    """A path, or a path into the objects of a list (``answers.rank``)."""
    found = resolve_path(frame, path)
    if found is not None:
        return found
    head, _, field = path.rpartition(".")
    listed = resolve_path(frame, head) if head else None
    if listed is not None and isinstance(listed[1], pl.List) and isinstance(listed[1].inner, pl.Struct):
        fields = {f.name: f.dtype for f in listed[1].inner.fields}
        if field in fields:
            return listed[0], fields[field]
    return None


def _one_of(mapping: dict, keys: tuple[str, str], shape: str) -> str:
    given = [k for k in keys if k in mapping]
    if len(given) != 1:
        raise FieldMappingError(f"{shape}: give exactly one of --field {keys[0]}=... or --field {keys[1]}=...")
    return given[0]


def _prompt(frame: pl.DataFrame, path: str | None) -> tuple[pl.DataFrame, pl.Expr]:
    if path is None:
        raise FieldMappingError("a labelled pair or ranked list needs --field prompt=PATH")
    frame, expr, _ = require(frame, "prompt", path, ("string",))
    return frame, text_message(expr, "user")


def _labelled(frame: pl.DataFrame, mapping: dict) -> pl.DataFrame:
    paths = [p.strip() for p in mapping["responses"].split(",")]
    if len(paths) != 2:
        raise FieldMappingError(f"--field responses={mapping['responses']}: a labelled pair names exactly two paths")
    key = _one_of(mapping, ("label", "preference"), "labelled pair")
    frame = start(frame)
    frame, prompt = _prompt(frame, mapping.get("prompt"))
    frame, first, _ = require(frame, "responses", paths[0], ("string",))
    frame, second, _ = require(frame, "responses", paths[1], ("string",))
    frame, value, _ = require(frame, key, mapping[key], ("number",))
    if key == "preference":
        return signed_pair(frame, prompt=prompt, first=first, second=second, value=value, label=mapping[key])
    shown = value.cast(pl.String).fill_null("null")
    return labelled_pair(
        frame,
        prompt=prompt,
        first=first,
        second=second,
        valid=value.is_in([0, 1]).fill_null(False),
        label_detail=pl.format(f"{mapping[key]} must be 0 or 1 (the index of the better reply), got {{}}", shown),
        first_better=value == 0,
        tie_detail="",
    )


def _ranked_list(frame: pl.DataFrame, mapping: dict, options: AdaptOptions) -> pl.DataFrame:
    key = _one_of(mapping, ("rank", "score"), "ranked list")
    path = mapping["responses"]
    found = resolve_path(frame, path)
    text_field = None
    if found is None or not isinstance(found[1], pl.List):
        path, _, text_field = path.rpartition(".")
        found = resolve_path(frame, path) if path else None
    if found is None or not isinstance(found[1], pl.List) or not isinstance(found[1].inner, pl.Struct):
        raise FieldMappingError(f"--field responses={mapping['responses']}: a ranked list needs a list of objects")
    fields = [f.name for f in found[1].inner.fields]
    if text_field is None:
        text_field = next((f for f in TEXT_FIELDS if f in fields), None)
        if text_field is None:
            raise FieldMappingError(
                f"--field responses={path}: name the text field, e.g. responses={path}.{fields[0]} (fields: {', '.join(fields)})"
            )
    order_head, _, order_field = mapping[key].rpartition(".")
    if order_head != path or order_field not in fields:
        raise FieldMappingError(
            f"--field {key}={mapping[key]}: expected {path}.FIELD with FIELD one of {', '.join(fields)}"
        )
    frame = start(frame)
    frame, prompt = _prompt(frame, mapping.get("prompt"))
    frame = mark(frame, Rule(found[0].is_null(), RejectReason.MISSING_FIELD, f"field '{path}' is missing or null"))
    candidates = ranked_list_pairs(frame, found[0], text_field, order_field, key == "rank", options)
    score = None if key == "rank" else pl.col("chosen_order")
    return adapted(
        candidates,
        prompt,
        text_message(pl.col("__chosen"), "assistant"),
        text_message(pl.col("__rejected"), "assistant"),
        score,
        None if key == "rank" else pl.col("rejected_order"),
        margin=(pl.col("chosen_order") - pl.col("rejected_order")).abs(),
    )


def _rated_rows(frame: pl.DataFrame, mapping: dict, options: AdaptOptions) -> pl.DataFrame:
    key = _one_of(mapping, ("rank", "score"), "rated rows")
    if "response" not in mapping:
        raise FieldMappingError("rated rows need --field response=PATH (the reply of each row)")
    frame = start(frame)
    frame, group, _ = require(frame, "group", mapping["group"], ("string", "number"))
    frame, response, _ = require(frame, "response", mapping["response"], ("string",))
    frame, value, _ = require(frame, key, mapping[key], ("number",))
    frame, prompt, _ = require(frame, "prompt", mapping.get("prompt", mapping["group"]), ("string",))
    frame = frame.with_columns(prompt.alias("__prompt"))
    score = -value if key == "rank" else value
    candidates = rated_rows_pairs(frame, group, response, score, options, keep=("__prompt",))
    return adapted(
        candidates,
        text_message(pl.col("chosen___prompt"), "user"),
        text_message(pl.col("__chosen"), "assistant"),
        text_message(pl.col("__rejected"), "assistant"),
        None if key == "rank" else pl.col("score_chosen"),
        None if key == "rank" else pl.col("score_rejected"),
        margin=pl.col("score_chosen") - pl.col("score_rejected"),
    )
