"""``prefkit score``: a score for every completion of a generated file, by one or more scorers.

A scorer is named by a spec:

- ``verify:NAME`` (``exact``, ``number``, ``sample_task``), ``verify:MODULE:FUNCTION`` or
  ``verify:PATH.py:FUNCTION``: a function ``(prompt, completion, reference) -> number | bool | None``,
  the shape of TRL's reward functions (``True`` scores 1.0; ``None`` leaves the completion unscored);
- ``reward-model:NAME|DIR``: an ``AutoModelForSequenceClassification`` reward model, batched, each
  conversation rendered with the reward model's own chat template (not the policy's);
- ``implicit:RUN[:REF]``: the DPO implicit reward ``beta * (log pi - log pi_ref)`` of a completion,
  through the scoring :mod:`prefkit.lm.evaluate` uses; ``RUN`` is an adapter (its base, adapters
  disabled, is the reference) or a model with ``REF`` given.

Every score is kept by name in each completion's ``scores``; ``rank_by`` says once, in every record,
which one ranks. ``prefkit convert`` reads the scored file as a ranked source and binarizes it with
the rule every ranked source uses. A spec may be named: ``--scorer rm=reward-model:runs/rm``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prefkit.config import check_fields, option
from prefkit.errors import DataError, UsageError
from prefkit.lm.evaluate import TRUST_REMOTE_CODE_HELP
from prefkit.lm.reward import as_messages
from prefkit.progress import ReportProgress
from prefkit.results import Result

SCORER_KINDS = ("verify", "reward-model", "implicit")


@dataclass
class ScoreConfig:
    """Options of ``prefkit score``."""

    generated: str = option(help="A file written by prefkit generate.")
    output: str = option(help="Scored file (.jsonl).", flags=("-o", "--output"))
    scorers: list[str] = option(
        help="verify:NAME|MODULE:FUNCTION|PATH.py:FUNCTION, reward-model:NAME|DIR or implicit:RUN[:REF]; "
        "NAME=SPEC names the score.",
        flags=("--scorer",),
        metavar="SPEC",
    )
    rank_by: str | None = option(None, "The score that ranks completions (default: the first scorer's).")
    batch_size: int = option(16, "Completions per forward pass (reward-model and implicit scorers).", min=1)
    max_length: int = option(
        1024, "Tokens per prompt + completion for model scorers; longer ones lose their end.", min=8
    )
    rejects: str | None = option(None, "Rejects file; default NAME.rejects.jsonl beside the output.")
    report: str | None = option(None, "Report file; default NAME.report.json beside the output.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.scorers:
            raise UsageError("give at least one --scorer")


@dataclass(frozen=True)
class ScorerSpec:
    """One parsed ``--scorer``."""

    name: str
    kind: str
    target: str
    reference: str | None = None


def parse_scorer(text: str) -> ScorerSpec:
    """A ``--scorer`` value as its parts; the name defaults to the verifier's function name, or the kind.

    >>> parse_scorer("verify:sample_task")
    ScorerSpec(name='sample_task', kind='verify', target='sample_task', reference=None)
    >>> parse_scorer("rm=reward-model:runs/rm")
    ScorerSpec(name='rm', kind='reward-model', target='runs/rm', reference=None)
    >>> parse_scorer("implicit:runs/dpo:base-model")
    ScorerSpec(name='implicit', kind='implicit', target='runs/dpo', reference='base-model')
    """
    name, sep, spec = text.partition("=")
    if not sep or ":" in name:
        name, spec = "", text
    kind, sep, target = spec.partition(":")
    if kind not in SCORER_KINDS or not sep or not target:
        raise UsageError(f"--scorer {text}: expected KIND:TARGET with KIND one of {', '.join(SCORER_KINDS)}")
    reference = None
    if kind == "implicit" and ":" in target:
        target, reference = target.split(":", 1)
    default = target.rpartition(":")[2] if kind == "verify" else kind.replace("-", "_")
    return ScorerSpec(name or default, kind, target, reference)


def parse_scorers(texts: list[str]) -> list[ScorerSpec]:
    """Every ``--scorer``, parsed; two with one name are a usage error (name them ``NAME=SPEC``)."""
    specs = [parse_scorer(text) for text in texts]
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"two scorers are both named {name}: name them, NAME=SPEC")
    return specs


@dataclass
class ScorerSummary:
    name: str
    spec: str
    scored: int
    unscored: int
    mean: float | None


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


def user_text(prompt) -> str:
    """The last user turn of a prompt: what a verifier reads as the question.

    >>> user_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2?"}])
    '2 + 2?'
    """
    return next(m["content"] for m in reversed(as_messages(prompt)) if m["role"] == "user")


def verifier_scores(function: Callable, records: list[dict]) -> list[list[float | None]]:
    """Runs a verifier over every completion; a bool becomes 1.0/0.0, None stays None."""
    out = []
    for record in records:
        question, reference = user_text(record["prompt"]), record.get("reference")
        row = []
        for completion in record["completions"]:
            value = function(question, completion["text"], reference)
            if value is not None and not isinstance(value, bool | int | float | np.number):
                raise DataError(
                    f"the verifier returned {type(value).__name__} for {record['id']}; expected a number or bool"
                )
            row.append(None if value is None else float(value))
        out.append(row)
    return out


def completion_pairs(records: list[dict]) -> list[tuple[int, int, int]]:
    """Completions two at a time per prompt ``(record, first, second)`` (second -1 for an odd one out),
    so each prompt is run once per two completions through :func:`prefkit.lm.scoring.reply_logps`.

    >>> completion_pairs([{"completions": [1, 2, 3]}, {"completions": [4]}])
    [(0, 0, 1), (0, 2, -1), (1, 0, -1)]
    """
    out = []
    for r, record in enumerate(records):
        n = len(record["completions"])
        out += [(r, i, i + 1 if i + 1 < n else -1) for i in range(0, n, 2)]
    return out


@dataclass(frozen=True)
class ModelScoring:
    """How model scorers run: batch size, length limit, remote code."""

    batch_size: int = 16
    max_length: int = 1024
    trust_remote_code: bool = False


def implicit_scores(spec: ScorerSpec, records: list[dict], config: ModelScoring) -> list[list[float | None]]:
    """``beta * (log pi(c|x) - log pi_ref(c|x))`` of each completion (beta from the run's record)."""
    from prefkit.lm.loading import load_causal_lm, load_policy
    from prefkit.lm.pair_tokens import tokenize_pairs
    from prefkit.lm.scoring import reply_logps
    from prefkit.lm.train import read_run_record

    policy, tokenizer, is_adapter = load_policy(spec.target, config.trust_remote_code)
    if spec.reference is None and not is_adapter:
        raise UsageError(f"implicit:{spec.target}: not an adapter, so give its reference: implicit:{spec.target}:REF")
    pairs = completion_pairs(records)
    reply = lambda r, i: [{"role": "assistant", "content": records[r]["completions"][i]["text"] if i >= 0 else ""}]
    tokens = tokenize_pairs(
        tokenizer,
        [as_messages(records[r]["prompt"]) for r, _, _ in pairs],
        [reply(r, a) for r, a, _ in pairs],
        [reply(r, b) for r, _, b in pairs],
    )
    tokenized = list(zip(tokens.prompt_ids, tokens.chosen_ids, tokens.rejected_ids, strict=True))
    scored = reply_logps(policy, tokenized, config.batch_size, config.max_length)
    if spec.reference is not None:
        base = reply_logps(
            load_causal_lm(spec.reference, config.trust_remote_code), tokenized, config.batch_size, config.max_length
        )
    else:
        with policy.disable_adapter():
            base = reply_logps(policy, tokenized, config.batch_size, config.max_length)
    beta = read_run_record(spec.target).get("beta", 0.1)
    out = [[None] * len(record["completions"]) for record in records]
    for k, (r, a, b) in enumerate(pairs):
        out[r][a] = float(beta * (scored.chosen[k] - base.chosen[k]))
        if b >= 0:
            out[r][b] = float(beta * (scored.rejected[k] - base.rejected[k]))
    return out


def reward_model_scores(spec: ScorerSpec, records: list[dict], config: ModelScoring) -> list[list[float | None]]:
    """The reward model's score of each (prompt, completion), longest first in batches, each
    conversation rendered with the reward model's own chat template (:mod:`prefkit.lm.reward`)."""
    from prefkit.lm.reward import conversation_ids, load_reward_model, reward_scores

    model, tokenizer = load_reward_model(spec.target, config.trust_remote_code)
    items = [(r, i) for r, record in enumerate(records) for i in range(len(record["completions"]))]
    ids = [conversation_ids(tokenizer, records[r]["prompt"], records[r]["completions"][i]["text"]) for r, i in items]
    values = reward_scores(model, tokenizer, ids, config.batch_size, config.max_length)
    out = [[None] * len(record["completions"]) for record in records]
    for k, (r, i) in enumerate(items):
        out[r][i] = float(values[k])
    return out


def run_scorer(spec: ScorerSpec, records: list[dict], config: ModelScoring) -> list[list[float | None]]:
    """Every completion's score under one scorer, in record and completion order."""
    if spec.kind == "verify":
        from prefkit.data.verifiers import load_verifier

        return verifier_scores(load_verifier(spec.target), records)
    if spec.kind == "implicit":
        return implicit_scores(spec, records, config)
    return reward_model_scores(spec, records, config)


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
    options = ModelScoring(config.batch_size, config.max_length, config.trust_remote_code)
    summaries = []
    for k, spec in enumerate(specs):
        if progress:
            progress(f"scoring with {spec.name}", k, len(specs))
        values = run_scorer(spec, records, options)
        for record, row in zip(records, values, strict=True):
            for completion, value in zip(record["completions"], row, strict=True):
                completion.setdefault("scores", {})[spec.name] = value
        flat = [v for row in values for v in row]
        given = [v for v in flat if v is not None]
        summaries.append(
            ScorerSummary(
                spec.name,
                config.scorers[k],
                len(given),
                len(flat) - len(given),
                round(float(np.mean(given)), 4) if given else None,
            )
        )
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
