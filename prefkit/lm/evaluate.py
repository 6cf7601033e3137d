"""Preference scores that measure something: log-probabilities of the replies given the prompt.

For each pair, the sum of log-probabilities of the reply tokens given the prompt, with the prompt
tokenized exactly as TRL's ``DPOTrainer`` (1.x) tokenizes it for training: the chat template over
the prompt with the generation prompt, and over prompt + reply, the reply starting where the two
token sequences diverge; plain text gets the EOS token appended to the reply. From the policy's and
the reference's log-probs:

- implicit-reward accuracy: share of pairs with ``beta * ((pc - pr) - (rc - rr)) > 0``, the DPO
  reward of chosen above rejected;
- mean reward margin: the mean of that quantity;
- log-prob accuracy: share with ``pc > pr``, and the same per reply token (length-normalized).

Each comes with a bootstrap 95% interval over pairs. (The "mean of log_softmax over the whole
vocabulary" that some tutorials report as a preference score does not depend on which reply is
preferred, and is not computed here.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prefkit.config import DEFAULT_SEED, check_fields, option
from prefkit.errors import ConfigError, UsageError
from prefkit.lm.answer_eval import AnswerMetrics
from prefkit.lm.estimates import Estimate, bootstrap, wins
from prefkit.lm.loading import MODEL_HELP, TRUST_REMOTE_CODE_HELP
from prefkit.lm.logprobs import PairLogps, reply_logps
from prefkit.lm.reward_bench_sections import is_reward_bench, section_scores, subset_accuracy
from prefkit.lm.scorers import FAIL_ON_SCORER_ERROR_HELP, SCORER_HELP, ServerScorerOptions
from prefkit.progress import ReportProgress
from prefkit.results import Reject, Result, plain


@dataclass
class PreferenceMetrics:
    pairs: int
    logprob_accuracy: Estimate | None = None
    logprob_accuracy_per_token: Estimate | None = None
    pairwise_accuracy: Estimate | None = None
    """A reward model's: its score of the chosen reply above the rejected one's (ties count half)."""
    implicit_reward_accuracy: Estimate | None = None
    reward_margin: Estimate | None = None
    beta: float | None = None
    # The same two accuracies under the reference: the model before training, for an adapter.
    reference_logprob_accuracy: Estimate | None = None
    reference_logprob_accuracy_per_token: Estimate | None = None
    ties: int = 0
    """Pairs whose implicit reward margin is exactly 0 (or, without a reference, equal log-probs):
    each counts half in the accuracies, neither right nor wrong."""
    truncated: int = 0
    """Pairs longer than ``max_length``: their replies lose their end before scoring."""
    unscored: list[Reject] = field(default_factory=list)
    """Pairs that could not be scored (``{id, reason, detail}``): nothing of a reply fits."""
    notes: list[str] = field(default_factory=list)


def _prefers_chosen_per_token(logps: PairLogps) -> np.ndarray:
    return wins(
        logps.chosen / np.maximum(logps.chosen_tokens, 1), logps.rejected / np.maximum(logps.rejected_tokens, 1)
    )


def preference_metrics(
    policy: PairLogps, reference: PairLogps | None, beta: float = 0.1, seed: int = 0
) -> PreferenceMetrics:
    """All the scores above from per-pair log-probs."""
    metrics = PreferenceMetrics(
        pairs=len(policy.chosen),
        logprob_accuracy=bootstrap(wins(policy.chosen, policy.rejected), seed=seed),
        logprob_accuracy_per_token=bootstrap(_prefers_chosen_per_token(policy), seed=seed),
    )
    if reference is not None:
        metrics.reference_logprob_accuracy = bootstrap(wins(reference.chosen, reference.rejected), seed=seed)
        metrics.reference_logprob_accuracy_per_token = bootstrap(_prefers_chosen_per_token(reference), seed=seed)
        rewards = beta * ((policy.chosen - policy.rejected) - (reference.chosen - reference.rejected))
        metrics.implicit_reward_accuracy = bootstrap(wins(rewards, np.zeros_like(rewards)), seed=seed)
        metrics.reward_margin = bootstrap(rewards, seed=seed)
        metrics.beta = beta
        metrics.ties = int((rewards == 0).sum())
    else:
        metrics.ties = int((policy.chosen == policy.rejected).sum())
        metrics.notes.append("no reference model: implicit rewards need one (--ref, or an adapter's base)")
    return metrics


@dataclass
class EvalConfig(ServerScorerOptions):
    """Options of ``prefkit eval``."""

    model: str = option(help=MODEL_HELP)
    data: str = option(help="Canonical preference file (prefkit convert output, or a mix's test.jsonl).")
    ref: str | None = option(None, "Reference model; default for an adapter: its base with adapters disabled.")
    beta: float | None = option(
        None,
        "DPO beta of the implicit rewards; default: the beta a prefkit run trained with, else 0.1.",
        min=0,
        min_open=True,
    )
    batch_size: int = option(8, "Pairs per forward pass.", min=1)
    max_length: int = option(1024, "Tokens per sequence (prompt + reply); longer ones lose their end.", min=8)
    seed: int = option(DEFAULT_SEED, "Seed of the bootstrap.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)
    by: str | None = option(
        None, "Also report every metric per group: source, or a metadata field such as metadata.subset."
    )
    report: str | None = option(None, "Write the metrics as JSON to this path.")
    per_pair: str | None = option(None, "Write every pair's four log-probs as JSON Lines to this path.")
    generate: bool = option(
        False, "Also answer the held-out prompts with the model before and after, and score the answers (--scorer)."
    )
    scorers: list[str] = option(
        [],
        f"With --generate: {SCORER_HELP}",
        flags=("--scorer",),
        metavar="SPEC",
    )
    n: int = option(1, "With --generate: answers per prompt.", min=1)
    temperature: float = option(0.0, "With --generate: sampling temperature; 0 is greedy.", min=0)
    max_new_tokens: int = option(128, "With --generate: longest answer, in tokens.", min=1)
    answers: str | None = option(
        None,
        "With --generate: write every answer scored (before and after, each scorer's score) to this path; "
        "default with --report: NAME.answers.jsonl beside it.",
    )
    fail_on_scorer_error: bool = option(False, FAIL_ON_SCORER_ERROR_HELP)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.generate and not self.scorers:
            raise ConfigError("--generate needs a --scorer to judge the answers (e.g. --scorer verify:number)")
        if self.answers and not self.generate:
            raise ConfigError("--answers writes generated answers: add --generate")
        if self.scorers and not self.generate:
            raise ConfigError("--scorer scores generated answers: add --generate")
        if self.n > 1 and self.temperature == 0:
            raise ConfigError(f"n={self.n} with temperature 0 gives identical greedy answers; set a temperature")
        if self.by is not None and self.by != "source" and not self.by.startswith("metadata."):
            raise ConfigError(f"by: expected source or metadata.FIELD, got '{self.by}'")


@dataclass
class GroupMetrics:
    group: str
    metrics: PreferenceMetrics


@dataclass
class RewardBenchScores:
    """RewardBench's per-subset accuracies and section scores (Chat, Chat Hard, Safety, Reasoning)."""

    subsets: dict[str, float]
    sections: dict[str, float]
    mean_of_sections: float | None
    reference_free: bool
    """Scored by the policy's log-probs alone (no reference model), RewardBench's reference-free mode."""


