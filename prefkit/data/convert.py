"""``prefkit convert``: read, adapt, check, dedupe, write.

Each step is a function over polars frames that can be tested alone. Unpaired sources (a
completion and a label per record) take the same steps with their own checks and ids, and are
written with ``to="unpaired"``, beside pairs cut in two. Every input record ends in
the output or the rejects file, and ``candidates == written + rejected`` holds for each source and
in total (see :class:`SourceCounts`: for one pair per record, ``candidates == read``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import polars_hash  # noqa: F401  (registers the .chash namespace used by pair_id)

from prefkit.atomic_files import check_outputs, line_sink, write_json
from prefkit.config import DEFAULT_SEED, check_fields, option
from prefkit.data.adapters import BY_NAME, AdaptOptions, Format, detect_format, get_format
from prefkit.data.adapters.base import PairingOptions, Rule, mark
from prefkit.data.columns import DETAIL, FILE, LINE, REASON
from prefkit.data.concurrency import ordered_map, prefetched
from prefkit.data.messages import render_standard_prompt, reply_text, serialize_pair
from prefkit.data.reasons import RejectReason
from prefkit.data.schema import (
    KINDS,
    STYLES,
    canonical_columns,
    checks_for,
    detect_kind,
    frame_schema,
    optional_columns,
)
from prefkit.data.sources import (
    MAX_LINE_BYTES,
    REJECTED_TEXT_CHARS,
    HubSource,
    RawRecords,
    iter_batches,
    merged,
    resolve,
)
from prefkit.data.unpaired import label_balance, unpair
from prefkit.data.writers import check_pairs_path, discard, in_background, pair_sink, reject_line, sidecar
from prefkit.errors import FieldMappingError, PrefkitError, RejectsFound, UsageError
from prefkit.progress import ReportProgress
from prefkit.results import Reject, Result

# Reasons whose record is not valid JSON text, so the rejects file stores it as a string.
_RAW_TEXT_REASONS = {RejectReason.INVALID_JSON, RejectReason.INVALID_UTF8, RejectReason.LINE_TOO_LONG}


@dataclass
class ConvertConfig(PairingOptions):
    """Options of ``prefkit convert``; the CLI derives its flags from these fields."""

    sources: list[str] = option(help="Input files, folders of shards, or hf:ORG/NAME[@revision][:split].")
    output: str | None = option(None, "Output file; .jsonl or .parquet picks the format.", flags=("-o", "--output"))
    format: str | None = option(
        None, "Input format; detected from the keys when unset.", choices=tuple(sorted(BY_NAME))
    )
    fields: list[str] = option(
        [],
        "Custom mapping KEY=PATH: pairs (prompt, chosen, rejected, score_chosen, score_rejected, system); "
        "labelled pairs (responses=A,B with label or preference); ranked lists (responses=LIST with rank or "
        "score); rated rows (group, response, score or rank); unpaired feedback (prompt, completion, label: a "
        "thumbs field); metadata.NAME=PATH keeps a field of a pair's record.",
        flags=("--field",),
        metavar="KEY=PATH",
    )
    style: str = option(
        "conversational",
        "conversational: message lists (chat models); standard: plain strings (base models).",
        choices=STYLES,
    )
    to: str = option(
        "pairs",
        "pairs: canonical prompt/chosen/rejected; unpaired: records of prompt, completion and label, as KTO "
        "trains: unpaired sources (thumbs feedback) as they are, each pair as two (label true for the chosen "
        "reply, false for the rejected; pair_id kept).",
        choices=KINDS,
    )
    rejects: str | None = option(None, "Rejects file; default NAME.rejects.jsonl beside the output.")
    report: str | None = option(None, "Report file; default NAME.report.json beside the output.")
    keep_ties: bool = option(False, "Keep pairs whose scores are equal instead of rejecting them.")
    seed: int = option(DEFAULT_SEED, "Seed for the random choices of adapters.")
    strict: bool = option(False, "Treat any rejected record as a failure: raise RejectsFound (exit 1).")
    max_line_bytes: int = option(
        MAX_LINE_BYTES, "Longest line read as a record; a longer one is skipped unread as line_too_long.", min=1
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def adapt_options(self) -> AdaptOptions:
        return AdaptOptions(
            fields=parse_fields(self.fields), seed=self.seed, keep_ties=self.keep_ties, **self.pairing()
        )


def parse_fields(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``--field`` mappings as ``(canonical name, the source's key path)`` pairs.

    >>> parse_fields(["prompt=question", "chosen=a.good"])
    (('prompt', 'question'), ('chosen', 'a.good'))
    """
    pairs = []
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise FieldMappingError(f"--field {item}: expected KEY=PATH, e.g. prompt=question")
        pairs.append((key.strip(), path.strip()))
    return tuple(pairs)


