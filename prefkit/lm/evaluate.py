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

import numpy as np

from prefkit.config import DEFAULT_SEED, check_fields, option
from prefkit.lm.scoring import PairLogps, reply_logps


@dataclass
class Estimate:
    value: float
    low: float
    high: float


@dataclass
class PreferenceMetrics:
    pairs: int
    logprob_accuracy: Estimate
    logprob_accuracy_per_token: Estimate
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
    unscored: list[dict] = field(default_factory=list)
    """Pairs that could not be scored (``{id, reason, detail}``): nothing of a reply fits."""
    notes: list[str] = field(default_factory=list)


def bootstrap(values: np.ndarray, statistic=np.mean, n: int = 2000, seed: int = 0) -> Estimate:
    """The statistic with a percentile bootstrap 95% interval over pairs."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n, len(values)))
    stats = statistic(values[draws], axis=1)
    return Estimate(float(statistic(values)), float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5)))


def wins(better: np.ndarray, worse: np.ndarray) -> np.ndarray:
    """1 where ``better > worse``, 0.5 on a tie, else 0.

    >>> wins(np.array([2.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0])).tolist()
    [1.0, 0.5, 0.0]
    """
    return (better > worse) + 0.5 * (better == worse)


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


MODEL_HELP = "Trained model: a PEFT adapter folder, a model folder, a hub id or a bundled name."
TRUST_REMOTE_CODE_HELP = "Allow model code from the hub (off unless you ask)."


@dataclass
class EvalConfig:
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

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class EvalResult:
    metrics: PreferenceMetrics
    policy: PairLogps
    reference: PairLogps | None
    ids: list[str]
    reference_kind: str


def evaluate(config: EvalConfig) -> EvalResult:
    """Scores every pair of ``config.data`` under the policy and the reference."""
    from prefkit.data.validate import load_canonical
    from prefkit.lm.lint import NO_SIGNAL, TokenReason, audit_frame
    from prefkit.lm.loading import load_causal_lm, load_policy
    from prefkit.lm.train import read_run_record

    frame = load_canonical(config.data, lines=True)
    policy, tokenizer, is_adapter = load_policy(config.model, config.trust_remote_code)
    # Eval truncates as training does by default (keep_start); a pair with no reply token left
    # cannot be scored, and one whose replies become identical scores as a tie.
    checked = audit_frame(tokenizer, frame, config.max_length, "keep_start", "drop")
    unscorable = NO_SIGNAL - {TokenReason.IDENTICAL_AFTER_TRUNCATION}
    skip = {r["line"]: r for r in checked.error_records if r["reason"] in unscorable}
    lines = frame["__line"].to_list()
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
    metrics.unscored = [
        {"id": r["id"], "line": r["line"], "reason": r["reason"], "detail": r["detail"]} for r in skip.values()
    ]
    ids = frame["id"].to_list()
    return EvalResult(
        metrics=metrics, policy=scored, reference=reference, ids=[ids[i] for i in keep], reference_kind=kind
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
