"""``prefkit convert``: read, adapt, check, dedupe, write.

Each step is a function over polars frames that can be tested alone. Every input record ends in
exactly one place, the output or the rejects file, and ``read == written + rejected`` holds for each
source and in total.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl
import polars_hash  # noqa: F401  (registers the .chash namespace used by pair_id)

from prefkit.data.adapters import AdaptOptions, Format, detect_format, get_format
from prefkit.data.adapters.base import Rule, mark
from prefkit.data.concurrency import ordered_map, prefetched
from prefkit.data.messages import render_standard_prompt, reply_text, serialize_pair
from prefkit.data.reasons import RejectReason
from prefkit.data.schema import COLUMNS, STYLES, checks_for, frame_schema
from prefkit.data.sources import DETAIL, LINE, REASON, HubSource, RawRecords, iter_batches, resolve
from prefkit.data.writers import (
    ProgressCallback,
    check_pairs_path,
    in_background,
    line_sink,
    pair_sink,
    reject_line,
    sidecar,
    write_json,
)
from prefkit.errors import FieldMappingError, PrefkitError, UsageError

FILE = "__file"
# Reasons whose record is not valid JSON text, so the rejects file stores it as a string.
_RAW_TEXT_REASONS = {RejectReason.INVALID_JSON, RejectReason.INVALID_UTF8}


@dataclass
class ConvertConfig:
    """Options of ``prefkit convert``; the CLI builds one of these from its flags."""

    sources: list[str] = field(metadata={"help": "Input files, folders of shards, or hf:ORG/NAME[@revision][:split]."})
    output: str = field(metadata={"help": "Output file; .jsonl or .parquet picks the format."})
    format: str | None = field(default=None, metadata={"help": "Input format; detected from the keys when unset."})
    fields: list[str] = field(
        default_factory=list,
        metadata={"help": "Custom mapping KEY=PATH (prompt, chosen, rejected, score_chosen, score_rejected, system)."},
    )
    style: str = field(
        default="conversational",
        metadata={"help": "conversational: message lists (chat models); standard: plain strings (base models)."},
    )
    rejects: str | None = field(
        default=None, metadata={"help": "Rejects file; default NAME.rejects.jsonl beside the output."}
    )
    report: str | None = field(
        default=None, metadata={"help": "Report file; default NAME.report.json beside the output."}
    )
    keep_ties: bool = field(
        default=False, metadata={"help": "Keep pairs whose scores are equal instead of rejecting them."}
    )
    binarize: str = field(
        default="random-lower",
        metadata={"help": "Raw UltraFeedback: random-lower (best vs. seeded random lower) or best-worst."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for the random choices of adapters."})
    strict: bool = field(default=False, metadata={"help": "Treat any rejected record as a failure (exit 1)."})

    def adapt_options(self) -> AdaptOptions:
        return AdaptOptions(fields=parse_fields(self.fields), binarize=self.binarize, seed=self.seed)


def parse_fields(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``["prompt=question", "chosen=a.good"]`` becomes ``(("prompt", "question"), ("chosen", "a.good"))``."""
    pairs = []
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise FieldMappingError(f"--field {item}: expected KEY=PATH, e.g. prompt=question")
        pairs.append((key.strip(), path.strip()))
    return tuple(pairs)


@dataclass
class SourceReport:
    source: str
    format: str
    read: int
    written: int
    rejected: int
    blank_lines: int
    reasons: dict[str, int]


@dataclass
class ConvertResult:
    output: str
    rejects: str
    report: str
    style: str
    read: int
    written: int
    rejected: int
    reasons: dict[str, int]
    sources: list[SourceReport]
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def adapt_batch(raw: RawRecords, fmt: Format | None, options: AdaptOptions, file_index: int) -> pl.DataFrame:
    """Runs one adapter over a batch and attaches ``source`` (kept from canonical input when present)."""
    if fmt is None or not raw.frame.height:
        return _empty_pairs().with_columns(source=pl.lit(None, pl.String), **{FILE: pl.lit(file_index, pl.Int32)})
    pairs = fmt.adapt(raw.frame, options)
    origin = Path(raw.label).name if not raw.label.startswith("hf:") else raw.label
    source = pl.lit(f"{fmt.name}:{origin}")
    if fmt.name == "trl" and raw.frame.schema.get("source") == pl.String:
        source = pl.Series(raw.frame["source"]).fill_null(f"{fmt.name}:{origin}")
    return pairs.with_columns(source=source, **{FILE: pl.lit(file_index, pl.Int32)})


