"""``prefkit validate``: does a file conform to the canonical schema? Every failure, not the first.

Reading problems (a line that is not JSON) and schema problems (a missing column, a wrong dtype, a
row failing a check, a repeated id) are collected into one :class:`FileValidation` per file, using
pandera's lazy validation on the same model ``convert`` writes against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from prefkit.data.messages import MESSAGES, is_messages_dtype
from prefkit.data.pandera_schema import model_for
from prefkit.data.schema import checks_for, detect_style, frame_schema
from prefkit.data.sources import DETAIL, LINE, REASON, read, resolve
from prefkit.errors import ValidationFailed

EXAMPLES = 3


@dataclass
class CheckFailure:
    """One failing check, with how many rows fail it and a few of them."""

    check: str
    column: str
    description: str
    rows: int
    examples: list[dict] = field(default_factory=list)  # {"line": n, "value": "..."}


@dataclass
class FileValidation:
    path: str
    style: str | None
    rows: int
    failures: list[CheckFailure]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def _describe(check: str, style: str) -> str:
    if check.startswith("dtype("):
        return f"column has the wrong dtype, expected {check.removeprefix('dtype(').rstrip(')')}"
    for row_check in checks_for(style):
        if row_check.name == check:
            return f"{row_check.reason}: {row_check.description}"
    known = {
        "field_uniqueness": "ids are unique",
        "column_in_dataframe": "column is present",
        "column_in_schema": "no columns beyond the canonical ones",
        "str_length": "value is a non-empty string",
        "not_nullable": "value is not null",
    }
    return next((text for key, text in known.items() if check.startswith(key)), check)


def _shorten(text: str, limit: int = 120) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """Aligns harmless representation differences before validating.

    Message structs are reordered to ``{role, content}`` when they hold exactly those fields
    (UltraFeedback writes ``{content, role}``), and score columns that JSON gave as integers or as
    all-null become floats. Anything else is left for the schema to judge.
    """
    fixes = []
    for name, dtype in frame.schema.items():
        if (
            name in ("prompt", "chosen", "rejected")
            and is_messages_dtype(dtype)
            and dtype != MESSAGES
            and {f.name for f in dtype.inner.fields} == {"role", "content"}
        ):
            fixes.append(pl.col(name).cast(MESSAGES))
        if name in ("score_chosen", "score_rejected") and (dtype.is_numeric() or dtype == pl.Null):
            fixes.append(pl.col(name).cast(pl.Float64))
    return frame.with_columns(fixes) if fixes else frame


def validate_file(path: str | Path) -> FileValidation:
    """Validates one canonical file (JSON Lines or Parquet)."""
    return _read_and_validate(path)[0]


def load_canonical(path: str | Path) -> pl.DataFrame:
    """A canonical file's rows, read once and validated; raises :class:`ValidationFailed` if it does
    not conform, naming the failing checks. What ``train``, ``eval`` and ``card`` read their data with."""
    result, frame = _read_and_validate(path)
    if not result.ok:
        failing = "; ".join(f"{f.check} ({f.rows} rows)" for f in result.failures[:5])
        raise ValidationFailed(f"{path}: not canonical: {failing}; run prefkit validate {path}", result)
    return frame


def _read_and_validate(path: str | Path) -> tuple[FileValidation, pl.DataFrame]:
    import pandera.errors

    (source,) = resolve(str(path))
    raw = read(source)
    failures = [
        CheckFailure(
            check=reason,
            column="<line>",
            description=f"{reason}: the line is not a JSON object",
            rows=group.height,
            examples=[
                {"line": ln, "value": detail} for ln, detail in group.head(EXAMPLES).select(LINE, DETAIL).iter_rows()
            ],
        )
        for (reason,), group in raw.rejects.group_by(REASON, maintain_order=True)
    ]
    lines = raw.frame[LINE]
    frame = prepare(raw.frame.drop(LINE))
    style = detect_style(frame.schema)
    if frame.height or frame.width:
        try:
            model_for(style).validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as err:
            failures.extend(_summarize(err.failure_cases, lines, style))
    return FileValidation(path=str(path), style=style, rows=raw.read, failures=failures), frame


def _summarize(cases: pl.DataFrame, lines: pl.Series, style: str) -> list[CheckFailure]:
    out = []
    row_checks = {c.name for c in checks_for(style)}
    for (column, check), group in cases.group_by("column", "check", maintain_order=True):
        indexed = group.filter(pl.col("index").is_not_null()).unique("index", maintain_order=True)
        if check in row_checks and indexed.is_empty():
            continue  # the check could not run (a column is missing or mistyped), reported above
        examples = [
            {"line": int(lines[int(i)]), "value": _shorten(str(value))}
            for i, value in indexed.head(EXAMPLES).select("index", "failure_case").iter_rows()
        ]
        if not examples:
            examples = [{"line": None, "value": _shorten(str(v))} for v in group["failure_case"].head(EXAMPLES)]
        column_name = "<row>" if column not in frame_schema(style) else column
        out.append(
            CheckFailure(
                check=check,
                column=column_name,
                description=_describe(check, style),
                rows=max(indexed.height, 1),
                examples=examples,
            )
        )
    return out


def validate_files(paths: list[str]) -> list[FileValidation]:
    return [validate_file(p) for p in paths]
