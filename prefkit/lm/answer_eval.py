"""Judging a trained model by its own answers: ``prefkit eval --generate --scorer SPEC``.

Implicit-reward accuracy asks whether the model ranks the data's chosen reply above its rejected
one. It does not ask whether the model now *answers* better, and with pairs the model would never
write the two can part ways. Here the base model (before) and the trained model (after) answer the
same held-out prompts with the same decoding, each answer is scored (a verifier, a reward model,
an implicit reward), and the report gives per scorer the mean score before and after, each with a
bootstrap 95% interval over prompts, and the interval of the paired difference (after - before,
prompt by prompt), per group too, beside the mean answer length (a model that learns to ramble
shows it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prefkit.lm.estimates import Estimate, bootstrap
from prefkit.lm.sampling import Completion, SamplingSettings
from prefkit.results import Result


@dataclass
class ScoreChange:
    """One scorer's mean score over prompts, before and after, and the paired difference."""

    scorer: str
    before: Estimate
    after: Estimate
    difference: Estimate
    prompts: int
    """Prompts scored both before and after (a verifier may leave some unscored)."""


@dataclass
class GroupChange:
    group: str
    prompts: int
    scores: list[ScoreChange]


@dataclass
class AnswerExample:
    prompt: str
    before: str
    after: str
    before_score: float | None
    after_score: float | None


@dataclass
class AnswerMetrics(Result):
    """What the model's own answers to held-out prompts scored, before and after training."""

    prompts: int
    completions_per_prompt: int
    decoding: str
    max_new_tokens: int
    before_model: str
    scores: list[ScoreChange]
    mean_tokens_before: float
    mean_tokens_after: float
    cut_at_max_before: int
    """Answers that reached ``max_new_tokens`` without ending (before); a rambling model shows here."""
    cut_at_max_after: int
    groups: list[GroupChange] = field(default_factory=list)
    examples: list[AnswerExample] = field(default_factory=list)
    unscored: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per scorer that failed on some answers, their count by reason (``scorer_error``, ``invalid_score``)."""
    records: list[dict] = field(default_factory=list, repr=False)
    """Every answer, before and after, with each scorer's score: the answers file's lines."""
    before_answers: list[list[Completion]] = field(default_factory=list, repr=False)
    after_answers: list[list[Completion]] = field(default_factory=list, repr=False)


def prompt_means(values: list[list[float | None]]) -> np.ndarray:
    """Each prompt's mean score over its completions (NaN where none was scored).

    >>> prompt_means([[1.0, 0.0], [None, 1.0], [None]]).tolist()
    [0.5, 1.0, nan]
    """
    out = np.full(len(values), np.nan)
    for i, row in enumerate(values):
        given = [v for v in row if v is not None]
        if given:
            out[i] = float(np.mean(given))
    return out


def score_change(name: str, before: np.ndarray, after: np.ndarray, seed: int = 0) -> ScoreChange:
    """Means before and after and the paired difference, over prompts scored both times.

    >>> change = score_change("ok", np.array([0.0, 0.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0, 0.0]))
    >>> change.before.value, change.after.value, change.difference.value
    (0.25, 0.75, 0.5)
    """
    both = ~np.isnan(before) & ~np.isnan(after)
    b, a = before[both], after[both]
    if not both.any():
        nothing = Estimate(float("nan"), float("nan"), float("nan"))
        return ScoreChange(name, nothing, nothing, nothing, 0)
    return ScoreChange(
        name, bootstrap(b, seed=seed), bootstrap(a, seed=seed), bootstrap(a - b, seed=seed), int(both.sum())
    )


def answer_records(frame, answers: list[list[Completion]]) -> list[dict]:
    """Prompts and their answers in the shape :mod:`prefkit.lm.score` scores."""
    rows = frame.select("id", "prompt", "reference").to_dicts()
    return [r | {"completions": [c.to_dict() for c in a]} for r, a in zip(rows, answers, strict=True)]


def answer_metrics(
    names: list[str],
    before: dict[str, list[list[float | None]]],
    after: dict[str, list[list[float | None]]],
    before_answers: list[list[Completion]],
    after_answers: list[list[Completion]],
    settings: SamplingSettings,
    before_model: str,
    labels: np.ndarray | None = None,
    prompts: list[str] | None = None,
    seed: int = 0,
    examples: int = 3,
) -> AnswerMetrics:
    """The report of :class:`AnswerMetrics` from every scorer's scores of both sets of answers."""
    means = {n: (prompt_means(before[n]), prompt_means(after[n])) for n in names}
    flat_before = [c for a in before_answers for c in a]
    flat_after = [c for a in after_answers for c in a]
    metrics = AnswerMetrics(
        prompts=len(before_answers),
        completions_per_prompt=settings.n,
        decoding="greedy"
        if settings.temperature == 0
        else f"sampled (temperature {settings.temperature}, top_p {settings.top_p})",
        max_new_tokens=settings.max_new_tokens,
        before_model=before_model,
        scores=[score_change(n, *means[n], seed=seed) for n in names],
        mean_tokens_before=round(float(np.mean([c.tokens for c in flat_before])), 2) if flat_before else 0.0,
        mean_tokens_after=round(float(np.mean([c.tokens for c in flat_after])), 2) if flat_after else 0.0,
        cut_at_max_before=sum(c.finish_reason == "length" for c in flat_before),
        cut_at_max_after=sum(c.finish_reason == "length" for c in flat_after),
        before_answers=before_answers,
        after_answers=after_answers,
    )
    if labels is not None:
        for group in sorted(set(labels.tolist())):
            mask = labels == group
            changes = [score_change(n, means[n][0][mask], means[n][1][mask], seed=seed) for n in names]
            metrics.groups.append(GroupChange(group, int(mask.sum()), changes))
    if prompts is not None and names:
        first = names[0]
        for i in range(min(examples, len(prompts))):
            metrics.examples.append(
                AnswerExample(
                    prompts[i],
                    before_answers[i][0].text,
                    after_answers[i][0].text,
                    before[first][i][0],
                    after[first][i][0],
                )
            )
    return metrics


