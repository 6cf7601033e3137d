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

from prefkit.errors import UsageError


def common_prefix_length(a: list[int], b: list[int]) -> int:
    """``common_prefix_length([1, 2, 3], [1, 2, 4]) == 2``."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def tokenize_pair(tokenizer, prompt, chosen, rejected) -> tuple[list[int], list[int], list[int]]:
    """``(prompt_ids, chosen_ids, rejected_ids)`` as DPO training sees them.

    ``prompt``/``chosen``/``rejected`` are message lists (conversational) or strings (standard).
    """
    if isinstance(prompt, list):
        if not getattr(tokenizer, "chat_template", None):
            raise UsageError(
                "the model's tokenizer has no chat template, so conversational data cannot be rendered; "
                "convert the data with --style standard"
            )

        def render(messages, **kwargs) -> list[int]:
            return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"]

        prompt_ids = render(prompt, add_generation_prompt=True)
        full_chosen, full_rejected = render(prompt + chosen), render(prompt + rejected)
    else:
        eos = tokenizer.eos_token or ""
        chosen = chosen if chosen.endswith(eos) else chosen + eos
        rejected = rejected if rejected.endswith(eos) else rejected + eos
        prompt_ids = tokenizer(text=prompt)["input_ids"]
        full_chosen = tokenizer(text=prompt + chosen)["input_ids"]
        full_rejected = tokenizer(text=prompt + rejected)["input_ids"]
    n = min(common_prefix_length(prompt_ids, full_chosen), common_prefix_length(prompt_ids, full_rejected))
    return prompt_ids[:n], full_chosen[n:], full_rejected[n:]


@dataclass
class PairLogps:
    """Per pair: summed reply log-probs and reply token counts."""

    chosen: np.ndarray
    rejected: np.ndarray
    chosen_tokens: np.ndarray
    rejected_tokens: np.ndarray


def reply_logps(
    model, tokenized: list[tuple[list[int], list[int], list[int]]], batch_size: int = 8, max_length: int = 1024
) -> PairLogps:
    """Sums of reply-token log-probs for every pair, ``batch_size`` pairs per forward pass.

    Each pair is tokenized once; its two sequences (prompt + chosen, prompt + rejected) go through
    the model together, right-padded, truncated to ``max_length`` from the start as training does.
    """
    import torch

    pad = 0
    chosen, rejected, n_chosen, n_rejected = [], [], [], []
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(tokenized), batch_size):
            batch = tokenized[start : start + batch_size]
            sequences, reply_starts = [], []
            for prompt_ids, chosen_ids, rejected_ids in batch:
                for reply in (chosen_ids, rejected_ids):
                    sequences.append((prompt_ids + reply)[:max_length])
                    reply_starts.append(len(prompt_ids))
            width = max(len(s) for s in sequences)
            ids = torch.full((len(sequences), width), pad, dtype=torch.long)
            mask = torch.zeros((len(sequences), width), dtype=torch.long)
            for i, seq in enumerate(sequences):
                ids[i, : len(seq)] = torch.tensor(seq)
                mask[i, : len(seq)] = 1
            ids, mask = ids.to(device), mask.to(device)
            # Only positions from the earliest reply start on predict reply tokens: ask the model
            # for those logits alone (``logits_to_keep``, so soft-capping or scaling a model applies
            # after its head still applies). Logit j predicts the token at position first + j.
            first = min(reply_starts)
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=width - first + 1).logits[:, :-1].float()
            targets = ids[:, first:]
            token_logps = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
            positions = torch.arange(first, width, device=device).unsqueeze(0)
            starts = torch.tensor(reply_starts, device=device).unsqueeze(1)
            in_reply = (positions >= starts) & mask[:, first:].bool()
            sums = (token_logps * in_reply).sum(-1).cpu().numpy()
            counts = in_reply.sum(-1).cpu().numpy()
            chosen.extend(sums[0::2])
            rejected.extend(sums[1::2])
            n_chosen.extend(counts[0::2])
            n_rejected.extend(counts[1::2])
    return PairLogps(np.array(chosen), np.array(rejected), np.array(n_chosen), np.array(n_rejected))


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
    notes: list[str] = field(default_factory=list)


def bootstrap(values: np.ndarray, statistic=np.mean, n: int = 2000, seed: int = 0) -> Estimate:
    """The statistic with a percentile bootstrap 95% interval over pairs."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n, len(values)))
    stats = statistic(values[draws], axis=1)
    return Estimate(float(statistic(values)), float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5)))


def preference_metrics(
    policy: PairLogps, reference: PairLogps | None, beta: float = 0.1, seed: int = 0
) -> PreferenceMetrics:
    """All the scores above from per-pair log-probs."""
    metrics = PreferenceMetrics(
        pairs=len(policy.chosen),
        logprob_accuracy=bootstrap((policy.chosen > policy.rejected).astype(float), seed=seed),
        logprob_accuracy_per_token=bootstrap(
            (
                policy.chosen / np.maximum(policy.chosen_tokens, 1)
                > policy.rejected / np.maximum(policy.rejected_tokens, 1)
            ).astype(float),
            seed=seed,
        ),
    )
    if reference is not None:
        rewards = beta * ((policy.chosen - policy.rejected) - (reference.chosen - reference.rejected))
        metrics.implicit_reward_accuracy = bootstrap((rewards > 0).astype(float), seed=seed)
        metrics.reward_margin = bootstrap(rewards, seed=seed)
        metrics.beta = beta
    else:
        metrics.notes.append("no reference model: implicit rewards need one (--ref, or an adapter's base)")
    return metrics


