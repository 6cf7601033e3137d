"""``prefkit validate``: does a file conform to the canonical schema? Every failure, not the first.

Reading problems (a line that is not JSON) and schema problems (a missing column, a wrong dtype, a
row failing a check, a repeated id) are collected into one :class:`FileValidation` per file, using
pandera's lazy validation on the same model ``convert`` writes against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import polars as pl

from prefkit.atomic_files import check_outputs, write_json
from prefkit.config import check_fields, option
from prefkit.data.adapters import BY_NAME, AdaptOptions, detect_format
from prefkit.data.adapters.base import PairingOptions, as_text_struct
from prefkit.data.convert import ConvertResult
from prefkit.data.lengths import LengthGap, gap_of_counts, word_counts
from prefkit.data.messages import MESSAGES, is_messages_dtype
from prefkit.data.pandera_schema import model_for
from prefkit.data.schema import checks_for, detect_kind, detect_style, frame_schema, optional_columns
from prefkit.data.sources import DETAIL, LINE, MAX_LINE_BYTES, REASON, iter_batches, resolve
from prefkit.errors import ConfigError, UnknownFormatError, UsageError, ValidationFailed
from prefkit.results import Result, plain

if TYPE_CHECKING:
    from prefkit.data.dedupe import Removal
    from prefkit.data.gates import DuplicateShare

EXAMPLES = 3


@dataclass(frozen=True)
class CheckExample:
    """A failing row's line (None for a failure of the whole file) and the offending value."""

    line: int | None
    value: str | None


@dataclass
class CheckFailure:
    """One failing check, with how many rows fail it and a few of them."""

    check: str
    column: str
    description: str
    rows: int
    examples: list[CheckExample] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    """Every failing line; empty for a failure of the whole file (a missing column, a wrong dtype)."""


@dataclass
class FileValidation(Result):
    """One file's schema check: its style and kind, its rows and every failing check."""

    path: str
    style: str | None
    rows: int
    failures: list[CheckFailure]
    hint: str | None = None
    """For a file that is not canonical but whose format prefkit knows: how to dry-run its conversion."""
    kind: str = "pairs"
    """``pairs`` or ``unpaired`` (records with a ``completion`` and a ``label``, as KTO trains)."""
    length_gap: LengthGap | None = None
    """A conforming pairs file: how much longer its chosen replies are, in words (a length-biased source shows)."""

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failing_rows(self) -> int:
        """Rows failing some check; a failure of the whole file counts every row."""
        if any(not f.lines for f in self.failures):
            return self.rows
        return len({line for f in self.failures for line in f.lines})

    derived_fields = ("ok", "failing_rows")


def _describe(check: str, style: str, kind: str) -> str:
    if check.startswith("dtype("):
        return f"column has the wrong dtype, expected {check.removeprefix('dtype(').rstrip(')')}"
    for row_check in checks_for(style, kind):
        if row_check.name == check:
            return f"{row_check.reason}: {row_check.description}"
    known = {
        "field_uniqueness": "ids are unique",
        "column_in_dataframe": "column is present",
        "column_in_schema": "no columns beyond the canonical ones",
        "str_length": "value is a non-empty string",
        "not_nullable": "value is not null",
        "margin_finite": "margin is a finite number when present",
    }
    return next((text for key, text in known.items() if check.startswith(key)), check)


def _shorten(text: str, limit: int = 120) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """Aligns harmless representation differences before validating.

    Message structs are reordered to ``{role, content}`` when they hold exactly those fields
    (UltraFeedback writes ``{content, role}``), score and margin columns that JSON gave as integers
    or as all-null become floats, and metadata values become strings. Anything else is left for the
    schema to judge.
    """
    fixes = []
    for name, dtype in frame.schema.items():
        if (
            name in ("prompt", "chosen", "rejected", "completion")
            and is_messages_dtype(dtype)
            and dtype != MESSAGES
            and {f.name for f in dtype.inner.fields} == {"role", "content"}
        ):
            fixes.append(pl.col(name).cast(MESSAGES))
        if name in ("score_chosen", "score_rejected", "margin") and (dtype.is_numeric() or dtype == pl.Null):
            fixes.append(pl.col(name).cast(pl.Float64))
        if name == "pair_id" and dtype == pl.Null:
            # Unpaired records that were never pairs: JSON gives an all-null column no dtype.
            fixes.append(pl.col(name).cast(pl.String))
        if name == "metadata" and isinstance(dtype, pl.Struct):
            fixes.append(as_text_struct(pl.col(name), dtype))
    if frame.schema.get("metadata") == pl.Null:
        # Every record's metadata is null: the same as leaving the optional column out.
        frame = frame.drop("metadata")
    return frame.with_columns(fixes) if fixes else frame


