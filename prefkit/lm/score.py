"""``prefkit score``: a score for every completion of a generated file, by one or more scorers.

The scorers are named by specs (``verify:``, ``reward-model:``, ``implicit:``; see
:mod:`prefkit.lm.scorers`, the registry every command asks). Every score is kept by name in each
completion's ``scores``; ``rank_by`` says once, in every record, which one ranks. ``prefkit
convert`` reads the scored file as a ranked source and binarizes it with the rule every ranked
source uses. A spec may be named: ``--scorer rm=reward-model:runs/rm``. A scorer that fails on one
completion leaves it unscored (``scores.NAME`` null, ``unscored.NAME`` the reason) and the run goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prefkit.config import check_fields, option
from prefkit.errors import UsageError
from prefkit.lm.loading import TRUST_REMOTE_CODE_HELP
from prefkit.lm.scorers import (
    FAIL_ON_SCORER_ERROR_HELP,
    SCORER_HELP,
    ModelScoring,
    Scores,
    ServerScorerOptions,
    Unscored,
    http_scoring,
    parse_scorers,
    run_scorer,
)
from prefkit.lm.serving import Ledger
from prefkit.progress import ReportProgress
from prefkit.results import Result


@dataclass
class ScoreConfig(ServerScorerOptions):
    """Options of ``prefkit score``."""

    generated: str = option(help="A file written by prefkit generate.")
    output: str = option(help="Scored file (.jsonl).", flags=("-o", "--output"))
    scorers: list[str] = option(help=SCORER_HELP, flags=("--scorer",), metavar="SPEC")
    rank_by: str | None = option(None, "The score that ranks completions (default: the first scorer's).")
    batch_size: int = option(16, "Completions per forward pass (reward-model and implicit scorers).", min=1)
    max_length: int = option(
        1024, "Tokens per prompt + completion for model scorers; longer ones lose their end.", min=8
    )
    rejects: str | None = option(None, "Rejects file; default NAME.rejects.jsonl beside the output.")
    report: str | None = option(None, "Report file; default NAME.report.json beside the output.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)
    fail_on_scorer_error: bool = option(False, FAIL_ON_SCORER_ERROR_HELP)

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.scorers:
            raise UsageError("give at least one --scorer")


@dataclass
class ScorerSummary:
    """One scorer's count of scored and unscored completions, the reasons of failures and the first few."""

    name: str
    spec: str
    scored: int
    unscored: int
    mean: float | None
    reasons: dict[str, int] = field(default_factory=dict)
    """Completions the scorer failed on, by reason (``scorer_error``, ``invalid_score``); counted in ``unscored``."""
    first_failures: list[Unscored] = field(default_factory=list)
    ledger: Ledger | None = None
    """A server-backed scorer's requests, retries, cache hits and tokens."""


def scorer_summary(name: str, spec: str, scores: Scores, shown: int = 3) -> ScorerSummary:
    """Counts of one scorer's scores, and its failures by reason with the first ``shown`` of them.

    >>> from prefkit.lm.scorers import Unscored
    >>> summary = scorer_summary("ok", "verify:ok", Scores([[1.0, None], [0.0]], [Unscored("a", 1, "scorer_error", "E")]))
    >>> summary.scored, summary.unscored, summary.mean, summary.reasons
    (2, 1, 0.5, {'scorer_error': 1})
    """
    flat = [v for row in scores.values for v in row]
    given = [v for v in flat if v is not None]
    reasons: dict[str, int] = {}
    for failure in scores.failures:
        reasons[failure.reason] = reasons.get(failure.reason, 0) + 1
    mean = round(float(np.mean(given)), 4) if given else None
    summary = ScorerSummary(name, spec, len(given), len(flat) - len(given), mean, reasons, scores.failures[:shown])
    summary.ledger = scores.ledger
    return summary


@dataclass
class ScoreResult(Result):
    """What ``score`` read, scored and rejected; ``read == prompts + rejected``."""

    output: str
    read: int
    prompts: int
    rejected: int
    reasons: dict[str, int]
    completions: int
    rank_by: str
    scorers: list[ScorerSummary]
    records: list[dict] = field(default_factory=list, repr=False)


@dataclass
class GeneratedRecords:
    """The records of a generated file; every other line is a reject: ``read == len(records) + rejected``."""

    records: list[dict]
    read: int
    reasons: dict[str, int]
    reject_lines: list[str]

    @property
    def rejected(self) -> int:
        return len(self.reject_lines)


