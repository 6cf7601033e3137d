"""``prefkit convert``: read, adapt, check, dedupe, write.

Each step is a function over polars frames that can be tested alone. Every input record ends in
exactly one place, the output or the rejects file, and ``read == written + rejected`` holds for each
source and in total.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from prefkit.adapters import AdaptOptions, Format, detect_format, get_format
from prefkit.errors import FieldMappingError, PrefkitError, UsageError
from prefkit.messages import render_standard_prompt, reply_text, serialize_pair
from prefkit.reasons import RejectReason
from prefkit.schema import COLUMNS, STYLES, checks_for, model_for
from prefkit.sources import DETAIL, LINE, REASON, RawRecords, read, resolve
from prefkit.writers import (
    ProgressCallback,
    check_pairs_path,
    reject_line,
    sidecar,
    write_json,
    write_lines,
    write_pairs,
)

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
    rejects: str | None = field(default=None, metadata={"help": "Rejects file; default NAME.rejects.jsonl beside the output."})
    report: str | None = field(default=None, metadata={"help": "Report file; default NAME.report.json beside the output."})
    keep_ties: bool = field(default=False, metadata={"help": "Keep pairs whose scores are equal instead of rejecting them."})
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


@dataclass
class AdaptedSource:
    raw: RawRecords
    format: Format
    pairs: pl.DataFrame  # __line, __reason, __detail, pair columns, source


def adapt_source(raw: RawRecords, fmt: Format, options: AdaptOptions) -> AdaptedSource:
    """Runs one adapter and attaches the ``source`` label (kept from canonical input when present)."""
    pairs = fmt.adapt(raw.frame, options) if raw.frame.height else _empty_pairs()
    default = f"{fmt.name}:{Path(raw.label).name if not raw.label.startswith('hf:') else raw.label}"
    origin = raw.frame["source"] if raw.frame.schema.get("source") == pl.String and fmt.name == "trl" else None
    source = pl.lit(default) if origin is None else pl.Series(origin).fill_null(default)
    return AdaptedSource(raw=raw, format=fmt, pairs=pairs.with_columns(source=source))


def _empty_pairs() -> pl.DataFrame:
    from prefkit.schema import frame_schema

    schema = {LINE: pl.Int64, REASON: pl.String, DETAIL: pl.String}
    schema |= {k: v for k, v in frame_schema("conversational").items() if k not in ("id", "source")}
    return pl.DataFrame(schema=schema)


def apply_checks(pairs: pl.DataFrame, keep_ties: bool) -> pl.DataFrame:
    """Marks rows that fail the schema's row checks, then ties (the first reason wins)."""
    from prefkit.adapters.base import mark

    for check in checks_for("conversational"):
        pairs = mark(pairs, ~check.passes(), check.reason, check.failure)
    if not keep_ties:
        tie = pl.col("score_chosen") == pl.col("score_rejected")
        pairs = mark(pairs, tie, RejectReason.TIE, pl.format("both replies scored {}", pl.col("score_chosen")))
    return pairs


def pair_ids(pairs: pl.DataFrame) -> pl.Series:
    """Stable content hashes: the first 16 hex digits of sha256 over :func:`serialize_pair`."""
    text = pairs.select(serialize_pair(pl.col("prompt"), pl.col("chosen"), pl.col("rejected")))
    ids = [
        hashlib.sha256(t.encode()).hexdigest()[:16] if t is not None else None for t in text.to_series().to_list()
    ]
    return pl.Series("id", ids, dtype=pl.String)


def mark_duplicates(pairs: pl.DataFrame, labels: list[str]) -> pl.DataFrame:
    """Rejects every later copy of a pair already seen (same ``id``) with reason ``duplicate``."""
    from prefkit.adapters.base import mark

    pairs = pairs.with_row_index("__row")
    live = pl.col(REASON).is_null()

    def first(column: str) -> pl.Expr:
        return pl.col(column).filter(live).first().over("id")

    repeat = live & (first("__row") != pl.col("__row"))
    label = first(FILE).replace_strict(dict(enumerate(labels)), return_dtype=pl.String)
    pairs = mark(pairs, repeat, RejectReason.DUPLICATE, pl.format("same pair as {} line {}", label, first(LINE)))
    return pairs.drop("__row")


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
    """Validates the output with the pandera model; a failure here is a prefkit bug, never the data's."""
    import pandera.errors

    try:
        model_for(style).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        raise PrefkitError(f"internal error: output failed its own schema:\n{err.failure_cases.head(5)}") from err