def validate_file(path: str | Path, max_line_bytes: int = MAX_LINE_BYTES) -> FileValidation:
    """Validates one canonical file (JSON Lines or Parquet), streaming it in batches: memory holds one
    batch and an id and line per row (for id uniqueness across batches), whatever the file's size."""
    check = FileCheck(path, max_line_bytes)
    for _ in check.batches():
        pass
    return check.result()


def load_canonical(path: str | Path, lines: bool = False, kind: str | None = "pairs") -> pl.DataFrame:
    """A canonical file's rows, read once and validated; raises :class:`ValidationFailed` if it does
    not conform, naming the failing checks. What ``train``, ``eval``, ``lint`` and ``audit`` read their
    data with (they hold it anyway). ``lines`` adds each row's line number in the file as ``__line``;
    ``kind`` is the kind the caller reads (``pairs``, ``unpaired``, None: either): a file of the other
    kind is a :class:`UsageError` naming it."""
    check = FileCheck(path)
    frames = [frame.with_columns(line_numbers) if lines else frame for frame, line_numbers in check.batches()]
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    check.raise_unless(kind, frame.height)
    return frame


def canonical_batches(path: str | Path, lines: bool = False, kind: str | None = "pairs") -> Iterator[pl.DataFrame]:
    """A canonical file's rows a batch at a time, for callers that need not hold the file (``lint``,
    ``validate --model``): the whole file is checked first, in a pass of its own, so a file that
    does not conform raises here (as :func:`load_canonical`) before a row is handed on; the rows
    are then read again.

    >>> import tempfile, pathlib
    >>> from prefkit.data.convert import ConvertConfig, convert
    >>> from prefkit.data.sample_data import write_sample
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = convert(ConvertConfig([str(write_sample(folder)["train"])], output=str(folder / "train.jsonl")))
    >>> [frame.height for frame in canonical_batches(folder / "train.jsonl", lines=True)]
    [480]
    """
    check = FileCheck(path)
    check.raise_unless(kind, sum(frame.height for frame, _ in check.batches()))
    return (frame.with_columns(numbers) if lines else frame for frame, numbers in FileCheck(path).batches())


