"""Scoring replies under a causal LM: one tokenization and one log-prob computation, shared by
training (prefkit's reference pass) and evaluation.

Pairs come tokenized by :mod:`prefkit.lm.pair_tokens`, as training sees them. :func:`reply_logps` sums each reply's token log-probabilities given its prompt, running each prompt
once per pair and the prefix every pair shares once in all, from the key/value cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from prefkit.errors import UsageError
from prefkit.lm.compat import returned_cache, with_cache
from prefkit.lm.pair_tokens import common_prefix_length


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
        use_cache=True,
        logits_to_keep=1,
        **with_cache(cache),
    )
    first_logits = out.logits[:, -1].repeat_interleave(2, dim=0)
    cache = returned_cache(out)
    cache.batch_repeat_interleave(2)

    reply_ids, reply_mask = padded(replies, width_reply, pad)
    rest_lengths = torch.tensor([len(r) for r in rests]).repeat_interleave(2)
    reply_positions = prefix_len + rest_lengths.unsqueeze(1) + torch.arange(width_reply).unsqueeze(0)
    logits = model(
        input_ids=reply_ids.to(device),
        attention_mask=torch.cat([context_mask.repeat_interleave(2, dim=0), reply_mask], -1).to(device),
        position_ids=reply_positions.to(device),
        use_cache=True,
        **with_cache(cache),
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
                prefix_cache = returned_cache(model(input_ids=prefix_ids, use_cache=True))
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
