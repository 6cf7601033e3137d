"""Pairs into token ids exactly as TRL's ``DPOTrainer`` tokenizes them, in batches.

The one tokenization of prefkit: ``prefkit lint`` audits its output, ``prefkit train`` trains on it
and ``prefkit eval`` scores it, so what lint reports is what training sees. It calls what TRL 1.x
calls (``apply_chat_template`` over the prompt with the generation prompt, and over prompt +
reply; plain text with the EOS token appended to each reply), but on batches of conversations,
which the tokenizer encodes in one call of its Rust code. The reply starts where the tokenized
prompt and the tokenized prompt + reply diverge; usually that is the end of the prompt, and where it
is not, the template rewrote the prompt (``prompt_not_prefix`` in the audit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefkit.errors import UsageError

BATCH = 512


def common_prefix_length(a: list[int], b: list[int]) -> int:
    """Leading tokens two sequences share.

    >>> common_prefix_length([1, 2, 3], [1, 2, 4]), common_prefix_length([1], [1, 5])
    (2, 1)
    """
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class TokenizedPairs:
    """Token ids of many pairs, as DPO training sees them (before truncation)."""

    prompt_ids: list[list[int]] = field(default_factory=list)
    chosen_ids: list[list[int]] = field(default_factory=list)
    rejected_ids: list[list[int]] = field(default_factory=list)
    prompt_cut: list[int] = field(default_factory=list)
    """Tokens at the end of the prompt's own rendering that prompt + reply renders differently."""

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def extend(self, other: TokenizedPairs) -> None:
        for name in ("prompt_ids", "chosen_ids", "rejected_ids", "prompt_cut"):
            getattr(self, name).extend(getattr(other, name))

    def as_columns(self) -> dict[str, list[list[int]]]:
        """The three columns TRL's trainer reads (``prompt_ids``, ``chosen_ids``, ``rejected_ids``)."""
        return {"prompt_ids": self.prompt_ids, "chosen_ids": self.chosen_ids, "rejected_ids": self.rejected_ids}


def check_renderable(tokenizer, conversational: bool) -> None:
    if conversational and not getattr(tokenizer, "chat_template", None):
        raise UsageError(
            "the model's tokenizer has no chat template, so conversational data cannot be rendered; "
            "convert the data with --style standard"
        )


def _encode(tokenizer, items: list, conversational: bool, generation_prompt: bool = False) -> list[list[int]]:
    if not items:
        return []
    if conversational:
        out = tokenizer.apply_chat_template(
            items, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt, tools=None
        )
        return list(out["input_ids"])
    return list(tokenizer(text=items)["input_ids"])


def tokenize_pairs(tokenizer, prompts: list, chosen: list, rejected: list, batch: int = BATCH) -> TokenizedPairs:
    """Tokenizes pairs of message lists (conversational) or strings (standard) in batches."""
    if not prompts:
        return TokenizedPairs()
    conversational = isinstance(prompts[0], list)
    check_renderable(tokenizer, conversational)
    out = TokenizedPairs()
    for start in range(0, len(prompts), batch):
        p, c, r = (part[start : start + batch] for part in (prompts, chosen, rejected))
        if conversational:
            full_c = [a + b for a, b in zip(p, c, strict=True)]
            full_r = [a + b for a, b in zip(p, r, strict=True)]
        else:
            eos = tokenizer.eos_token or ""
            full_c = [a + (b if b.endswith(eos) else b + eos) for a, b in zip(p, c, strict=True)]
            full_r = [a + (b if b.endswith(eos) else b + eos) for a, b in zip(p, r, strict=True)]
        prompt_ids = _encode(tokenizer, p, conversational, generation_prompt=True)
        chosen_ids = _encode(tokenizer, full_c, conversational)
        rejected_ids = _encode(tokenizer, full_r, conversational)
        for ids, fc, fr in zip(prompt_ids, chosen_ids, rejected_ids, strict=True):
            n = min(common_prefix_length(ids, fc), common_prefix_length(ids, fr))
            out.prompt_ids.append(ids[:n])
            out.chosen_ids.append(fc[n:])
            out.rejected_ids.append(fr[n:])
            out.prompt_cut.append(len(ids) - n)
    return out


def tokenize_pair(tokenizer, prompt, chosen, rejected) -> tuple[list[int], list[int], list[int]]:
    """``(prompt_ids, chosen_ids, rejected_ids)`` of one pair: :func:`tokenize_pairs` of a batch of one."""
    pairs = tokenize_pairs(tokenizer, [prompt], [chosen], [rejected])
    return pairs.prompt_ids[0], pairs.chosen_ids[0], pairs.rejected_ids[0]


def truncate(prompt: list[int], reply: list[int], max_length: int | None, mode: str) -> tuple[list[int], list[int]]:
    """The prompt and reply tokens left of one sequence after TRL's collator truncates it.

    >>> truncate([1, 2, 3], [4, 5], 4, "keep_start"), truncate([1, 2, 3], [4, 5], 4, "keep_end")
    (([1, 2, 3], [4]), ([2, 3], [4, 5]))
    """
    if max_length is None or len(prompt) + len(reply) <= max_length:
        return prompt, reply
    if mode == "keep_start":
        return prompt[:max_length], reply[: max(0, max_length - len(prompt))]
    keep_reply = min(len(reply), max_length)
    return prompt[len(prompt) - (max_length - keep_reply) :] if max_length > keep_reply else [], reply[-keep_reply:]