class FileCheck:
    """One file's schema check as its batches stream past: each batch is validated with pandera's lazy
    validation on its own, the failures of all batches merged per check (rows added, the first
    examples kept, every line listed), ids checked for uniqueness across batches, and the length gap
    counted per batch. A file of one batch (up to 16 MiB of JSON Lines, 50,000 Parquet rows) gives
    what validating it whole gives."""

    def __init__(self, path: str | Path, max_line_bytes: int = MAX_LINE_BYTES):
        (self.source,) = resolve(str(path))
        self.path, self.max_line_bytes = path, max_line_bytes
        self.rows, self.batch_count = 0, 0
        self.style: str | None = None
        self.kind = "pairs"
        self.hint: str | None = None
        self.read_failures: dict[tuple[str, str], CheckFailure] = {}
        self.schema_failures: dict[tuple[str, str], CheckFailure] = {}
        self.ids: list[pl.DataFrame] = []
        self.columns_seen = False
        self.replies: list[tuple[np.ndarray, np.ndarray]] = []
        self.validation: FileValidation | None = None

    def batches(self) -> Iterator[tuple[pl.DataFrame, pl.Series]]:
        """Each batch's rows, aligned as :func:`prepare` aligns them, and their line numbers."""
        import pandera.errors

        for raw in iter_batches(self.source, max_line_bytes=self.max_line_bytes):
            self.rows += raw.read
            self.batch_count += 1
            for (reason,), group in raw.rejects.group_by(REASON, maintain_order=True):
                head = group.head(EXAMPLES).select(LINE, DETAIL).iter_rows()
                described = f"{reason}: the line is not a JSON object"
                found = CheckFailure(
                    reason, "<line>", described, group.height, [CheckExample(*e) for e in head], group[LINE].to_list()
                )
                _merge(self.read_failures, found)
            lines = raw.frame[LINE]
            frame = prepare(raw.frame.drop(LINE))
            if self.batch_count == 1 or (frame.width and not self.columns_seen):
                # The file's style and kind are its first batch with columns (a batch of only bad lines has none).
                self.style, self.kind = detect_style(frame.schema), detect_kind(frame.schema)
                self.columns_seen = bool(frame.width)
            if frame.height or frame.width:
                try:
                    model_for(self.style, self.kind).validate(frame, lazy=True)
                except pandera.errors.SchemaErrors as err:
                    for found in _summarize(err.failure_cases, lines, self.style, self.kind):
                        _merge(self.schema_failures, found)
                    self.hint = self.hint or _format_hint(frame, self.path)
            if "id" in frame.columns:
                self.ids.append(pl.DataFrame({"id": frame["id"].cast(pl.String, strict=False), LINE: lines}))
            if self.kind == "pairs" and frame.height and not self.failing:
                counts = word_counts(frame)
                self.replies.append((np.asarray(counts["chosen"]), np.asarray(counts["rejected"])))
            yield frame, lines

    @property
    def failing(self) -> bool:
        return bool(self.read_failures or self.schema_failures)

    def result(self) -> FileValidation:
        if self.validation is None:
            if self.batch_count > 1:
                self._unique_ids()
            failures = [*self.read_failures.values(), *self.schema_failures.values()]
            self.validation = FileValidation(
                path=str(self.path), style=self.style, rows=self.rows, failures=failures, hint=self.hint, kind=self.kind
            )
            if self.validation.ok and self.kind == "pairs" and self.replies:
                chosen, rejected = zip(*self.replies, strict=True)
                self.validation.length_gap = gap_of_counts(np.concatenate(chosen), np.concatenate(rejected))
            self.ids, self.replies = [], []
        return self.validation

    def raise_unless(self, kind: str | None, rows: int) -> None:
        """Raises unless the file conforms and holds ``kind`` (None: either)."""
        result = self.result()
        if kind is not None and result.kind != kind and rows:
            held = "unpaired records (prompt, completion, label)" if result.kind == "unpaired" else "pairs"
            raise UsageError(f"{self.path} holds {held}; this step reads {kind}")
        if not result.ok:
            failing = "; ".join(f"{f.check} ({f.rows} rows)" for f in result.failures[:5])
            raise ValidationFailed(f"{self.path}: not canonical: {failing}; run prefkit validate {self.path}", result)

    def _unique_ids(self) -> None:
        """Ids repeated across batches (pandera saw each batch alone): every copy's line, as pandera
        lists them within one batch; the check keeps its place, or comes first if no batch alone failed it."""
        ids = pl.concat(self.ids) if self.ids else pl.DataFrame(schema={"id": pl.String, LINE: pl.Int64})
        repeated = ids.filter(pl.col("id").is_duplicated() & pl.col("id").is_not_null())
        key = ("id", "field_uniqueness")
        if not repeated.height:
            return
        found = CheckFailure(
            check="field_uniqueness",
            column="id",
            description=_describe("field_uniqueness", self.style, self.kind),
            rows=repeated.height,
            examples=[CheckExample(line, _shorten(value)) for value, line in repeated.head(EXAMPLES).iter_rows()],
            lines=repeated[LINE].to_list(),
        )
        if key in self.schema_failures:
            self.schema_failures[key] = found
        else:
            self.schema_failures = {key: found, **self.schema_failures}


def _merge(failures: dict[tuple[str, str], CheckFailure], found: CheckFailure) -> None:
    """Adds one batch's failure of a check to the file's: rows and lines added, examples up to :data:`EXAMPLES`."""
    key = (found.column, found.check)
    if key not in failures:
        failures[key] = found
        return
    kept = failures[key]
    kept.lines += found.lines
    kept.rows = len(kept.lines) if kept.lines else kept.rows
    kept.examples = (kept.examples + found.examples)[:EXAMPLES]


