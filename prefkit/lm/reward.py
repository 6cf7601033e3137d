"""Reward models: the conversation each one reads, scoring in batches, and training on TRL's ``RewardTrainer``.

One tokenization serves training, ``prefkit score --scorer reward-model:DIR``, ``prefkit audit``
and ``prefkit eval`` on a reward model: the prompt and the reply as one conversation, rendered by
the reward model's own chat template (a policy/reward template mismatch is a known silent
failure), cut to ``max_length`` tokens nowhere: a pair longer than that is left out of training
with the reason ``too_long`` (TRL would drop it without a word) and scored on its first
``max_length`` tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prefkit.data.columns import LINE
from prefkit.lm.loading import _loading, resolve_model
from prefkit.results import TokenReject


def as_messages(prompt) -> list[dict]:
    """A prompt as messages (a text prompt is one user turn).

    >>> as_messages("2 + 2?")
    [{'role': 'user', 'content': '2 + 2?'}]
    """
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def as_reply(reply) -> list[dict]:
    """A reply as messages (a text reply is one assistant turn)."""
    return [{"role": "assistant", "content": reply}] if isinstance(reply, str) else list(reply)


def conversation_ids(tokenizer, prompt, reply) -> list[int]:
    """The token ids a reward model reads for ``prompt`` followed by ``reply``: its own chat template
    when it has one, else the turns' text joined by blank lines.

    >>> from prefkit.lm.loading import load_tokenizer
    >>> tokenizer = load_tokenizer("smollm2-135m-instruct")
    >>> ids = conversation_ids(tokenizer, "2 + 2?", "4")
    >>> tokenizer.decode(ids).endswith("<|im_start|>assistant\\n4<|im_end|>\\n")
    True
    """
    conversation = as_messages(prompt) + as_reply(reply)
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer("\n\n".join(m["content"] for m in conversation))["input_ids"]


def is_reward_model(target: str) -> bool:
    """Whether a model is a reward model: a run trained with ``method: reward``, a LoRA adapter of a
    sequence-classification task, or a model whose architecture ends in ``ForSequenceClassification``."""
    import json

    path = Path(resolve_model(target))  # a hub id stays as it is: no such files here, so not a reward model
    for name, test in (
        ("prefkit_run.json", lambda d: d.get("recipe", {}).get("method") == "reward"),
        ("adapter_config.json", lambda d: d.get("task_type") == "SEQ_CLS"),
        ("config.json", lambda d: any(a.endswith("ForSequenceClassification") for a in d.get("architectures") or [])),
    ):
        if (path / name).is_file() and test(json.loads((path / name).read_text(encoding="utf-8"))):
            return True
    return False


def load_reward_model(target: str, trust_remote_code: bool = False):
    """``(model, tokenizer)`` of a reward model: a folder or hub id of an
    ``AutoModelForSequenceClassification``, or a ``prefkit train`` run with ``method: reward`` (a
    LoRA adapter with its trained head, loaded onto its base)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model(target)
    adapter = (Path(path) / "adapter_config.json").exists()
    with _loading(target):
        if adapter:
            from peft import PeftConfig, PeftModel

            base = resolve_model(PeftConfig.from_pretrained(path).base_model_name_or_path)
            model = AutoModelForSequenceClassification.from_pretrained(
                base, num_labels=1, trust_remote_code=trust_remote_code, use_safetensors=True
            )
            model = PeftModel.from_pretrained(model, path)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                path, trust_remote_code=trust_remote_code, use_safetensors=True
            )
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def reward_scores(model, tokenizer, ids: list[list[int]], batch_size: int = 16, max_length: int = 1024) -> np.ndarray:
    """The reward model's score of each tokenized conversation, longest first in padded batches."""
    import torch

    from prefkit.lm.logprobs import padded

    ids = [row[:max_length] for row in ids]
    order = sorted(range(len(ids)), key=lambda k: -len(ids[k]))
    values = np.zeros(len(ids))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch, mask = padded([ids[k] for k in rows], max(len(ids[k]) for k in rows), tokenizer.pad_token_id)
            logits = model(input_ids=batch, attention_mask=mask).logits
            values[rows] = logits[:, 0].float().numpy()
    return values


def pair_rewards(model, tokenizer, pairs: list[dict], batch_size: int = 16, max_length: int = 1024):
    """``(chosen scores, rejected scores)`` of canonical pairs (``prompt``, ``chosen``, ``rejected``)."""
    ids = [conversation_ids(tokenizer, p["prompt"], p[side]) for p in pairs for side in ("chosen", "rejected")]
    values = reward_scores(model, tokenizer, ids, batch_size, max_length)
    return values[0::2], values[1::2]


def reward_dataset(pairs, tokenizer, max_length: int | None):
    """The pairs tokenized as ``RewardTrainer`` takes them (``chosen_ids``, ``rejected_ids``, and
    ``margin`` where the data has margins, null read as 0), and the token audit in the form
    :func:`prefkit.lm.train.token_summary` reads: a pair longer than ``max_length`` is left out as
    ``too_long``, each one recorded."""
    import datasets

    columns = {"chosen_ids": [], "rejected_ids": []}
    has_margin = "margin" in pairs.column_names and any(m is not None for m in pairs["margin"])
    if has_margin:
        columns["margin"] = []
    records = []
    for row in pairs:
        chosen = conversation_ids(tokenizer, row["prompt"], row["chosen"])
        rejected = conversation_ids(tokenizer, row["prompt"], row["rejected"])
        longest = max(len(chosen), len(rejected))
        if max_length is not None and longest > max_length:
            detail = f"{longest} tokens > max_length {max_length}"
            records.append(TokenReject(row.get("source"), row.get(LINE), row.get("id"), "too_long", detail, True))
            continue
        columns["chosen_ids"].append(chosen)
        columns["rejected_ids"].append(rejected)
        if has_margin:
            columns["margin"].append(float(row["margin"] or 0.0))
    audit = {
        "pairs": len(pairs),
        "dropped": len(records),
        "errors": len(records),
        "reasons": {"too_long": len(records)} if records else {},
        "truncated": {"pairs": 0},
        "long_prompts": {"trimmed": 0},
        "error_records": records,
    }
    return datasets.Dataset.from_dict(columns), audit