def generated_record_problem(record) -> tuple[str, str] | None:
    """Why a parsed line is not a generated record (reason, detail), or None when it is one.

    >>> generated_record_problem({"id": "a", "prompt": "2 + 2?", "completions": [{"text": "4"}]}) is None
    True
    >>> generated_record_problem({"id": "a", "prompt": "2 + 2?", "completions": [{"txt": "4"}]})
    ('missing_field', 'completion 0 has no text')
    """
    if not isinstance(record, dict):
        return "not_an_object", f"a JSON {type(record).__name__}, not an object"
    for name in ("id", "prompt", "completions"):
        if name not in record:
            return "missing_field", f"no {name!r} (is this a prefkit generate output?)"
    prompt = record["prompt"]
    if not (isinstance(prompt, str) or (isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt))):
        return "wrong_type", "prompt is neither text nor messages"
    if not isinstance(record["completions"], list):
        return "wrong_type", "completions is not a list"
    for k, completion in enumerate(record["completions"]):
        if not isinstance(completion, dict) or "text" not in completion:
            return "missing_field", f"completion {k} has no text"
        if not isinstance(completion["text"], str):
            return "wrong_type", f"completion {k}'s text is not a string"
    return None


def read_generated(path: str) -> GeneratedRecords:
    """The records of a ``prefkit generate`` output; a line that is not one is a reject with its reason.

    An unreadable file is a usage error; one bad line is one reject.
    """
    from prefkit.data.writers import reject_line

    records, reasons, reject_lines, read = [], {}, [], 0
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                read += 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    problem, is_json = ("invalid_json", str(err)), False
                else:
                    problem, is_json = generated_record_problem(record), True
                if problem is None:
                    records.append(record)
                    continue
                reasons[problem[0]] = reasons.get(problem[0], 0) + 1
                reject_lines.append(reject_line(path, number, problem[0], problem[1], line.rstrip("\r\n"), is_json))
    except OSError as err:
        raise UsageError(f"{path}: cannot read ({err.strerror})") from err
    return GeneratedRecords(records, read, reasons, reject_lines)


def score(config: ScoreConfig, progress: ReportProgress | None = None) -> ScoreResult:
    """Scores every completion of ``config.generated`` with every scorer; writes the scored file and report."""
    from prefkit.atomic_files import check_outputs, line_sink, write_json
    from prefkit.data.writers import sidecar

    output = Path(config.output)
    report = Path(config.report) if config.report else sidecar(output, "report.json")
    rejects = Path(config.rejects) if config.rejects else sidecar(output, "rejects.jsonl")
    check_outputs([("-o", output), ("--rejects", rejects), ("--report", report)], [config.generated])
    specs = parse_scorers(config.scorers)
    names = [s.name for s in specs]
    rank_by = config.rank_by or names[0]
    if rank_by not in names:
        raise UsageError(f"--rank-by {rank_by}: no scorer has that name ({', '.join(names)})")
    found = read_generated(config.generated)
    records = found.records
    http = http_scoring(config, specs, output)
    if http is not None:
        check_outputs([("--cache", Path(http.cache))], [config.generated])
    options = ModelScoring(
        config.batch_size, config.max_length, config.trust_remote_code, config.fail_on_scorer_error, http
    )
    summaries = []
    for k, spec in enumerate(specs):
        if progress:
            progress(f"scoring with {spec.name}", k, len(specs))
        scores = run_scorer(spec, records, options)
        for record, row in zip(records, scores.values, strict=True):
            for completion, value in zip(record["completions"], row, strict=True):
                completion.setdefault("scores", {})[spec.name] = value
        for failure in scores.failures:
            completion = records[failure.row]["completions"][failure.completion]
            completion.setdefault("unscored", {})[spec.name] = f"{failure.reason}: {failure.detail}"
        summaries.append(scorer_summary(spec.name, config.scorers[k], scores))
    for record in records:
        record["rank_by"] = rank_by
    with line_sink(output) as write:
        write(json.dumps(r, ensure_ascii=False) for r in records)
    with line_sink(rejects) as write:
        write(found.reject_lines)
    result = ScoreResult(
        output=str(output),
        read=found.read,
        prompts=len(records),
        rejected=found.rejected,
        reasons=found.reasons,
        completions=sum(len(r["completions"]) for r in records),
        rank_by=rank_by,
        scorers=summaries,
        records=records,
    )
    write_json(result.to_dict(), report)
    return result