def _format_hint(frame: pl.DataFrame, path: str | Path) -> str | None:
    """A file in a raw layout prefkit reads: say how to see what converting it would reject."""
    try:
        fmt = detect_format(frame, str(path))
    except UnknownFormatError:
        return None
    if fmt.name == "trl":
        return None
    return f"looks like {fmt.name}: prefkit validate --format {fmt.name} {path} shows what convert would reject"


def _summarize(cases: pl.DataFrame, lines: pl.Series, style: str, kind: str) -> list[CheckFailure]:
    out = []
    row_checks = {c.name for c in checks_for(style, kind)}
    for (column, check), group in cases.group_by("column", "check", maintain_order=True):
        indexed = group.filter(pl.col("index").is_not_null()).unique("index", maintain_order=True)
        if check in row_checks and indexed.is_empty():
            continue  # the check could not run (a column is missing or mistyped), reported above
        examples = [
            CheckExample(int(lines[int(i)]), _shorten(str(value)))
            for i, value in indexed.head(EXAMPLES).select("index", "failure_case").iter_rows()
        ]
        if not examples:
            examples = [CheckExample(None, _shorten(str(v))) for v in group["failure_case"].head(EXAMPLES)]
        known = column in frame_schema(style, kind) or column in optional_columns(kind)
        column_name = column if known else "<row>"
        out.append(
            CheckFailure(
                check=check,
                column=column_name,
                description=_describe(check, style, kind),
                rows=max(indexed.height, 1),
                examples=examples,
                lines=lines.gather(indexed["index"].cast(pl.Int64)).to_list() if indexed.height else [],
            )
        )
    return out


def validate_files(paths: list[str], max_line_bytes: int = MAX_LINE_BYTES) -> list[FileValidation]:
    return [validate_file(p, max_line_bytes) for p in paths]


def parse_fail_on(value: str) -> float | None:
    """``any`` gives 0.0 (any failing record fails), ``never`` gives None, ``"0.05"`` gives 0.05.

    >>> parse_fail_on("any"), parse_fail_on("never"), parse_fail_on("0.05")
    (0.0, None, 0.05)
    """
    if value in ("any", "never"):
        return 0.0 if value == "any" else None
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0 <= share < 1:
        raise ConfigError(f"fail_on: expected any, never or a share in [0, 1), got '{value}'")
    return share


@dataclass
class ValidateConfig(PairingOptions):
    """Options of ``prefkit validate``: the schema check or a dry-run convert, and the CI gates."""

    files: list[str] = option(help="Files to check: canonical ones, or raw ones with --format.")
    format: str | None = option(
        None,
        "Dry-run convert from this raw format (auto: detect it): nothing is written; every record that would "
        "be rejected is listed with its reason. Without it, files must be canonical.",
        choices=("auto", *sorted(BY_NAME)),
    )
    fields: list[str] = option(
        [], "With --format custom: mapping KEY=PATH, as convert's --field.", flags=("--field",), metavar="KEY=PATH"
    )
    keep_ties: bool = option(False, "With --format: keep pairs whose scores are equal.")
    no_overlap: list[str] = option(
        [],
        "Evaluation file (repeatable): fail when a prompt here matches one of its prompts, exactly or near.",
        metavar="EVAL_FILE",
    )
    overlap_threshold: float = option(
        0.8, "Jaccard similarity at which --no-overlap counts a near match.", min=0, min_open=True, max=1
    )
    max_duplicate_share: float | None = option(
        None, "Fail when more than this share of pairs are exact duplicates of an earlier pair.", min=0, max=1
    )
    fail_on: str = option(
        "any",
        "any: fail on any failing record; never: report only; a number in [0, 1): fail when more than "
        "that share of records fails.",
    )
    report: str | None = option(None, "Write the report as JSON to this path.")
    max_line_bytes: int = option(
        MAX_LINE_BYTES, "Longest line read as a record; a longer one fails as line_too_long, unread.", min=1
    )

    def __post_init__(self) -> None:
        check_fields(self)
        parse_fail_on(self.fail_on)


