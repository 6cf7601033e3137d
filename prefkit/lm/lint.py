"""``prefkit lint``: the token audit (:mod:`prefkit.lm.token_audit`) of canonical files under one
model's tokenizer and chat template, with its report and rejects; exit 1 when any pair has a fault.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from prefkit.config import check_fields, option
from prefkit.data.columns import FILE
from prefkit.lm.loading import DEFAULT_MODEL
from prefkit.lm.token_audit import LINT_BATCH, LONG_PROMPTS, TRUNCATION_MODES, TokenAudit, audit_frames
from prefkit.results import Result, TokenReject


@dataclass
class LintConfig:
    """Options of ``prefkit lint``; ``train`` audits with its recipe's values."""

    files: list[str] = option(help="Canonical files to audit.")
    model: str = option(DEFAULT_MODEL, "Tokenizer and chat template: a bundled name, a model folder or a hub id.")
    max_length: int | None = option(1024, "Tokens per sequence, as training's max_length.", min=2)
    truncation_mode: str = option("keep_start", "How training truncates a long sequence.", choices=TRUNCATION_MODES)
    long_prompts: str = option(
        "drop",
        "drop: leave pairs whose prompt fills max_length out, as TRL does; trim_turns: remove the earliest "
        "whole turns of a prompt that does not fit (keeping a system message and the last user turn).",
        choices=LONG_PROMPTS,
    )
    report: str | None = option(None, "Write the report as JSON to this path.")
    rejects: str | None = option(None, "Write each pair with an error as JSON Lines to this path.")
    trust_remote_code: bool = option(False, "Allow tokenizer code from the hub (off unless you ask).")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class LintResult(Result):
    """The token audit of some files under one model's tokenizer and chat template."""

    audit: TokenAudit
    files: list[str]
    config: LintConfig

    @property
    def errors(self) -> int:
        """Pairs with a token error (``prefkit lint`` exits 1 when there is any)."""
        return self.audit.errors

    @property
    def error_records(self) -> list[TokenReject]:
        return self.audit.error_records

    def to_dict(self) -> dict:
        settings = {k: v for k, v in dataclasses.asdict(self.config).items() if k not in ("files", "report", "rejects")}
        return self.audit.to_dict() | {"files": self.files, "config": settings}


def lint(config: LintConfig) -> LintResult:
    """Audits canonical files under one tokenizer; writes the report and the rejects when asked.

    >>> import tempfile, pathlib
    >>> from prefkit.data.sample_data import write_sample
    >>> from prefkit.data.convert import ConvertConfig, convert
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pairs = convert(ConvertConfig([str(write_sample(folder)["train"])], output=str(folder / "train.jsonl")))
    >>> result = lint(LintConfig([str(folder / "train.jsonl")], max_length=64))
    >>> result.audit.pairs == pairs.written, result.audit.pairs == result.audit.ok + result.audit.errors
    (True, True)
    >>> result.audit.lengths.prompt.max < 64, result.audit.long_prompts.choice
    (True, 'drop')
    """
    import polars as pl

    from prefkit.atomic_files import check_outputs, line_sink, write_json
    from prefkit.data.validate import canonical_batches
    from prefkit.lm.loading import load_tokenizer

    check_outputs([("--report", config.report), ("--rejects", config.rejects)], config.files)
    # Every file is checked before the tokenizer loads; the rows then stream past a batch at a time.
    batches = [canonical_batches(path, lines=True) for path in config.files]
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    frames = (
        frame.with_columns(pl.lit(str(path)).alias(FILE))
        for path, file_batches in zip(config.files, batches, strict=True)
        for frame in file_batches
    )
    # In slices whose tokens are dropped once checked: memory holds one batch and per-pair lengths,
    # never every pair's ids (training, which needs them, audits with audit_columns).
    settings = (config.max_length, config.truncation_mode, config.long_prompts)
    result = audit_frames(tokenizer, frames, *settings, batch=LINT_BATCH)
    out = LintResult(
        audit=result,
        files=list(config.files),
        config=config,
    )
    if config.report:
        write_json(out.to_dict(), Path(config.report))
    if config.rejects:
        with line_sink(Path(config.rejects)) as write:
            write(json.dumps(r.to_dict(), ensure_ascii=False) for r in result.error_records)
    return out
