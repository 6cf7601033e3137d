"""The model's own answers: batched, seeded generation with transformers (the default engine).

Prompts come as token ids (rendered by :func:`prefkit.lm.pair_tokens.prompt_token_ids`, as training
renders them). They are sorted by length and cut into batches of ``batch_size // n`` prompts, so
one ``model.generate`` call (left-padded, with the key/value cache) decodes about ``batch_size``
sequences: on a CPU a decoding step costs little more for 64 sequences than for 16. Each
batch seeds torch's generator from the run's seed and the batch's index, so the same seed gives the
same completions on a CPU, and a resumed run (or a batch run on another worker) gives what an
uninterrupted run gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prefkit.lm.logprobs import padded


@dataclass(frozen=True)
class SamplingSettings:
    n: int = 1
    temperature: float = 0.0
    """0 is greedy decoding."""
    top_p: float = 1.0
    max_new_tokens: int = 128
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    """``stop`` (the model ended its turn) or ``length`` (cut at ``max_new_tokens``)."""
    tokens: int
    """Tokens generated, the end-of-turn token included when there is one."""

    def to_dict(self) -> dict:
        """``{"text", "finish_reason", "tokens"}``: the record a generated file holds.

        >>> Completion("4", "stop", 2).to_dict()
        {'text': '4', 'finish_reason': 'stop', 'tokens': 2}
        """
        return {"text": self.text, "finish_reason": self.finish_reason, "tokens": self.tokens}


def batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Prompt indices sorted by length (longest first, ties in input order), cut into batches.

    Longest first so a run that would run out of memory does so on its first batch.

    >>> batches([3, 9, 5, 9, 1], 2)
    [[1, 3], [2, 0], [4]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def prompt_batches(prompts: list[list[int]], n: int, batch_size: int) -> list[list[int]]:
    """:func:`batches` of ``batch_size // n`` prompts (at least one), each answered ``n`` times."""
    return batches([len(p) for p in prompts], max(1, batch_size // n))


def batch_seed(seed: int, index: int) -> int:
    """The seed of batch ``index`` of a run seeded with ``seed``: fixed by the two alone.

    >>> batch_seed(0, 3) == batch_seed(0, 3), batch_seed(0, 3) == batch_seed(0, 4)
    (True, False)
    """
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:4], "little")


def stop_ids(model, tokenizer) -> set[int]:
    """Token ids that end an answer: the generation config's EOS ids, else the tokenizer's."""
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def generate_batch(
    model, tokenizer, prompts: list[list[int]], settings: SamplingSettings, seed: int
) -> list[list[Completion]]:
    """``settings.n`` completions of each prompt, from one ``model.generate`` call."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(p) for p in prompts)
    ids, mask = padded(prompts, width, pad, left=True)
    device = next(model.parameters()).device
    if settings.temperature > 0:
        decoding = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p, "top_k": 0}
    else:
        decoding = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=settings.max_new_tokens,
                num_return_sequences=settings.n,
                pad_token_id=pad,
                **decoding,
            )
    ends = stop_ids(model, tokenizer)
    completions: list[list[Completion]] = [[] for _ in prompts]
    for row, generated in enumerate(out[:, width:].tolist()):
        stop = next((i for i, token in enumerate(generated) if token in ends), None)
        kept = generated if stop is None else generated[:stop]
        completions[row // settings.n].append(
            Completion(
                text=tokenizer.decode(kept, skip_special_tokens=True).strip(),
                finish_reason="length" if stop is None else "stop",
                tokens=len(kept) + (stop is not None),
            )
        )
    return completions


def generate_all(
    model,
    tokenizer,
    prompts: list[list[int]],
    settings: SamplingSettings,
    batch_size: int = 64,
    skip: Callable[[int], bool] = lambda index: False,
) -> Iterator[tuple[int, list[int], list[list[Completion]]]]:
    """Yields ``(batch index, prompt indices, completions)`` batch by batch (``batch_size`` sequences
    a batch, ``n`` of each prompt); batches for which ``skip(index)`` is true (done by an earlier,
    interrupted run) are not generated."""
    model.eval()
    for index, rows in enumerate(prompt_batches(prompts, settings.n, batch_size)):
        if skip(index):
            continue
        yield (
            index,
            rows,
            generate_batch(model, tokenizer, [prompts[i] for i in rows], settings, batch_seed(settings.seed, index)),
        )