@dataclass
class EvalResult(Result):
    """``prefkit eval``'s result: the metrics (and per group with ``by``), and every scored pair's log-probs."""

    model: str
    data: str
    reference_kind: str
    """What the reference is: ``none``, a model name, or ``base model (adapters disabled)``."""
    metrics: PreferenceMetrics
    policy: PairLogps = field(repr=False)
    reference: PairLogps | None = field(repr=False)
    ids: list[str] = field(repr=False)
    """The scored pairs' ids, in the order of ``policy`` and ``reference``."""
    by: str | None = None
    groups: list[GroupMetrics] = field(default_factory=list)
    """With ``by``: the metrics of each group, in group order."""
    reward_bench: RewardBenchScores | None = None
    """With ``by=metadata.subset`` on RewardBench data."""
    answers: AnswerMetrics | None = None
    """With ``generate``: the model's own answers, scored before and after."""

    def to_dict(self) -> dict:
        """The report: the overall metrics at the top level, then the model, data and reference, and the groups."""
        out = plain(self.metrics) | {"model": self.model, "data": self.data, "reference": self.reference_kind}
        if self.by:
            out |= {"by": self.by, "groups": [{"group": g.group} | plain(g.metrics) for g in self.groups]}
            out["reward_bench"] = plain(self.reward_bench)
        if self.answers is not None:
            out["answers"] = self.answers.to_dict()
        return out