LISTED = 100
"""How many rejected records a report lists one by one (the rejects file has them all)."""


@dataclass
class SourceCounts:
    """What happened to one source's records: ``candidates == written + rejected``.

    ``read`` counts the records of the file; ``candidates`` the pairs the adapter made of them plus
    the records it could not make a pair of. Most formats give one candidate per record, so
    ``read == written + rejected``; ranked lists under ``all-pairs`` give several per record, and
    rated rows one per prompt, from several records. The one counter of per-source outcomes;
    ``mix`` extends it with its own later steps.
    """

    source: str
    format: str = "-"
    read: int = 0
    candidates: int = 0
    written: int = 0
    rejected: int = 0
    blank_lines: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, raw: RawRecords, fmt: Format | None, written: int, rejects: pl.DataFrame) -> None:
        """Counts one batch: its records read, the pairs kept and the rejects (``__reason`` column)."""
        self.format = fmt.name if fmt else self.format
        self.read += raw.read
        self.candidates += written + rejects.height
        self.written += written
        self.rejected += rejects.height
        self.blank_lines += raw.blank_lines
        counts = Counter(self.reasons) + Counter(rejects[REASON].to_list())
        self.reasons = dict(sorted(counts.items()))


@dataclass
class UnpairedCounts:
    """Unpaired records written, and how many of them are desirable (label true) and undesirable."""

    records: int
    desirable: int
    undesirable: int


@dataclass
class ConvertResult(Result):
    output: str | None
    rejects: str | None
    report: str | None
    style: str
    read: int
    candidates: int
    written: int
    rejected: int
    reasons: dict[str, int]
    sources: list[SourceCounts]
    first_rejects: list[Reject]
    """The first rejected records, at most ``LISTED``."""
    seconds: float
    unpaired: UnpairedCounts | None = None
    """With ``to="unpaired"``: the records written, desirable (label true) and undesirable."""


def adapt_batch(raw: RawRecords, fmt: Format | None, options: AdaptOptions, file_index: int) -> pl.DataFrame:
    """Runs one adapter over a batch and attaches ``source`` (kept from canonical input when present).

    >>> files = resolve_all([_example_file()])
    >>> ((index, raw, fmt, pairs),) = converted_batches(files, None, AdaptOptions(), keep_ties=False)
    >>> adapt_batch(raw, fmt, AdaptOptions(), 0)["source"].to_list()
    ['trl:example.jsonl', 'trl:example.jsonl']
    """
    if fmt is None or not raw.frame.height:
        return _empty_pairs().with_columns(source=pl.lit(None, pl.String), **{FILE: pl.lit(file_index, pl.Int32)})
    pairs = fmt.adapt(raw.frame, options)
    origin = Path(raw.label).name if not raw.label.startswith("hf:") else raw.label
    source = pl.lit(f"{fmt.name}:{origin}")
    if fmt.name in ("trl", "unpaired") and raw.frame.schema.get("source") == pl.String:
        source = pl.Series(raw.frame["source"]).fill_null(f"{fmt.name}:{origin}")
    return pairs.with_columns(source=source, **{FILE: pl.lit(file_index, pl.Int32)})