def _empty_pairs() -> pl.DataFrame:
    schema = {LINE: pl.Int64, REASON: pl.String, DETAIL: pl.String}
    schema |= {k: v for k, v in frame_schema("conversational").items() if k not in ("id", "source")}
    return pl.DataFrame(schema=schema)


def apply_checks(pairs: pl.DataFrame, keep_ties: bool) -> pl.DataFrame:
    """Marks rows that fail the schema's row checks, then ties (the first reason wins)."""
    rules = [Rule(~check.passes(), check.reason, check.failure) for check in checks_for("conversational")]
    if not keep_ties:
        tie = pl.col("score_chosen") == pl.col("score_rejected")
        rules.append(Rule(tie, RejectReason.TIE, pl.format("both replies scored {}", pl.col("score_chosen"))))
    return mark(pairs, *rules)


def pair_id() -> pl.Expr:
    """Stable content hash of a pair: the first 16 hex digits of BLAKE3 over :func:`serialize_pair`.

    BLAKE3 is a fixed, specified function (unlike polars' own ``hash``, which may change between
    versions), so ids stay the same across machines and releases.
    """
    text = serialize_pair(pl.col("prompt"), pl.col("chosen"), pl.col("rejected"))
    return text.chash.blake3().str.head(16).alias("id")


SEEN_SCHEMA = {"id": pl.String, FILE: pl.Int32, LINE: pl.Int64}