def group_labels(frame, by: str):
    """Each row's group under ``by`` (``source`` or ``metadata.FIELD``) as strings; a missing value
    is the group ``(none)``."""
    import polars as pl

    if by == "source":
        expr = pl.col("source")
    else:
        name = by.removeprefix("metadata.")
        dtype = frame.schema.get("metadata")
        fields = [f.name for f in dtype.fields] if isinstance(dtype, pl.Struct) else []
        if name not in fields:
            have = ", ".join(f"metadata.{f}" for f in fields) or "no metadata"
            raise ConfigError(f"--by {by}: the data has no such field (it has: source, {have})")
        expr = pl.col("metadata").struct.field(name)
    return frame.select(expr.cast(pl.String).fill_null("(none)")).to_series().to_numpy()


def grouped_metrics(
    policy: PairLogps, reference: PairLogps | None, labels: np.ndarray, beta: float, seed: int
) -> list[GroupMetrics]:
    """:func:`preference_metrics` over each group's pairs."""
    out = []
    for group in sorted(set(labels.tolist())):
        mask = labels == group
        out.append(GroupMetrics(group, preference_metrics(_subset(policy, mask), _subset(reference, mask), beta, seed)))
    return out


def _subset(logps: PairLogps | None, mask: np.ndarray) -> PairLogps | None:
    if logps is None:
        return None
    return PairLogps(logps.chosen[mask], logps.rejected[mask], logps.chosen_tokens[mask], logps.rejected_tokens[mask])


