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

from collections.abc import Callable
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


def shared_prefix_length(sequences: list[list[int]]) -> int:
    """Tokens every sequence starts with (at least one token of each is left over).

    >>> shared_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]])
    2
    """
    n = min(len(s) for s in sequences) - 1
    first = sequences[0]
    for seq in sequences[1:]:
        n = min(n, common_prefix_length(first[:n], seq[:n]))
    return max(n, 0)


def _token_logps(logits, targets):
    """log-softmax of ``logits`` at ``targets``, in float32."""
    import torch

    logits = logits.float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def padded(sequences: list[list[int]], width: int, pad: int = 0, left: bool = False):
    """Token ids padded to ``width`` and their attention mask.

    >>> ids, mask = padded([[1, 2], [3]], 3, left=True)
    >>> ids.tolist(), mask.tolist()
    ([[0, 1, 2], [0, 0, 3]], [[0, 1, 1], [0, 0, 1]])
    """
    import torch

    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[i, span] = torch.tensor(seq, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def _batch_logps_shared(model, batch, prefix_cache, prefix_len: int, pad: int = 0):
    """Summed reply log-probs and reply lengths of a batch of pairs, rows chosen, rejected, chosen, ...

    Three forward passes reuse each other's key/value cache: the prefix every pair shares (computed
    once for the whole dataset), then each pair's own rest of the prompt (once per pair, not once
    per reply), then both replies. Pads between the parts are masked out and positions are given
    explicitly, so every real token sees exactly the context it has in one plain pass.
    """
    import copy

    import torch

    device = next(model.parameters()).device
    rests = [prompt_ids[prefix_len:] for prompt_ids, _, _ in batch]
    replies = [reply for _, chosen, rejected in batch for reply in (chosen, rejected)]
    n, width_rest, width_reply = len(batch), max(len(r) for r in rests), max(max(len(r) for r in replies), 1)

    # Rests are left-padded, so each pair's last prompt token, whose logits predict the first
    # reply token, sits in the last column.
    rest_ids, rest_mask = padded(rests, width_rest, pad, left=True)
    rest_positions = (prefix_len + rest_mask.cumsum(-1) - 1).clamp(min=prefix_len)
    context_mask = torch.cat([torch.ones((n, prefix_len), dtype=torch.long), rest_mask], -1)
    cache = None
    if prefix_cache is not None:
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(n)
    out = model(
        input_ids=rest_ids.to(device),
        attention_mask=context_mask.to(device),
        position_ids=rest_positions.to(device),
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    first_logits = out.logits[:, -1].repeat_interleave(2, dim=0)
    cache = out.past_key_values
    cache.batch_repeat_interleave(2)

    reply_ids, reply_mask = padded(replies, width_reply, pad)
    rest_lengths = torch.tensor([len(r) for r in rests]).repeat_interleave(2)
    reply_positions = prefix_len + rest_lengths.unsqueeze(1) + torch.arange(width_reply).unsqueeze(0)
    logits = model(
        input_ids=reply_ids.to(device),
        attention_mask=torch.cat([context_mask.repeat_interleave(2, dim=0), reply_mask], -1).to(device),
        position_ids=reply_positions.to(device),
        past_key_values=cache,
        use_cache=True,
    ).logits
    # Logit j of the reply pass predicts reply token j + 1; the first token's came from the prompt.
    logits = torch.cat([first_logits.unsqueeze(1), logits[:, :-1]], dim=1)
    reply_ids, reply_mask = reply_ids.to(device), reply_mask.to(device)
    token_logps = _token_logps(logits, reply_ids) * reply_mask
    return token_logps.sum(-1).cpu().numpy(), reply_mask.sum(-1).cpu().numpy()


def _batch_logps_plain(model, batch, pad: int = 0):
    """The same in one padded pass over prompt + reply, for models without a key/value cache."""
    import torch

    device = next(model.parameters()).device
    sequences, reply_starts = [], []
    for prompt_ids, chosen_ids, rejected_ids in batch:
        for reply in (chosen_ids, rejected_ids):
            sequences.append(prompt_ids + reply)
            reply_starts.append(len(prompt_ids))
    width = max(len(s) for s in sequences)
    ids, mask = padded(sequences, width, pad)
    ids, mask = ids.to(device), mask.to(device)
    # Only positions from the earliest reply start on predict reply tokens: ask the model for those
    # logits alone (``logits_to_keep``, so soft-capping or scaling a model applies after its head
    # still applies). Logit j predicts the token at position first + j.
    first = min(reply_starts)
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=width - first + 1).logits[:, :-1]
    token_logps = _token_logps(logits, ids[:, first:])
    positions = torch.arange(first, width, device=device).unsqueeze(0)
    starts = torch.tensor(reply_starts, device=device).unsqueeze(1)
    in_reply = (positions >= starts) & mask[:, first:].bool()
    return (token_logps * in_reply).sum(-1).cpu().numpy(), in_reply.sum(-1).cpu().numpy()


def reply_logps(
    model,
    tokenized: list[tuple[list[int], list[int], list[int]]],
    batch_size: int = 8,
    max_length: int = 1024,
    share_prompt: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> PairLogps:
    """Sums of reply-token log-probs for every pair, ``batch_size`` pairs per forward pass.

    Each pair is tokenized once and truncated as training does (prompt + reply cut to
    ``max_length`` from the start). Pairs are scored in order of length, so a batch holds little
    padding. With ``share_prompt`` (the default), the prompt is run once per pair rather than once
    per reply, and the prefix all pairs share (a chat template's system header) once in all, from
    the key/value cache; ``share_prompt=False`` scores prompt + reply in one plain pass, for
    models whose cache cannot be reused that way (recurrent state, for one). ``on_batch`` is
    called with the number of pairs each batch scored (for a progress bar).
    """
    import torch

    pairs = []
    for prompt_ids, chosen_ids, rejected_ids in tokenized:
        prompt_ids = prompt_ids[:max_length]
        room = max_length - len(prompt_ids)
        pairs.append((prompt_ids, chosen_ids[:room], rejected_ids[:room]))
    n = len(pairs)
    if any(not prompt_ids for prompt_ids, _, _ in pairs):
        raise UsageError("a pair's prompt tokenizes to nothing: its first reply token has no context to score")
    sums, counts = np.zeros((n, 2)), np.zeros((n, 2), dtype=np.int64)
    if n == 0:
        return PairLogps(sums[:, 0], sums[:, 1], counts[:, 0], counts[:, 1])
    order = sorted(range(n), key=lambda i: (len(pairs[i][0]), max(len(pairs[i][1]), len(pairs[i][2]))))
    model.eval()
    with torch.no_grad():
        prefix_len, prefix_cache = 0, None
        if share_prompt:
            prefix_len = shared_prefix_length([p for p, _, _ in pairs])
            device = next(model.parameters()).device
            if prefix_len:
                prefix_ids = torch.tensor([pairs[0][0][:prefix_len]], device=device)
                prefix_cache = model(input_ids=prefix_ids, use_cache=True).past_key_values
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            batch = [pairs[i] for i in rows]
            if share_prompt:
                batch_sums, batch_counts = _batch_logps_shared(model, batch, prefix_cache, prefix_len)
            else:
                batch_sums, batch_counts = _batch_logps_plain(model, batch)
            sums[rows] = batch_sums.reshape(-1, 2)
            counts[rows] = batch_counts.reshape(-1, 2)
            if on_batch is not None:
                on_batch(len(rows))
    return PairLogps(sums[:, 0], sums[:, 1], counts[:, 0], counts[:, 1])


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
    notes: list[str] = field(default_factory=list)


def bootstrap(values: np.ndarray, statistic=np.mean, n: int = 2000, seed: int = 0) -> Estimate:
    """The statistic with a percentile bootstrap 95% interval over pairs."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n, len(values)))
    stats = statistic(values[draws], axis=1)
    return Estimate(float(statistic(values)), float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5)))


def _prefers_chosen_per_token(logps: PairLogps) -> np.ndarray:
    return (
        logps.chosen / np.maximum(logps.chosen_tokens, 1) > logps.rejected / np.maximum(logps.rejected_tokens, 1)
    ).astype(float)


def preference_metrics(
    policy: PairLogps, reference: PairLogps | None, beta: float = 0.1, seed: int = 0
) -> PreferenceMetrics:
    """All the scores above from per-pair log-probs."""
    metrics = PreferenceMetrics(
        pairs=len(policy.chosen),
        logprob_accuracy=bootstrap((policy.chosen > policy.rejected).astype(float), seed=seed),
        logprob_accuracy_per_token=bootstrap(_prefers_chosen_per_token(policy), seed=seed),
    )
    if reference is not None:
        metrics.reference_logprob_accuracy = bootstrap((reference.chosen > reference.rejected).astype(float), seed=seed)
        metrics.reference_logprob_accuracy_per_token = bootstrap(_prefers_chosen_per_token(reference), seed=seed)
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
    beta: float | None = field(
        default=None,
        metadata={"help": "DPO beta of the implicit rewards; default: the beta a prefkit run trained with, else 0.1."},
    )
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

    from prefkit.lm.loading import load_causal_lm, load_tokenizer, resolve_model

    path = resolve_model(model)
    if (Path(path) / "adapter_config.json").exists():
        from peft import PeftConfig, PeftModel

        base_name = PeftConfig.from_pretrained(path).base_model_name_or_path
        policy = PeftModel.from_pretrained(load_causal_lm(base_name, trust_remote_code), path)
        tokenizer_source = path if (Path(path) / "tokenizer_config.json").exists() else base_name
        return policy, load_tokenizer(tokenizer_source, trust_remote_code), True
    return load_causal_lm(path, trust_remote_code), load_tokenizer(path, trust_remote_code), False


def trained_beta(model: str, default: float = 0.1) -> float:
    """The ``beta`` a ``prefkit train`` output folder was trained with (its ``prefkit_run.json``)."""
    import json
    from pathlib import Path

    run = Path(model) / "prefkit_run.json"
    if not run.is_file():
        return default
    return float(json.loads(run.read_text())["recipe"]["dpo"].get("beta", default))


def evaluate(config: EvalConfig) -> EvalResult:
    """Scores every pair of ``config.data`` under the policy and the reference."""
    from prefkit.data.validate import load_canonical
    from prefkit.errors import ValidationFailed
    from prefkit.lm.loading import load_causal_lm

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
    beta = config.beta if config.beta is not None else trained_beta(config.model)
    metrics = preference_metrics(scored, reference, beta, config.seed)
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
    from prefkit.data.sources import read, resolve

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
    from prefkit.lm.loading import load_causal_lm

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
