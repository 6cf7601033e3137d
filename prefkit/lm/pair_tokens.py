"""Pairs into token ids exactly as TRL's ``DPOTrainer`` tokenizes them, in batches.

The one tokenization of prefkit: ``prefkit lint`` audits its output, ``prefkit train`` trains on it
and ``prefkit eval`` scores it, so what lint reports is what training sees. It calls what TRL 1.x
calls (``apply_chat_template`` over the prompt with the generation prompt, and over prompt +
reply; plain text with the EOS token appended to each reply), but on batches of conversations,
which the tokenizer encodes in one call of its Rust code. The reply starts where the tokenized
prompt and the tokenized prompt + reply diverge; usually that is the end of the prompt, and where it
is not, the template rewrote the prompt (``prompt_not_prefix`` in the audit).

Speed without a second implementation: a Hugging Face tokenizer cuts its input at added (special)
tokens before it normalizes or pre-tokenizes anything, so the text on each side of a special token
is encoded on its own. The three renderings of a pair share the prompt up to its last special token
(``...<|im_start|>`` before ``assistant``); that head is encoded once per pair and only the three
short tails after it apart, which gives the same ids as encoding each rendering whole. It is used
only where that holds: the token at the cut strips no whitespace and is not normalized, and the
pre-tokenizer does not treat the first piece of a text differently (Metaspace's ``prepend_scheme:
first``, ByteLevel's ``add_prefix_space``). Elsewhere each rendering is encoded whole.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from prefkit.errors import UsageError

BATCH = 512


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pauses Python's cyclic garbage collector for a block that allocates millions of small lists.

    Token id lists hold no reference cycles, so the collector would only rescan them again and
    again as they pile up (20% of the time on 20k pairs, more on larger sets).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def split_tokens(tokenizer) -> re.Pattern | None:
    """A pattern of the special tokens a rendering may be cut after and encoded in pieces with the
    same ids, or None where this tokenizer does not allow it (see the module docstring)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    pre = json.loads(backend.pre_tokenizer.__getstate__()) if backend.pre_tokenizer is not None else {}
    text = json.dumps(pre)
    if '"Metaspace"' in text or '"add_prefix_space": true' in text:
        return None
    tokens = [
        t.content
        for t in getattr(tokenizer, "added_tokens_decoder", {}).values()
        if t.special and not (t.lstrip or t.rstrip or t.normalized or t.single_word)
    ]
    return re.compile("|".join(re.escape(x) for x in sorted(tokens, key=len, reverse=True))) if tokens else None


def _render(tokenizer, conversations: list, generation_prompt: bool) -> list[str]:
    # What apply_chat_template(tokenize=True) encodes: the rendering, without added special tokens.
    return tokenizer.apply_chat_template(
        conversations, tokenize=False, add_generation_prompt=generation_prompt, tools=None
    )


def _encode_texts(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    backend = tokenizer.backend_tokenizer
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    return [e.ids for e in encode(texts, add_special_tokens=False)]


def _encode_renderings(tokenizer, p: list[str], c: list[str], r: list[str], cut_at: re.Pattern | None):
    """Per pair ``(head, prompt_tail, chosen_tail, rejected_tail)``: the ids of the three renderings are
    ``head + tail``; the head they share before a cut is encoded once (empty where there is no cut)."""
    heads, tails, whole = [], [], []
    for i, (pt, ct, rt) in enumerate(zip(p, c, r, strict=True)):
        cut = 0
        if cut_at is not None:
            for match in cut_at.finditer(pt):
                cut = match.end()
        if cut and ct.startswith(pt[:cut]) and rt.startswith(pt[:cut]):
            heads.append(pt[:cut])
            tails += [pt[cut:], ct[cut:], rt[cut:]]
        else:
            heads.append(None)
            whole.append(i)
    head_ids = _encode_texts(tokenizer, [h for h in heads if h is not None])
    tail_ids = _encode_texts(tokenizer, tails)
    whole_ids = _encode_texts(tokenizer, [x for i in whole for x in (p[i], c[i], r[i])])
    out, h, w = [], 0, 0
    for head in heads:
        if head is None:
            out.append(([], *whole_ids[3 * w : 3 * w + 3]))
            w += 1
        else:
            out.append((head_ids[h], *tail_ids[3 * h : 3 * h + 3]))
            h += 1
    return out


def tokenize_pairs(tokenizer, prompts: list, chosen: list, rejected: list, batch: int = BATCH) -> TokenizedPairs:
    """Tokenizes pairs of message lists (conversational) or strings (standard) in batches."""
    if not prompts:
        return TokenizedPairs()
    conversational = isinstance(prompts[0], list)
    check_renderable(tokenizer, conversational)
    cut_at = split_tokens(tokenizer) if conversational else None
    out = TokenizedPairs()
    for start in range(0, len(prompts), batch):
        p, c, r = (part[start : start + batch] for part in (prompts, chosen, rejected))
        if conversational:
            rendered = _encode_renderings(
                tokenizer,
                _render(tokenizer, p, generation_prompt=True),
                _render(tokenizer, [a + b for a, b in zip(p, c, strict=True)], generation_prompt=False),
                _render(tokenizer, [a + b for a, b in zip(p, r, strict=True)], generation_prompt=False),
                cut_at,
            )
        else:
            # Plain text as TRL gives it to the tokenizer: special tokens added, EOS after each reply.
            eos = tokenizer.eos_token or ""
            full_c = [a + (b if b.endswith(eos) else b + eos) for a, b in zip(p, c, strict=True)]
            full_r = [a + (b if b.endswith(eos) else b + eos) for a, b in zip(p, r, strict=True)]
            encoded = (tokenizer(text=x)["input_ids"] for x in (p, full_c, full_r))
            rendered = (([], *ids) for ids in zip(*encoded, strict=True))
        for head, tp, tc, tr in rendered:
            # The three share ``head``, so the reply boundary is found on the tails alone. Nearly
            # always the prompt's tail starts both others: one C-level comparison settles it.
            k = len(tp)
            n = k if tc[:k] == tp and tr[:k] == tp else min(common_prefix_length(tp, tc), common_prefix_length(tp, tr))
            out.prompt_ids.append(head + tp[:n])
            out.chosen_ids.append(tc[n:])
            out.rejected_ids.append(tr[n:])
            out.prompt_cut.append(k - n)
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


def prompt_token_ids(tokenizer, prompts: list, batch: int = BATCH) -> list[list[int]]:
    """Prompts as the model sees them before its reply: exactly the ``prompt_ids`` training uses.

    Message lists get the chat template with the generation prompt; plain text is tokenized as TRL
    tokenizes a plain prompt (special tokens added).
    """
    if not prompts:
        return []
    conversational = isinstance(prompts[0], list)
    check_renderable(tokenizer, conversational)
    out: list[list[int]] = []
    for start in range(0, len(prompts), batch):
        part = prompts[start : start + batch]
        if conversational:
            out += _encode_texts(tokenizer, _render(tokenizer, part, generation_prompt=True))
        else:
            out += tokenizer(text=part)["input_ids"]
    return out