def evaluate(config: EvalConfig, progress: ReportProgress | None = None) -> EvalResult:
    """Scores every pair of ``config.data`` under the policy and the reference; with
    ``config.generate``, also the model's own answers to its prompts, before and after
    (``progress`` hears the answering)."""
    from prefkit.atomic_files import check_outputs
    from prefkit.data.columns import LINE
    from prefkit.data.validate import load_canonical
    from prefkit.lm.loading import load_causal_lm, load_policy
    from prefkit.lm.reward import is_reward_model
    from prefkit.lm.token_audit import NO_SIGNAL, TokenReason, audit_frame
    from prefkit.lm.train import read_run_record

    check_outputs(
        [("--report", config.report), ("--per-pair", config.per_pair), ("--answers", answers_path(config))],
        [config.data],
    )
    frame = load_canonical(config.data, lines=True)
    # Read the groups before any model loads, so a mistyped --by fails at once.
    labels = group_labels(frame, config.by) if config.by else None
    labels_all = labels
    if is_reward_model(config.model):
        return evaluate_reward_model(config, frame, labels)
    policy, tokenizer, is_adapter = load_policy(config.model, config.trust_remote_code)
    # Eval truncates as training does by default (keep_start); a pair with no reply token left
    # cannot be scored, and one whose replies become identical scores as a tie.
    checked = audit_frame(tokenizer, frame, config.max_length, "keep_start", "drop")
    unscorable = NO_SIGNAL - {TokenReason.IDENTICAL_AFTER_TRUNCATION}
    skip = {r.line: r for r in checked.error_records if r.reason in unscorable}
    lines = frame[LINE].to_list()
    keep = [i for i, line in enumerate(lines) if line not in skip]
    columns = checked.tokens.as_columns()
    tokenized = list(zip(*([ids[i] for i in keep] for ids in columns.values()), strict=True))
    scored = reply_logps(policy, tokenized, config.batch_size, config.max_length)
    reference, kind = None, "none"
    if config.ref is not None:
        reference = reply_logps(
            load_causal_lm(config.ref, config.trust_remote_code), tokenized, config.batch_size, config.max_length
        )
        kind = config.ref
    elif is_adapter:
        with policy.disable_adapter():
            reference = reply_logps(policy, tokenized, config.batch_size, config.max_length)
        kind = "base model (adapters disabled)"
    beta = config.beta if config.beta is not None else read_run_record(config.model).get("beta", 0.1)
    metrics = preference_metrics(scored, reference, beta, config.seed)
    metrics.truncated = sum(len(p) + max(len(c), len(r)) > config.max_length for p, c, r in tokenized)
    metrics.unscored = [Reject(None, r.line, r.reason, r.detail, r.id) for r in skip.values()]
    ids = frame["id"].to_list()
    result = EvalResult(
        model=config.model,
        data=config.data,
        reference_kind=kind,
        metrics=metrics,
        policy=scored,
        reference=reference,
        ids=[ids[i] for i in keep],
        by=config.by,
    )
    if labels is not None:
        labels = labels[keep]
        result.groups = grouped_metrics(scored, reference, labels, beta, config.seed)
        if config.by == "metadata.subset" and is_reward_bench(set(labels.tolist())):
            result.reward_bench = reward_bench_scores(scored, reference, labels)
    if config.generate:
        result.answers = _answers(config, frame, policy, tokenizer, labels_all, progress)
    write_eval_outputs(result, config)
    return result


def reward_model_metrics(scores: PairLogps, seed: int = 0) -> PreferenceMetrics:
    """A reward model's pairwise accuracy (ties half) and mean score margin, from its scores of each
    pair's replies (held in a :class:`PairLogps`, the log-prob fields read as scores)."""
    return PreferenceMetrics(
        pairs=len(scores.chosen),
        pairwise_accuracy=bootstrap(wins(scores.chosen, scores.rejected), seed=seed),
        reward_margin=bootstrap(scores.chosen - scores.rejected, seed=seed),
        ties=int((scores.chosen == scores.rejected).sum()),
    )


def evaluate_reward_model(config: EvalConfig, frame, labels) -> EvalResult:
    """``prefkit eval`` on a reward model: every pair's two replies scored by it (its own chat
    template), pairwise accuracy with intervals, per group, and RewardBench's sections with
    RewardBench's rule for classifiers (chosen strictly above rejected; a tie counts wrong)."""
    from prefkit.lm.reward import load_reward_model, pair_rewards

    if config.generate:
        raise UsageError("--generate: a reward model does not answer prompts; score answers with it instead")
    model, tokenizer = load_reward_model(config.model, config.trust_remote_code)
    chosen, rejected = pair_rewards(model, tokenizer, frame.to_dicts(), config.batch_size, config.max_length)
    none = np.zeros(len(chosen), dtype=int)
    scores = PairLogps(chosen, rejected, none, none)
    result = EvalResult(
        model=config.model,
        data=config.data,
        reference_kind="none (a reward model)",
        metrics=reward_model_metrics(scores, config.seed),
        policy=scores,
        reference=None,
        ids=frame["id"].to_list(),
        by=config.by,
    )
    if labels is not None:
        result.groups = [
            GroupMetrics(group, reward_model_metrics(_subset(scores, labels == group), config.seed))
            for group in sorted(set(labels.tolist()))
        ]
        if config.by == "metadata.subset" and is_reward_bench(set(labels.tolist())):
            result.reward_bench = reward_bench_scores(scores, None, labels)
    write_eval_outputs(result, config)
    return result