def mark_duplicates(pairs: pl.DataFrame, seen: pl.DataFrame, labels: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rejects every later copy of a pair already kept (same ``id``) with reason ``duplicate``.

    ``seen`` holds the id, file and line of every pair kept so far; returns the marked batch and
    ``seen`` grown by this batch's new pairs. The detail of a duplicate names the first copy. Only a
    slim id/file/line frame is probed and joined, never the batch's heavy text columns.
    """
    slim = pairs.select("id", FILE, LINE, live=pl.col(REASON).is_null()).with_row_index("__row")
    live = slim.filter("live")
    new = live.filter(pl.col("id").is_first_distinct() & ~pl.col("id").is_in(seen["id"].implode()))
    seen = pl.concat([seen, new.select(SEEN_SCHEMA.keys())])
    repeats = live.join(new.select("__row"), on="__row", how="anti")
    if repeats.is_empty():
        return pairs, seen
    first = seen.rename({FILE: "__first_file", LINE: "__first_line"})
    label = pl.col("__first_file").replace_strict(dict(enumerate(labels)), return_dtype=pl.String)
    details = repeats.join(first, on="id", how="left").select(
        "__row", pl.format("same pair as {} line {}", label, pl.col("__first_line")).alias("detail")
    )
    column = pl.Series("__duplicate_of", [None] * pairs.height, pl.String).scatter(details["__row"], details["detail"])
    pairs = pairs.with_columns(column)
    rule = Rule(pl.col("__duplicate_of").is_not_null(), RejectReason.DUPLICATE, pl.col("__duplicate_of"))
    return mark(pairs, rule).drop("__duplicate_of"), seen


def to_style(pairs: pl.DataFrame, style: str) -> pl.DataFrame:
    """Selects the canonical columns; ``standard`` flattens messages to strings."""
    if style == "standard":
        pairs = pairs.with_columns(
            prompt=render_standard_prompt(pl.col("prompt")),
            chosen=reply_text(pl.col("chosen")),
            rejected=reply_text(pl.col("rejected")),
        )
    return pairs.select(COLUMNS)


def guard_schema(frame: pl.DataFrame, style: str) -> None:
    """Asserts the output's columns and dtypes; a failure here is a prefkit bug, never the data's.

    Row-level rules need no second pass: every written row already passed the schema's own
    ``RowCheck`` expressions in :func:`apply_checks`, the ones the pandera model validates with.
    """
    expected = frame_schema(style)
    if dict(frame.schema) != expected:
        raise PrefkitError(f"internal error: output schema {dict(frame.schema)} is not the canonical {expected}")


def resolve_all(specs: list[str]) -> list[tuple[str, Path | HubSource]]:
    """Every (SOURCE argument, file) pair; resolving all before reading any makes a typo fail fast."""
    return [(spec, path) for spec in specs for path in resolve(spec)]


def converted_batches(
    files: list[tuple[str, Path | HubSource]],
    forced: Format | None,
    options: AdaptOptions,
    keep_ties: bool,
    progress: ProgressCallback | None = None,
) -> Iterator[tuple[int, RawRecords, Format | None, pl.DataFrame]]:
    """Reads, adapts, checks and hashes every batch of every file, in order.

    Yields ``(file_index, raw, format, pairs)``; ``pairs`` has every record of the batch, with
    ``__reason`` set on those to reject. The format is detected once per SOURCE argument, from its
    first non-empty batch. Reading runs a batch ahead on a thread and two batches are adapted at
    once; what the caller does with a batch (dedupe, write) stays in input order.
    """
    formats: dict[str, Format] = {}

    def batches() -> Iterator[tuple[int, RawRecords, Format | None]]:
        for file_index, (spec, path) in enumerate(files):
            if progress:
                progress(f"reading {path}", file_index, len(files))
            for raw in iter_batches(path):
                fmt = formats.get(spec) or forced
                if fmt is None and raw.frame.height:
                    fmt = formats[spec] = detect_format(raw.frame, spec)
                yield file_index, raw, fmt

    def prepare(item: tuple[int, RawRecords, Format | None]):
        file_index, raw, fmt = item
        pairs = adapt_batch(raw, fmt, options, file_index)
        return file_index, raw, fmt, apply_checks(pairs, keep_ties).with_columns(pair_id())

    yield from ordered_map(prepare, prefetched(batches()))
    if progress:
        progress("writing", len(files), len(files))


def convert(config: ConvertConfig, progress: ProgressCallback | None = None) -> ConvertResult:
    """Converts every source into one canonical file plus its rejects file and report.

    Sources stream through in batches (read, adapt, check, hash, dedupe, write), so memory stays
    bounded by the batch size, not the input size. Outputs are written to temporary files and
    renamed into place only when every source has been read.
    """
    started = time.perf_counter()
    if config.style not in STYLES:
        raise UsageError(f"unknown style '{config.style}' (expected {' or '.join(STYLES)})")
    output = Path(config.output)
    check_pairs_path(output)
    rejects_path = Path(config.rejects) if config.rejects else sidecar(output, "rejects.jsonl")
    report_path = Path(config.report) if config.report else sidecar(output, "report.json")
    options = config.adapt_options()
    forced = get_format(config.format) if config.format else (get_format("jsonl") if options.fields else None)

    files = resolve_all(config.sources)
    labels = [str(path) for _, path in files]
    reports = [
        SourceReport(source=label, format="-", read=0, written=0, rejected=0, blank_lines=0, reasons={})
        for label in labels
    ]
    seen = pl.DataFrame(schema=SEEN_SCHEMA)
    with (
        pair_sink(output, config.style) as write_pairs,
        in_background(write_pairs) as write_batch,
        line_sink(rejects_path) as writereject_lines,
    ):
        # Dedupe and writing stay in input order on this thread.
        for file_index, raw, fmt, pairs in converted_batches(files, forced, options, config.keep_ties, progress):
            pairs, seen = mark_duplicates(pairs, seen, labels)
            kept = pairs.filter(pl.col(REASON).is_null())
            out = to_style(kept, config.style)
            guard_schema(out, config.style)
            write_batch(out)
            rejects = pl.concat([raw.rejects, pairs.filter(pl.col(REASON).is_not_null()).select(raw.rejects.columns)])
            writereject_lines(reject_lines(raw, rejects.sort(LINE)))
            _count(reports[file_index], raw, fmt, kept.height, rejects)
    result = _summarize(config, output, rejects_path, report_path, reports, started)
    write_json(result.to_dict(), report_path)
    return result


def reject_lines(raw: RawRecords, rejects: pl.DataFrame) -> list[str]:
    texts = raw.record_text(rejects[LINE].to_list()) if rejects.height else {}
    return [
        reject_line(raw.label, line, reason, detail, texts[line], reason not in _RAW_TEXT_REASONS)
        for line, reason, detail in rejects.iter_rows()
    ]


def _count(report: SourceReport, raw: RawRecords, fmt: Format | None, written: int, rejects: pl.DataFrame) -> None:
    report.format = fmt.name if fmt else report.format
    report.read += raw.read
    report.written += written
    report.rejected += rejects.height
    report.blank_lines += raw.blank_lines
    counts = Counter(report.reasons) + Counter(rejects[REASON].to_list())
    report.reasons = dict(sorted(counts.items()))


def _summarize(config, output, rejects_path, report_path, reports, started) -> ConvertResult:
    reasons: Counter = Counter()
    for r in reports:
        reasons.update(r.reasons)
    return ConvertResult(
        output=str(output),
        rejects=str(rejects_path),
        report=str(report_path),
        style=config.style,
        read=sum(r.read for r in reports),
        written=sum(r.written for r in reports),
        rejected=sum(r.rejected for r in reports),
        reasons=dict(sorted(reasons.items())),
        sources=reports,
        seconds=round(time.perf_counter() - started, 3),
    )
