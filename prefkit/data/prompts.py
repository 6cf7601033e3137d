"""Prompts to answer, from any source prefkit reads: what ``prefkit generate`` starts from.

Two kinds of input:

- prompt files: JSON Lines or Parquet records with ``prompt`` (text or a message list) and
  optionally ``reference`` (a known good answer, text), ``id`` and ``metadata``;
- preference data in any format ``prefkit convert`` reads: the pairs are converted as ``convert``
  would, their prompts deduplicated (the first pair of a prompt gives its reference, the chosen
  reply, and its metadata).

Every record is accounted for: ``read == prompts + duplicates + rejected``. A repeated prompt is
counted as a duplicate (its answers would be the same question asked twice), and a record that
cannot give a prompt is rejected with its reason, as in ``convert``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import polars_hash  # noqa: F401  (registers the .chash namespace)

from prefkit.data.columns import DETAIL, FILE, LINE, REASON
from prefkit.data.messages import (
    MESSAGES,
    any_blank_content,
    is_messages_dtype,
    normalize_messages,
    text_message,
)
from prefkit.data.reasons import RejectReason
from prefkit.data.sources import MAX_LINE_BYTES, HubSource, iter_batches, merged, resolve
from prefkit.errors import UsageError
from prefkit.results import Result

PAIR_KEYS = {"chosen", "rejected"}


@dataclass
class PromptSet(Result):
    """The prompts of some sources, in order, and the account of every record read."""

    read: int
    duplicates: int
    rejected: int
    reasons: dict[str, int]
    frame: pl.DataFrame = field(repr=False)
    """``id``, ``prompt`` (messages, or text for standard-style data), ``reference``, ``metadata``, and
    where each came from: ``__file`` (an index into ``files``) and ``__line``."""
    files: list[str] = field(default_factory=list)
    reject_lines: list[str] = field(repr=False, default_factory=list)

    @property
    def prompts(self) -> int:
        return self.frame.height


def prompt_id(prompt: pl.Expr) -> pl.Expr:
    """A stable content hash of a prompt (16 hex digits of BLAKE3), the id of a prompt without one.

    >>> frame = pl.DataFrame({"prompt": ["Hi", "Hi", "Bye"]})
    >>> ids = frame.select(prompt_id(pl.col("prompt"))).to_series().to_list()
    >>> ids[0] == ids[1] != ids[2], len(ids[0])
    (True, 16)
    """
    text = pl.struct(prompt.alias("prompt")).struct.json_encode()
    return text.chash.blake3().str.head(16)


def reference_text(chosen: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The chosen reply as text: a string as it is, a message list's last content."""
    return chosen.list.last().struct.field("content") if isinstance(dtype, pl.List) else chosen.cast(pl.String)


def _prompt_rules(frame: pl.DataFrame) -> pl.DataFrame:
    """Marks records of a prompt file that give no prompt (missing, wrong type, blank)."""
    dtype = frame.schema.get("prompt")
    if dtype == pl.String:
        # A prompt file's text is what a user says: one user turn, rendered with the chat template.
        frame = frame.with_columns(
            prompt=pl.when(pl.col("prompt").is_not_null()).then(text_message(pl.col("prompt"), "user"))
        )
        dtype = frame.schema["prompt"]
    if dtype == pl.Null:
        frame = frame.with_columns(pl.col("prompt").cast(MESSAGES))
        dtype = MESSAGES
    if is_messages_dtype(dtype):
        frame = frame.with_columns(prompt=normalize_messages(pl.col("prompt")))
        blank = pl.col("prompt").list.len().fill_null(0).eq(0) | any_blank_content(pl.col("prompt"))
    else:
        return frame.with_columns(
            pl.lit(str(RejectReason.WRONG_TYPE)).alias(REASON),
            pl.lit(f"'prompt' must be text or a list of messages, got {dtype}").alias(DETAIL),
        )
    return frame.with_columns(
        pl.when(pl.col("prompt").is_null())
        .then(pl.lit(str(RejectReason.MISSING_FIELD)))
        .when(blank)
        .then(pl.lit(str(RejectReason.EMPTY_PROMPT)))
        .alias(REASON),
        pl.when(pl.col("prompt").is_null())
        .then(pl.lit("field 'prompt' is missing or null"))
        .when(blank)
        .then(pl.lit("the prompt is empty"))
        .alias(DETAIL),
    )