def convert(config: ConvertConfig, progress: ProgressCallback | None = None) -> ConvertResult:
    """Converts every source into one canonical file plus its rejects file and report."""
    started = time.perf_counter()
    if config.style not in STYLES:
        raise UsageError(f"unknown style '{config.style}' (expected {' or '.join(STYLES)})")
    output = Path(config.output)
    check_pairs_path(output)
    rejects_path = Path(config.rejects) if config.rejects else sidecar(output, "rejects.jsonl")
    report_path = Path(config.report) if config.report else sidecar(output, "report.json")
    options = config.adapt_options()
    forced = get_format(config.format) if config.format else (get_format("jsonl") if options.fields else None)

    # Resolve every source before reading any, so a typo fails fast and writes nothing.
    resolved = [(spec, resolve(spec)) for spec in config.sources]
    total = sum(len(files) for _, files in resolved)
    adapted: list[AdaptedSource] = []
    for spec, files in resolved:
        fmt = forced
        for path in files:
            if progress:
                progress(f"reading {path}", len(adapted), total)
            raw = read(path)
            fmt = fmt or detect_format(raw.frame, spec)
            adapted.append(adapt_source(raw, fmt, options))
    if progress:
        progress("checking", total, total)

    pairs = pl.concat(
        [a.pairs.with_columns(pl.lit(i, pl.Int32).alias(FILE)) for i, a in enumerate(adapted)],
        how="vertical_relaxed",
    )
    pairs = apply_checks(pairs, config.keep_ties)
    pairs = pairs.with_columns(pair_ids(pairs))
    pairs = mark_duplicates(pairs, [a.raw.label for a in adapted])

    kept = pairs.filter(pl.col(REASON).is_null())
    out = to_style(kept, config.style)
    guard_schema(out, config.style)

    reject_rows = _reject_rows(adapted, pairs)
    if progress:
        progress("writing", total, total)
    write_pairs(out, output)
    write_lines(_reject_lines(adapted, reject_rows), rejects_path)
    result = _summarize(config, output, rejects_path, report_path, adapted, kept, reject_rows, started)
    write_json(result.to_dict(), report_path)
    return result


def _reject_rows(adapted: list[AdaptedSource], pairs: pl.DataFrame) -> pl.DataFrame:
    """Read-stage and pipeline rejects together: ``__file``, ``__line``, ``__reason``, ``__detail``."""
    read_rejects = [
        a.raw.rejects.with_columns(pl.lit(i, pl.Int32).alias(FILE)) for i, a in enumerate(adapted) if a.raw.rejects.height
    ]
    later = pairs.filter(pl.col(REASON).is_not_null()).select(FILE, LINE, REASON, DETAIL)
    frames = [later] + [r.select(FILE, LINE, REASON, DETAIL) for r in read_rejects]
    return pl.concat(frames).sort(FILE, LINE)


def _reject_lines(adapted: list[AdaptedSource], rejects: pl.DataFrame):
    for (file_index,), group in rejects.group_by(FILE, maintain_order=True):
        raw = adapted[file_index].raw
        texts = raw.record_text(group[LINE].to_list())
        for line, reason, detail in group.select(LINE, REASON, DETAIL).iter_rows():
            yield reject_line(raw.label, line, reason, detail, texts[line], reason not in _RAW_TEXT_REASONS)


def _summarize(config, output, rejects_path, report_path, adapted, kept, rejects, started) -> ConvertResult:
    written = Counter(kept[FILE].to_list())
    reasons_by_file: dict[int, Counter] = {}
    for file_index, reason in rejects.select(FILE, REASON).iter_rows():
        reasons_by_file.setdefault(file_index, Counter())[reason] += 1
    sources = []
    for i, a in enumerate(adapted):
        reasons = dict(sorted(reasons_by_file.get(i, Counter()).items()))
        sources.append(
            SourceReport(
                source=a.raw.label,
                format=a.format.name,
                read=a.raw.read,
                written=written.get(i, 0),
                rejected=sum(reasons.values()),
                blank_lines=a.raw.blank_lines,
                reasons=reasons,
            )
        )
    total_reasons: Counter = Counter()
    for s in sources:
        total_reasons.update(s.reasons)
    return ConvertResult(
        output=str(output),
        rejects=str(rejects_path),
        report=str(report_path),
        style=config.style,
        read=sum(s.read for s in sources),
        written=kept.height,
        rejected=rejects.height,
        reasons=dict(sorted(total_reasons.items())),
        sources=sources,
        seconds=round(time.perf_counter() - started, 3),
    )