def _empty_pairs() -> pl.DataFrame:
    schema = {LINE: pl.Int64, REASON: pl.String, DETAIL: pl.String}
    schema |= {k: v for k, v in frame_schema("conversational").items() if k not in ("id", "source")}
    return pl.DataFrame(schema=schema)


def apply_checks(pairs: pl.DataFrame, keep_ties: bool, min_margin: float | None = None) -> pl.DataFrame:
    """Marks rows that fail the schema's row checks, then ties, then weak margins (the first reason wins).

    >>> files = resolve_all([_example_file()])
    >>> ((index, raw, fmt, pairs),) = converted_batches(files, None, AdaptOptions(), keep_ties=False)
    >>> apply_checks(adapt_batch(raw, fmt, AdaptOptions(), 0), keep_ties=False)[REASON].to_list()
    [None, 'identical_responses']
    """
    rules = schema_rules("pairs")
    if "margin" in pairs.columns:
        rules.append(Rule(~pl.col("margin").is_finite(), RejectReason.INVALID_SCORE, "the margin is NaN or infinite"))
    if not keep_ties:
        tie = pl.col("score_chosen") == pl.col("score_rejected")
        rules.append(Rule(tie, RejectReason.TIE, pl.format("both replies scored {}", pl.col("score_chosen"))))
    if min_margin is not None and "margin" in pairs.columns:
        rules.append(
            Rule(
                pl.col("margin") < min_margin,
                RejectReason.WEAK_PREFERENCE,
                pl.format(f"margin {{}} is below --min-margin {min_margin:g}", pl.col("margin")),
            )
        )
    return mark(pairs, *rules)


def is_unpaired(adapted: pl.DataFrame) -> bool:
    """Whether an adapter gave unpaired records (a ``completion`` each) rather than pairs.

    >>> is_unpaired(pl.DataFrame({"prompt": ["q"], "completion": ["a"], "label": [True]}))
    True
    """
    return detect_kind(adapted.schema) == "unpaired"


def schema_rules(kind: str) -> list[Rule]:
    """The schema's row checks of ``kind`` as reject rules (adapters give conversational rows).

    >>> [str(rule.reason) for rule in schema_rules("unpaired")][:2]
    ['empty_prompt', 'invalid_role']
    """
    return [Rule(~check.passes(), check.reason, check.failure) for check in checks_for("conversational", kind)]


def apply_unpaired_checks(records: pl.DataFrame) -> pl.DataFrame:
    """Marks unpaired records that fail the unpaired schema's row checks (the first reason wins).

    >>> turn = lambda role, text: [{"role": role, "content": text}]
    >>> records = pl.DataFrame({"prompt": [turn("user", "2 + 2?")] * 2, "completion": [turn("assistant", "4"),
    ...     turn("assistant", " ")], "label": [True, False], REASON: [None, None], DETAIL: [None, None]},
    ...     schema_overrides={REASON: pl.String, DETAIL: pl.String})
    >>> apply_unpaired_checks(records)[REASON].to_list()
    [None, 'empty_response']
    """
    return mark(records, *schema_rules("unpaired"))


def record_id(from_pairs: bool = False) -> pl.Expr:
    """Stable content hash of an unpaired record's prompt and completion, as :func:`pair_id` hashes a
    pair. The label is left out on purpose: the same reply labelled twice is one record, found as
    a repeat (``duplicate``, or ``conflicting_labels`` when the labels differ). With
    ``from_pairs`` (the records carry ``pair_id``), a record cut from a pair keeps the id
    :func:`~prefkit.data.unpaired.unpair` gave it, ``PAIR:chosen`` or ``PAIR:rejected``, so
    converting an unpaired file again changes no id.

    >>> turn = lambda role, text: [{"role": role, "content": text}]
    >>> records = pl.DataFrame({"prompt": [turn("user", "q")] * 2, "completion": [turn("assistant", "a")] * 2,
    ...                         "label": [True, False], "pair_id": ["p1", None]})
    >>> ids = records.select(record_id(from_pairs=True)).to_series().to_list()
    >>> ids[0], ids[1] == records.select(record_id()).to_series()[1]
    ('p1:chosen', True)
    """
    text = serialize_pair(pl.col("prompt"), pl.col("completion"), pl.col("completion"))
    content = text.chash.blake3().str.head(16)
    if not from_pairs:
        return content.alias("id")
    side = pl.when(pl.col("label")).then(pl.lit(":chosen")).otherwise(pl.lit(":rejected"))
    return pl.when(pl.col("pair_id").is_not_null()).then(pl.col("pair_id") + side).otherwise(content).alias("id")