def prompt_records(frame: pl.DataFrame) -> pl.DataFrame:
    """A prompt file's records as prompts: ``id`` (given, else the prompt's hash), ``prompt``,
    ``reference`` and ``metadata`` where the records have them, and ``__reason``/``__detail``."""
    frame = _prompt_rules(frame)
    columns = [pl.col("prompt"), pl.col(REASON), pl.col(DETAIL), pl.col(LINE)]
    own_id = pl.col("id").cast(pl.String) if frame.schema.get("id") in (pl.String, pl.Int64) else None
    columns.append(
        own_id.fill_null(prompt_id(pl.col("prompt"))).alias("id")
        if own_id is not None
        else prompt_id(pl.col("prompt")).alias("id")
    )
    reference = frame.schema.get("reference")
    columns.append((pl.col("reference") if reference == pl.String else pl.lit(None, pl.String)).alias("reference"))
    if isinstance(frame.schema.get("metadata"), pl.Struct):
        columns.append(pl.col("metadata"))
    return frame.select(columns)


def pair_prompts(pairs: pl.DataFrame) -> pl.DataFrame:
    """Canonical pairs as prompts: ``id`` (the prompt's hash), ``prompt``, ``reference`` (the chosen
    reply) and ``metadata``, one row per pair (duplicates are removed later, in order)."""
    columns = [
        prompt_id(pl.col("prompt")).alias("id"),
        pl.col("prompt"),
        reference_text(pl.col("chosen"), pairs.schema["chosen"]).alias("reference"),
        pl.col(LINE),
        pl.lit(None, pl.String).alias(REASON),
        pl.lit(None, pl.String).alias(DETAIL),
    ]
    if "metadata" in pairs.columns:
        columns.append(pl.col("metadata"))
    return pairs.select(columns)


def is_prompt_file(frame: pl.DataFrame) -> bool:
    """Records with ``prompt`` and neither ``chosen`` nor ``rejected``: prompts to answer, not pairs."""
    return "prompt" in frame.columns and not (PAIR_KEYS & set(frame.columns))


def read_prompts(sources: list[str], max_line_bytes: int = MAX_LINE_BYTES) -> PromptSet:
    """Every prompt of ``sources`` in order, deduplicated, with the account of every record.

    >>> import json, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "prompts.jsonl"
    >>> _ = path.write_text("\\n".join(json.dumps(r) for r in [
    ...     {"prompt": "What is 2 + 2?", "reference": "4"}, {"prompt": "What is 2 + 2?"}, {"prompt": " "}]))
    >>> found = read_prompts([str(path)])
    >>> found.read, found.prompts, found.duplicates, found.rejected, found.reasons
    (3, 1, 1, 1, {'empty_prompt': 1})
    """
    from prefkit.data.adapters import AdaptOptions
    from prefkit.data.convert import SourceCounts, read_pairs, reject_lines, split_rejects

    files: list[tuple[str, Path | HubSource]] = [(spec, path) for spec in sources for path in resolve(spec)]
    frames, lines, read_total = [], [], 0
    for index, (spec, path) in enumerate(files):
        stream = iter_batches(path, max_line_bytes=max_line_bytes)
        raw = next(stream)
        if raw.frame.height and not is_prompt_file(raw.frame):
            counts = SourceCounts(spec)
            pairs, rejected = read_pairs([(spec, path)], None, AdaptOptions(), False, counts)
            lines += rejected
            # Candidates, not lines: a ranked record or rated rows make one pair each (the default
            # binarize), and then the two are equal; what is counted is what could give a prompt.
            read_total += counts.candidates
            frames.append(pair_prompts(pairs).with_columns(pl.lit(index).alias(FILE)))
            continue
        raw = merged([raw, *stream])
        read_total += raw.read
        found = prompt_records(raw.frame) if raw.frame.height else pl.DataFrame()
        if found.height:
            kept, rejects = split_rejects(raw, found)
            frames.append(kept.with_columns(pl.lit(index).alias(FILE)))
        else:
            rejects = raw.rejects
        lines += reject_lines(raw, rejects)
    if len({isinstance(f.schema["prompt"], pl.List) for f in frames if f.height}) > 1:
        raise UsageError("the sources mix text prompts and message lists; convert them to one --style first")
    frame = (
        pl.concat(frames, how="diagonal_relaxed")
        if frames
        else pl.DataFrame(schema={"id": pl.String, "prompt": pl.String})
    )
    kept = frame.filter(prompt_id(pl.col("prompt")).is_first_distinct())
    reasons = dict(Counter(json.loads(line)["reason"] for line in lines))
    return PromptSet(
        read=read_total,
        duplicates=frame.height - kept.height,
        rejected=len(lines),
        reasons=reasons,
        frame=kept.drop([c for c in (REASON, DETAIL) if c in kept.columns]),
        files=[str(path) for _, path in files],
        reject_lines=lines,
    )