def _answers(config: EvalConfig, frame, policy, tokenizer, labels, progress) -> AnswerMetrics:
    """The model's own answers to the data's prompts, before and after, scored (``--generate``).

    The prompts come from the pairs already loaded: each prompt once, with its first pair's
    reference and group label."""
    import polars as pl

    from prefkit.data.prompts import pair_prompts, prompt_id
    from prefkit.lm.answer_eval import evaluate_answers
    from prefkit.lm.loading import load_causal_lm
    from prefkit.lm.sampling import SamplingSettings
    from prefkit.lm.scorers import http_scoring, parse_scorers

    first = frame.select(prompt_id(pl.col("prompt")).is_first_distinct()).to_series().to_numpy()
    prompts = pair_prompts(frame.filter(first))
    group = np.asarray(labels)[first] if labels is not None else None
    return evaluate_answers(
        policy,
        tokenizer,
        prompts,
        config.scorers,
        SamplingSettings(config.n, config.temperature, 1.0, config.max_new_tokens, config.seed),
        reference_model=load_causal_lm(config.ref, config.trust_remote_code) if config.ref else None,
        labels=group,
        max_length=config.max_length,
        trust_remote_code=config.trust_remote_code,
        seed=config.seed,
        progress=progress,
        fail_on_scorer_error=config.fail_on_scorer_error,
        http=http_scoring(config, parse_scorers(config.scorers), answers_path(config)),
    )


def answers_path(config: EvalConfig) -> str | None:
    """Where ``--generate`` writes its scored answers: ``--answers``, else beside ``--report``.

    >>> answers_path(EvalConfig(model="m", data="d.jsonl", report="out/eval.json", generate=True, scorers=["verify:number"]))
    'out/eval.answers.jsonl'
    """
    if config.answers or not (config.generate and config.report):
        return config.answers
    report = Path(config.report)
    return str(report.with_name(f"{report.stem}.answers.jsonl"))


def write_eval_outputs(result: EvalResult, config: EvalConfig) -> None:
    """The report (``config.report``), the per-pair log-probs (``config.per_pair``) and the scored
    answers (:func:`answers_path`), when asked."""
    import json

    from prefkit.atomic_files import line_sink, write_json

    answers = answers_path(config)
    if answers and result.answers is not None:
        with line_sink(Path(answers)) as write:
            write(json.dumps(r, ensure_ascii=False) for r in result.answers.records)
    if config.report:
        write_json(result.to_dict(), Path(config.report))
    if config.per_pair:
        with line_sink(Path(config.per_pair)) as write:
            write(json.dumps(r) for r in per_pair_records(result))


def reward_bench_scores(policy: PairLogps, reference: PairLogps | None, subsets: np.ndarray) -> RewardBenchScores:
    """RewardBench's per-subset accuracies and section scores from the implicit-reward decision
    (policy log-probs alone when there is no reference, RewardBench's reference-free mode)."""
    chosen, rejected = policy.chosen, policy.rejected
    if reference is not None:
        chosen, rejected = chosen - reference.chosen, rejected - reference.rejected
    accuracy = subset_accuracy(chosen, rejected, subsets)
    sections = section_scores(accuracy)
    return RewardBenchScores(
        subsets=accuracy,
        sections=sections,
        mean_of_sections=float(np.mean(list(sections.values()))) if sections else None,
        reference_free=reference is None,
    )


def per_pair_records(result: EvalResult) -> list[dict]:
    """Every pair's four log-probs (and reply token counts), for ``--per-pair``."""
    ref = result.reference
    return [
        {
            "id": pair_id,
            "policy_chosen_logp": float(result.policy.chosen[i]),
            "policy_rejected_logp": float(result.policy.rejected[i]),
            "reference_chosen_logp": float(ref.chosen[i]) if ref is not None else None,
            "reference_rejected_logp": float(ref.rejected[i]) if ref is not None else None,
            "chosen_tokens": int(result.policy.chosen_tokens[i]),
            "rejected_tokens": int(result.policy.rejected_tokens[i]),
        }
        for i, pair_id in enumerate(result.ids)
    ]