@dataclass
class EvalConfig:
    """Options of ``prefkit eval``."""

    model: str = field(
        metadata={"help": "Trained model: a PEFT adapter folder, a model folder, a hub id or a bundled name."}
    )
    data: str = field(metadata={"help": "Canonical preference file (prefkit convert output, or a mix's test.jsonl)."})
    ref: str | None = field(
        default=None, metadata={"help": "Reference model; default for an adapter: its base with adapters disabled."}
    )
    beta: float = field(default=0.1, metadata={"help": "DPO beta used for the implicit rewards."})
    batch_size: int = field(default=8, metadata={"help": "Pairs per forward pass."})
    max_length: int = field(
        default=1024, metadata={"help": "Tokens per sequence (prompt + reply); longer ones lose their end."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow model code from the hub (off unless you ask)."}
    )


@dataclass
class EvalResult:
    metrics: PreferenceMetrics
    policy: PairLogps
    reference: PairLogps | None
    ids: list[str]
    reference_kind: str


def load_policy(model: str, trust_remote_code: bool = False):
    """``(policy, tokenizer, is_adapter)``; an adapter is loaded onto its base, the tokenizer from the
    model folder when it has one, else from the base."""
    from pathlib import Path

    from prefkit.bundled_model import load_causal_lm, load_tokenizer, resolve_model

    path = resolve_model(model)
    if (Path(path) / "adapter_config.json").exists():
        from peft import PeftConfig, PeftModel

        base_name = PeftConfig.from_pretrained(path).base_model_name_or_path
        policy = PeftModel.from_pretrained(load_causal_lm(base_name, trust_remote_code), path)
        tokenizer_source = path if (Path(path) / "tokenizer_config.json").exists() else base_name
        return policy, load_tokenizer(tokenizer_source, trust_remote_code), True
    return load_causal_lm(path, trust_remote_code), load_tokenizer(path, trust_remote_code), False


def evaluate(config: EvalConfig) -> EvalResult:
    """Scores every pair of ``config.data`` under the policy and the reference."""
    from prefkit.bundled_model import load_causal_lm
    from prefkit.errors import ValidationFailed
    from prefkit.validate import load_canonical

    try:
        frame = load_canonical(config.data)
    except ValidationFailed as err:  # eval's data is an argument: a usage error, not a data failure
        raise UsageError(str(err)) from err
    policy, tokenizer, is_adapter = load_policy(config.model, config.trust_remote_code)
    tokenized = [tokenize_pair(tokenizer, *row) for row in frame.select("prompt", "chosen", "rejected").iter_rows()]
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
    metrics = preference_metrics(scored, reference, config.beta, config.seed)
    return EvalResult(
        metrics=metrics, policy=scored, reference=reference, ids=frame["id"].to_list(), reference_kind=kind
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


@dataclass
class CompareConfig:
    """Options of ``prefkit compare``."""

    model: str = field(
        metadata={"help": "Trained model: a PEFT adapter folder, a model folder, a hub id or a bundled name."}
    )
    prompts: list[str] = field(metadata={"help": "User prompts to answer."})
    ref: str | None = field(
        default=None, metadata={"help": "Base model; default for an adapter: its base with adapters disabled."}
    )
    max_new_tokens: int = field(default=128, metadata={"help": "Tokens to generate per answer."})
    sample: bool = field(default=False, metadata={"help": "Sample (seeded) instead of greedy decoding."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature."})
    seed: int = field(default=0, metadata={"help": "Seed for sampling."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow model code from the hub (off unless you ask)."}
    )


def read_prompts(path: str) -> list[str]:
    """Prompts from a text file (one per line) or from the last user turn of a preference file."""
    from pathlib import Path

    if path.endswith(".txt"):
        return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    from prefkit.sources import read, resolve

    (source,) = resolve(path)
    frame = read(source).frame
    if "prompt" not in frame.columns:
        raise UsageError(f"{path}: no 'prompt' field; give a canonical file or a .txt with one prompt per line")
    prompts = frame["prompt"].to_list()
    return [
        p if isinstance(p, str) else next(m["content"] for m in reversed(p) if m["role"] == "user") for p in prompts
    ]


def generate_answers(model, tokenizer, prompts: list[str], config: CompareConfig) -> list[str]:
    import torch

    answers = []
    for prompt in prompts:
        if getattr(tokenizer, "chat_template", None):
            inputs = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        else:
            inputs = tokenizer(prompt, return_tensors="pt")
        torch.manual_seed(config.seed)
        options = {"do_sample": True, "temperature": config.temperature} if config.sample else {"do_sample": False}
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=config.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                **options,
            )
        answers.append(tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    return answers


def compare(config: CompareConfig) -> list[dict[str, str]]:
    """Answers of the base and the trained model to each prompt: ``[{prompt, base, trained}]``."""
    from prefkit.bundled_model import load_causal_lm

    policy, tokenizer, is_adapter = load_policy(config.model, config.trust_remote_code)
    if config.ref is None and not is_adapter:
        raise UsageError("--ref is needed: the model is not an adapter, so there is no base to compare with")
    trained = generate_answers(policy, tokenizer, config.prompts, config)
    if config.ref is not None:
        base = generate_answers(load_causal_lm(config.ref, config.trust_remote_code), tokenizer, config.prompts, config)
    else:
        with policy.disable_adapter():
            base = generate_answers(policy, tokenizer, config.prompts, config)
    return [{"prompt": p, "base": b, "trained": t} for p, b, t in zip(config.prompts, base, trained, strict=True)]