class TokenCheck(Protocol):
    """What a token-level check of the files returns (:class:`prefkit.lm.lint.LintResult` is one).

    The data side never imports the model side; ``prefkit.validate(..., model=M)`` passes the check in.
    """

    errors: int
    """Pairs with a token error."""
    error_records: list[dict]
    """Each of them: ``{source, line, id, reason, detail}``."""

    def to_dict(self) -> dict: ...


@dataclass
class ValidationReport(Result):
    """Everything ``prefkit validate`` found, computed once: the report file, ``--json``, the tables,
    the exit code and the GitHub output all read this. ``ok`` says whether the run passes under
    ``fail_on``, the gates and the token check."""

    records: int
    failing: int
    """Records failing the schema (or that a dry-run convert would reject), plus pairs with a token error."""
    files: list[FileValidation] = field(default_factory=list)
    conversion: ConvertResult | None = None
    overlap: list[Removal] | None = None
    duplicates: DuplicateShare | None = None
    tokens: TokenCheck | None = None
    """The token-level audit (``model`` given and every file conforms), else None."""
    gates_failed: list[str] = field(default_factory=list)
    ok: bool = True

    def to_dict(self) -> dict:
        out = plain(self)
        out["files"] = [f.to_dict() for f in self.files]
        out["tokens"] = self.tokens.to_dict() if self.tokens is not None else None
        return out


def validate(config: ValidateConfig, check_tokens: Callable[[list[str]], TokenCheck] | None = None) -> ValidationReport:
    """Runs the schema check (or, with ``format``, a dry-run convert), the configured gates and, when
    ``check_tokens`` is given and every file conforms, the token check; writes the report when asked.

    >>> import tempfile, json, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> row = {"id": "a", "source": "x", "prompt": [{"role": "user", "content": "2+2?"}],
    ...        "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}],
    ...        "score_chosen": None, "score_rejected": None}
    >>> _ = (folder / "pairs.jsonl").write_text(json.dumps(row) + "\\n" + "{not json\\n")
    >>> report = validate(ValidateConfig(files=[str(folder / "pairs.jsonl")]))
    >>> report.ok, report.records, report.failing, report.files[0].failures[0].check
    (False, 2, 1, 'invalid_json')
    """
    check_outputs([("--report", config.report)], [*config.files, *config.no_overlap])
    if config.format:
        from prefkit.data.convert import ConvertConfig, convert

        convert_config = ConvertConfig(
            sources=config.files,
            format=None if config.format == "auto" else config.format,
            fields=config.fields,
            keep_ties=config.keep_ties,
            max_line_bytes=config.max_line_bytes,
            **config.pairing(),
        )
        conversion = convert(convert_config, dry_run=True)
        report = ValidationReport(records=conversion.read, failing=conversion.rejected, conversion=conversion)
        options = convert_config.adapt_options()
    else:
        files = validate_files(config.files, config.max_line_bytes)
        report = ValidationReport(
            records=sum(f.rows for f in files), failing=sum(f.failing_rows for f in files), files=files
        )
        options = AdaptOptions()
    if config.no_overlap or config.max_duplicate_share is not None:
        from prefkit.data.gates import duplicate_share, prompt_overlap, read_pool  # MinHash: only when asked

        pool, labels = read_pool(config.files, options)
        if config.no_overlap:
            report.overlap = prompt_overlap(pool, labels, config.no_overlap, config.overlap_threshold)
            if report.overlap:
                report.gates_failed.append("no_overlap")
        if config.max_duplicate_share is not None:
            report.duplicates = duplicate_share(pool, labels, max_share=config.max_duplicate_share)
            if report.duplicates.failed:
                report.gates_failed.append("max_duplicate_share")
    if check_tokens is not None and report.files and all(f.ok for f in report.files):
        report.tokens = check_tokens(list(config.files))
        report.failing += report.tokens.errors
        if report.tokens.errors:
            report.gates_failed.append("tokens")
    threshold = parse_fail_on(config.fail_on)
    if threshold is not None:
        share = report.failing / report.records if report.records else 0.0
        failed = report.failing > 0 if threshold == 0 else share > threshold
        # A file with no records at all that still fails (not JSON at all, no columns) fails too.
        failed = failed or any(not f.ok and not f.rows for f in report.files)
        report.ok = not failed and not report.gates_failed
    if config.report:
        write_json(report.to_dict(), Path(config.report))
    return report