def evaluate_answers(
    policy,
    tokenizer,
    frame,
    scorers: list[str],
    settings: SamplingSettings,
    reference_model=None,
    labels: np.ndarray | None = None,
    batch_size: int = 64,
    max_length: int = 1024,
    trust_remote_code: bool = False,
    seed: int = 0,
    progress=None,
    fail_on_scorer_error: bool = False,
    http=None,
) -> AnswerMetrics:
    """Answers the prompts of ``frame`` (``id``, ``prompt``, ``reference``) with the trained model
    and with the model before training (``reference_model``, else the adapter's base with adapters
    disabled), scores both with every scorer and compares them.

    The same seed drives both runs, so with sampling each prompt's draws differ only where the models do.
    """
    from contextlib import nullcontext

    from prefkit.lm.pair_tokens import prompt_token_ids
    from prefkit.lm.sampling import generate_all
    from prefkit.lm.scorers import ModelScoring, parse_scorers, run_scorer, user_text

    specs = parse_scorers(scorers)
    token_ids = prompt_token_ids(tokenizer, frame["prompt"].to_list())
    total = len(token_ids)

    def answer(model, label: str) -> list[list[Completion]]:
        out: list[list[Completion]] = [[] for _ in token_ids]
        done = 0
        for _, rows, completions in generate_all(model, tokenizer, token_ids, settings, batch_size):
            for row, completion in zip(rows, completions, strict=True):
                out[row] = completion
            done += len(rows)
            if progress:
                progress(f"answering ({label})", done, total)
        return out

    after_answers = answer(policy, "trained")
    if reference_model is not None:
        before_answers, before_model = answer(reference_model, "before"), "reference model"
    else:
        with policy.disable_adapter() if hasattr(policy, "disable_adapter") else nullcontext():
            before_answers = answer(policy, "before")
        before_model = "base model (adapters disabled)"
    options = ModelScoring(16, max_length, trust_remote_code, fail_on_scorer_error, http)
    before, after, failures = {}, {}, {}
    for spec in specs:
        scored_before = run_scorer(spec, answer_records(frame, before_answers), options)
        scored_after = run_scorer(spec, answer_records(frame, after_answers), options)
        before[spec.name], after[spec.name] = scored_before.values, scored_after.values
        failures[spec.name] = scored_before.failures + scored_after.failures
    prompts = [user_text(p) for p in frame["prompt"].to_list()]
    metrics = answer_metrics(
        [s.name for s in specs],
        before,
        after,
        before_answers,
        after_answers,
        settings,
        before_model,
        labels,
        prompts,
        seed,
    )
    metrics.unscored = {name: _reasons(f) for name, f in failures.items() if f}
    metrics.records = scored_answer_records(frame, before_answers, after_answers, before, after, failures)
    return metrics


def _reasons(failures) -> dict[str, int]:
    out: dict[str, int] = {}
    for failure in failures:
        out[failure.reason] = out.get(failure.reason, 0) + 1
    return out


def scored_answer_records(frame, before_answers, after_answers, before, after, failures) -> list[dict]:
    """Every answer scored, before and after, one record per answer with each scorer's score (and,
    where a scorer failed on it, its reason): what ``eval --generate`` writes beside its report."""
    rows = frame.select("id", "prompt", "reference").to_dicts()
    reasons = {}
    for name, found in failures.items():
        for f in found:
            reasons[(name, f.row, f.completion, f.id)] = f"{f.reason}: {f.detail}"
    out = []
    for model, answers, scores in (("before", before_answers, before), ("after", after_answers, after)):
        for r, (row, completions) in enumerate(zip(rows, answers, strict=True)):
            for k, completion in enumerate(completions):
                record = row | {"model": model, "sample": k} | completion.to_dict()
                record["scores"] = {name: values[r][k] for name, values in scores.items()}
                unscored = {name: reasons[key] for name in scores if (key := (name, r, k, row["id"])) in reasons}
                out.append(record | ({"unscored": unscored} if unscored else {}))
    return out