def pair_id() -> pl.Expr:
    """Stable content hash of a pair: the first 16 hex digits of BLAKE3 over :func:`serialize_pair`.

    BLAKE3 is a fixed, specified function (unlike polars' own ``hash``, which may change between
    versions), so ids stay the same across machines and releases.

    >>> turn = lambda role, text: [{"role": role, "content": text}]
    >>> pair = {"prompt": [turn("user", "2 + 2?")], "chosen": [turn("assistant", "4")], "rejected": [turn("assistant", "5")]}
    >>> pl.DataFrame(pair).select(pair_id()).item()
    '023f06737b2fc44d'
    """
    text = serialize_pair(pl.col("prompt"), pl.col("chosen"), pl.col("rejected"))
    return text.chash.blake3().str.head(16).alias("id")


SEEN_SCHEMA = {"id": pl.String, FILE: pl.Int32, LINE: pl.Int64}


SEEN_RECORDS_SCHEMA = SEEN_SCHEMA | {"label": pl.Boolean}


def mark_duplicates(pairs: pl.DataFrame, seen: pl.DataFrame, labels: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rejects every later copy of a pair already kept (same ``id``) with reason ``duplicate``.

    ``seen`` holds the id, file and line of every pair kept so far; returns the marked batch and
    ``seen`` grown by this batch's new pairs. The detail of a duplicate names the first copy. Only a
    slim id/file/line frame is probed and joined, never the batch's heavy text columns. For
    unpaired records ``seen`` also holds the label (:data:`SEEN_RECORDS_SCHEMA`): a repeat labelled
    the other way is ``conflicting_labels``; the first stays, as it is already written.

    >>> batch = pl.DataFrame({"id": ["a", "b", "a"], FILE: [0, 0, 0], LINE: [1, 2, 3], REASON: [None, None, None],
    ...                       DETAIL: [None, None, None]}, schema_overrides={FILE: pl.Int32, REASON: pl.String,
    ...                       DETAIL: pl.String})
    >>> marked, seen = mark_duplicates(batch, pl.DataFrame(schema=SEEN_SCHEMA), ["a.jsonl"])
    >>> marked.select(REASON, DETAIL).rows(), seen["id"].to_list()
    ([(None, None), (None, None), ('duplicate', 'same pair as a.jsonl line 1')], ['a', 'b'])
    """
    carried = [c for c in seen.columns if c not in SEEN_SCHEMA]
    slim = pairs.select("id", FILE, LINE, *carried, live=pl.col(REASON).is_null()).with_row_index("__row")
    live = slim.filter("live")
    new = live.filter(pl.col("id").is_first_distinct() & ~pl.col("id").is_in(seen["id"].implode()))
    seen = pl.concat([seen, new.select(seen.columns)])
    repeats = live.join(new.select("__row"), on="__row", how="anti")
    if repeats.is_empty():
        return pairs, seen
    first = seen.rename({FILE: "__first_file", LINE: "__first_line"})
    label = pl.col("__first_file").replace_strict(dict(enumerate(labels)), return_dtype=pl.String)
    what = "record" if carried else "pair"
    details = repeats.join(first, on="id", how="left", suffix="__first").select(
        "__row",
        pl.format(f"same {what} as {{}} line {{}}", label, pl.col("__first_line")).alias("detail"),
        (pl.col("label") != pl.col("label__first")).alias("conflict") if carried else pl.lit(False).alias("conflict"),
    )
    rows = details["__row"]
    pairs = pairs.with_columns(
        pl.Series("__duplicate_of", [None] * pairs.height, pl.String).scatter(rows, details["detail"]),
        pl.Series("__conflict", [False] * pairs.height, pl.Boolean).scatter(rows, details["conflict"]),
    )
    conflict = Rule(
        pl.col("__conflict"),
        RejectReason.CONFLICTING_LABELS,
        pl.format("{}, labelled the other way", pl.col("__duplicate_of")),
    )
    repeat = Rule(pl.col("__duplicate_of").is_not_null(), RejectReason.DUPLICATE, pl.col("__duplicate_of"))
    return mark(pairs, conflict, repeat).drop("__duplicate_of", "__conflict"), seen


def to_style(pairs: pl.DataFrame, style: str) -> pl.DataFrame:
    """Selects the canonical columns, the optional ones where present; ``standard`` flattens
    messages to strings.

    >>> files = resolve_all([_example_file()])
    >>> ((index, raw, fmt, pairs),) = converted_batches(files, None, AdaptOptions(), keep_ties=False)
    >>> kept, _ = split_rejects(raw, pairs)
    >>> to_style(kept, "standard").select("prompt", "chosen", "rejected").rows()
    [('2 + 2?', '4', '5')]
    """
    if style == "standard":
        pairs = pairs.with_columns(
            prompt=render_standard_prompt(pl.col("prompt")),
            chosen=reply_text(pl.col("chosen")),
            rejected=reply_text(pl.col("rejected")),
        )
    return pairs.select(canonical_columns(pairs))


def records_to_style(records: pl.DataFrame, style: str) -> pl.DataFrame:
    """Unpaired records' canonical columns (``pair_id`` null where the source had none); ``standard``
    flattens messages to strings.

    >>> turn = lambda role, text: [{"role": role, "content": text}]
    >>> records = pl.DataFrame({"id": ["r"], "source": ["s"], "prompt": [turn("user", "2 + 2?")],
    ...                         "completion": [turn("assistant", "4")], "label": [True]})
    >>> records_to_style(records, "standard").select("prompt", "completion", "pair_id").rows()
    [('2 + 2?', '4', None)]
    """
    if "pair_id" not in records.columns:
        records = records.with_columns(pair_id=pl.lit(None, pl.String))
    if style == "standard":
        records = records.with_columns(
            prompt=render_standard_prompt(pl.col("prompt")), completion=reply_text(pl.col("completion"))
        )
    return records.select(canonical_columns(records, "unpaired"))


def guard_schema(frame: pl.DataFrame, style: str, kind: str = "pairs") -> None:
    """Asserts the output's columns and dtypes; a failure here is a prefkit bug, never the data's.

    Row-level rules need no second pass: every written row already passed the schema's own
    ``RowCheck`` expressions in :func:`apply_checks`, the ones the pandera model validates with.

    >>> guard_schema(pl.DataFrame({"id": ["a"]}), "standard")
    Traceback (most recent call last):
    prefkit.errors.PrefkitError: internal error: output schema {'id': String} is not the canonical ...
    """
    expected = frame_schema(style, kind)
    actual = dict(frame.schema)
    optional = optional_columns(kind)
    optional_ok = all(name not in actual or check(actual[name]) for name, check in optional.items())
    if {k: v for k, v in actual.items() if k not in optional} != expected or not optional_ok:
        raise PrefkitError(f"internal error: output schema {actual} is not the canonical {expected}")


def resolve_all(specs: list[str]) -> list[tuple[str, Path | HubSource]]:
    """Every (SOURCE argument, file) pair; resolving all before reading any makes a typo fail fast.

    >>> [path.name for _, path in resolve_all([_example_file()])]
    ['example.jsonl']
    >>> resolve_all(["missing.jsonl"])
    Traceback (most recent call last):
    prefkit.errors.SourceError: missing.jsonl: no such file or folder
    """
    return [(spec, path) for spec in specs for path in resolve(spec)]


def converted_batches(
    files: list[tuple[str, Path | HubSource]],
    forced: Format | None,
    options: AdaptOptions,
    keep_ties: bool,
    progress: ReportProgress | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[tuple[int, RawRecords, Format | None, pl.DataFrame]]:
    """Reads, adapts, checks and hashes every batch of every file, in order.

    Yields ``(file_index, raw, format, pairs)``; ``pairs`` has every record of the batch, with
    ``__reason`` set on those to reject. The format is detected once per SOURCE argument, from its
    first non-empty batch. Reading runs a batch ahead on a thread and two batches are adapted at
    once; what the caller does with a batch (dedupe, write) stays in input order.

    >>> files = resolve_all([_example_file()])
    >>> ((index, raw, fmt, pairs),) = converted_batches(files, None, AdaptOptions(), keep_ties=False)
    >>> index, fmt.name, pairs[REASON].to_list()  # the line that is not JSON is in raw.rejects
    (0, 'trl', [None, 'identical_responses'])
    """
    formats: dict[str, Format] = {}

    def batches() -> Iterator[tuple[int, RawRecords, Format | None]]:
        for file_index, (spec, path) in enumerate(files):
            if progress:
                progress(f"reading {path}", file_index, len(files))
            stream = iter_batches(path, max_line_bytes=max_line_bytes)
            for raw in stream:
                fmt = formats.get(spec) or forced
                if fmt is None and raw.frame.height:
                    fmt = formats[spec] = detect_format(raw.frame, spec)
                if fmt is not None and fmt.grouped(options):
                    raw = merged([raw, *stream])
                yield file_index, raw, fmt

    def prepare(item: tuple[int, RawRecords, Format | None]):
        file_index, raw, fmt = item
        pairs = adapt_batch(raw, fmt, options, file_index)
        if options.min_margin is not None and fmt is not None and raw.frame.height and "margin" not in pairs.columns:
            raise FieldMappingError(f"--min-margin: {fmt.name} records carry no margin ({raw.label})")
        if is_unpaired(pairs):
            ids = record_id(from_pairs="pair_id" in pairs.columns)
            return file_index, raw, fmt, apply_unpaired_checks(pairs).with_columns(ids)
        checked = apply_checks(pairs, keep_ties, options.min_margin)
        return file_index, raw, fmt, checked.with_columns(pair_id())

    yield from ordered_map(prepare, prefetched(batches()))
    if progress:
        progress("writing", len(files), len(files))


def convert(config: ConvertConfig, progress: ReportProgress | None = None, dry_run: bool = False) -> ConvertResult:
    """Converts every source into one canonical file plus its rejects file and report.

    Sources stream through in batches (read, adapt, check, hash, dedupe, write), so memory stays
    bounded by the batch size, not the input size. Outputs are written to temporary files and
    renamed into place only when every source has been read. ``dry_run`` runs every step but
    writes nothing (``prefkit validate --format``): the result says what would be rejected and why.
    With ``config.strict``, any rejected record raises :class:`RejectsFound` once the outputs exist.

    >>> import tempfile, pathlib
    >>> output = pathlib.Path(tempfile.mkdtemp()) / "pairs.jsonl"
    >>> result = convert(ConvertConfig(sources=[_example_file()], output=str(output)))
    >>> result.read, result.written, result.rejected, result.reasons
    (3, 1, 2, {'identical_responses': 1, 'invalid_json': 1})
    """
    started = time.perf_counter()
    output = rejects_path = report_path = None
    if not dry_run:
        if not config.output:
            raise UsageError("convert: an output path is needed (-o OUT.jsonl or OUT.parquet)")
        output = Path(config.output)
        check_pairs_path(output)
        rejects_path = Path(config.rejects) if config.rejects else sidecar(output, "rejects.jsonl")
        report_path = Path(config.report) if config.report else sidecar(output, "report.json")
    options = config.adapt_options()
    forced = get_format(config.format) if config.format else (get_format("custom") if options.fields else None)

    files = resolve_all(config.sources)
    outputs = [("-o", output), ("--rejects", rejects_path), ("--report", report_path)]
    check_outputs(outputs, (p for _, p in files if isinstance(p, Path)))
    labels = [str(path) for _, path in files]
    counts = [SourceCounts(source=label) for label in labels]
    listed: list[Reject] = []
    seen = {"pairs": pl.DataFrame(schema=SEEN_SCHEMA), "unpaired": pl.DataFrame(schema=SEEN_RECORDS_SCHEMA)}
    balance: Counter = Counter()
    with (
        pair_sink(output, config.style, config.to) if output else discard() as write_pairs,
        in_background(write_pairs) as write_batch,
        line_sink(rejects_path) if rejects_path else discard() as write_reject_lines,
    ):
        # Dedupe and writing stay in input order on this thread.
        batches = converted_batches(files, forced, options, config.keep_ties, progress, config.max_line_bytes)
        for file_index, raw, fmt, pairs in batches:
            kind = "unpaired" if is_unpaired(pairs) else "pairs"
            if kind == "unpaired" and config.to == "pairs" and not dry_run:
                raise UsageError(
                    f"convert: {raw.label} holds unpaired feedback (a completion and a label per record): "
                    "write it with --to unpaired"
                )
            pairs, seen[kind] = mark_duplicates(pairs, seen[kind], labels)
            kept, rejects = split_rejects(raw, pairs)
            if kind == "unpaired":
                out = records_to_style(kept, config.style)
                guard_schema(out, config.style, kind)
            else:
                out = to_style(kept, config.style)
                guard_schema(out, config.style)
                if config.to == "unpaired":
                    out = unpair(out)
            if config.to == "unpaired":
                balance = Counter(label_balance(out)) + balance
            write_batch(out)
            if not dry_run:
                write_reject_lines(reject_lines(raw, rejects))
            listed += [
                Reject(raw.label, line, reason, detail)
                for line, reason, detail in rejects.head(LISTED - len(listed)).iter_rows()
            ]
            counts[file_index].add(raw, fmt, kept.height, rejects)
    result = ConvertResult(
        output=str(output) if output else None,
        rejects=str(rejects_path) if rejects_path else None,
        report=str(report_path) if report_path else None,
        style=config.style,
        read=sum(c.read for c in counts),
        candidates=sum(c.candidates for c in counts),
        written=sum(c.written for c in counts),
        rejected=sum(c.rejected for c in counts),
        reasons=dict(sorted(sum((Counter(c.reasons) for c in counts), Counter()).items())),
        sources=counts,
        first_rejects=listed,
        seconds=round(time.perf_counter() - started, 3),
    )
    if config.to == "unpaired":
        result.unpaired = UnpairedCounts(sum(balance.values()), balance["desirable"], balance["undesirable"])
    if report_path:
        write_json(result.to_dict(), report_path)
    if config.strict and result.rejected:
        raise RejectsFound(f"strict: {result.rejected:,} of {result.read:,} records rejected", result)
    return result


def read_pairs(
    files: list[tuple[str, Path | HubSource]],
    forced: Format | None,
    options: AdaptOptions,
    keep_ties: bool,
    counts: SourceCounts,
    first_file: int = 0,
    progress: ReportProgress | None = None,
    names: dict[str, str] | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """Every kept pair of ``files`` in memory (canonical columns, ``__file`` from ``first_file``,
    ``__line``) and the rejects-file lines of the rest; ``counts`` is updated. What small inputs
    (evaluation sets, gates) are read with; :func:`kept_pairs` gives the same a batch at a time.

    >>> counts = SourceCounts(source="example")
    >>> pairs, rejected = read_pairs(resolve_all([_example_file()]), None, AdaptOptions(), False, counts)
    >>> pairs.height, len(rejected), (counts.read, counts.written, counts.rejected)
    (1, 2, (3, 1, 2))
    """
    rejected: list[str] = []
    batches = kept_pairs(files, forced, options, keep_ties, counts, rejected, first_file, progress, names)
    return pl.concat(list(batches), how="diagonal_relaxed"), rejected


def kept_pairs(
    files: list[tuple[str, Path | HubSource]],
    forced: Format | None,
    options: AdaptOptions,
    keep_ties: bool,
    counts: SourceCounts,
    rejected: list[str],
    first_file: int = 0,
    progress: ReportProgress | None = None,
    names: dict[str, str] | None = None,
) -> Iterator[pl.DataFrame]:
    """The kept pairs of each batch of ``files`` (canonical columns, ``__file`` from ``first_file``,
    ``__line``; a batch with none kept still comes, empty, for its columns), what ``mix`` and
    ``dedupe`` stream; the rejects-file lines of the rest are appended to ``rejected`` and ``counts``
    is updated. ``names`` renames sources in the rejects lines (see
    :func:`~prefkit.data.sources.display_names`).

    >>> counts, rejected = SourceCounts(source="example"), []
    >>> [b.height for b in kept_pairs(resolve_all([_example_file()]), None, AdaptOptions(), False, counts, rejected)]
    [1]
    >>> len(rejected), counts.rejected
    (2, 2)
    """
    for _, raw, fmt, pairs in converted_batches(files, forced, options, keep_ties, progress):
        if is_unpaired(pairs):
            raise UsageError(
                f"{raw.label} holds unpaired feedback (a completion and a label per record); this reads pairs"
            )
        kept, rejects = split_rejects(raw, pairs)
        counts.add(raw, fmt, kept.height, rejects)
        rejected += reject_lines(raw, rejects, (names or {}).get(raw.label))
        yield kept.select(*canonical_columns(kept), (pl.col(FILE) + first_file).alias(FILE), LINE)


def split_rejects(raw: RawRecords, pairs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A converted batch's kept pairs, and its rejects (read failures and marked rows) in line order.

    >>> files = resolve_all([_example_file()])
    >>> ((index, raw, fmt, pairs),) = converted_batches(files, None, AdaptOptions(), keep_ties=False)
    >>> kept, rejects = split_rejects(raw, pairs)
    >>> kept.height, rejects.select(LINE, REASON).rows()
    (1, [(2, 'invalid_json'), (3, 'identical_responses')])
    """
    kept = pairs.filter(pl.col(REASON).is_null())
    marked = pairs.filter(pl.col(REASON).is_not_null()).select(raw.rejects.columns)
    return kept, pl.concat([raw.rejects, marked]).sort(LINE)


def reject_lines(raw: RawRecords, rejects: pl.DataFrame, label: str | None = None) -> list[str]:
    """The rejects file's lines of a batch's rejects, each with its record's text (JSON where it is JSON).

    >>> files = resolve_all([_example_file()])
    >>> ((index, raw, fmt, pairs),) = converted_batches(files, None, AdaptOptions(), keep_ties=False)
    >>> import json
    >>> _, rejects = split_rejects(raw, pairs)
    >>> [(json.loads(line)["reason"], json.loads(line)["record"]) for line in reject_lines(raw, rejects)]
    [('invalid_json', '{oops'), ('identical_responses', {'prompt': '3 + 3?', 'chosen': '6', 'rejected': '6'})]
    """
    texts = raw.record_text(rejects[LINE].to_list()) if rejects.height else {}
    return [
        reject_line(
            label or raw.label, line, reason, detail, _kept_text(texts[line], reason), reason not in _RAW_TEXT_REASONS
        )
        for line, reason, detail in rejects.iter_rows()
    ]


def _kept_text(text: str, reason: str) -> str:
    """A rejected record's text as the rejects file keeps it: whole, but the start of a line too long."""
    if reason == RejectReason.LINE_TOO_LONG and len(text) > REJECTED_TEXT_CHARS:
        return text[:REJECTED_TEXT_CHARS] + "…"
    return text


def _example_file() -> str:
    """A small TRL-layout file for this module's examples: a good pair, a line that is not JSON, and
    a pair whose replies are the same."""
    import tempfile

    lines = [
        '{"prompt": "2 + 2?", "chosen": "4", "rejected": "5"}',
        "{oops",
        '{"prompt": "3 + 3?", "chosen": "6", "rejected": "6"}',
    ]
    path = Path(tempfile.mkdtemp()) / "example.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)
