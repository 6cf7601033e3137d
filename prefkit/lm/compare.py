"""``prefkit compare``: the base and the trained model's answers to the same prompts, side by side."""

from __future__ import annotations

from dataclasses import dataclass

from prefkit.config import DEFAULT_SEED, check_fields, option
from prefkit.errors import UsageError
from prefkit.lm.loading import MODEL_HELP, TRUST_REMOTE_CODE_HELP, load_policy
from prefkit.results import Result


@dataclass
class CompareConfig:
    """Options of ``prefkit compare``."""

    model: str = option(help=MODEL_HELP)
    prompts: list[str] = option(help="User prompts to answer.")
    ref: str | None = option(None, "Base model; default for an adapter: its base with adapters disabled.")
    max_new_tokens: int = option(128, "Tokens to generate per answer.", min=1)
    sample: bool = option(False, "Sample (seeded) instead of greedy decoding.")
    temperature: float = option(0.7, "Sampling temperature.", min=0, min_open=True)
    seed: int = option(DEFAULT_SEED, "Seed for sampling.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)

    def __post_init__(self) -> None:
        check_fields(self)


def read_prompt_texts(path: str) -> list[str]:
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
    """One answer to each prompt, through the batched engine of ``prefkit generate``: each prompt
    one user turn under the chat template (plain text without one), as training renders it."""
    from prefkit.lm.pair_tokens import prompt_token_ids
    from prefkit.lm.sampling import SamplingSettings, generate_all

    chat = bool(getattr(tokenizer, "chat_template", None))
    rendered = prompt_token_ids(tokenizer, [[{"role": "user", "content": p}] if chat else p for p in prompts])
    settings = SamplingSettings(
        temperature=config.temperature if config.sample else 0.0, max_new_tokens=config.max_new_tokens, seed=config.seed
    )
    answers = [""] * len(prompts)
    for _, rows, completions in generate_all(model, tokenizer, rendered, settings):
        for row, (completion,) in zip(rows, completions, strict=True):
            answers[row] = completion.text
    return answers


@dataclass
class Answers:
    """One prompt's answers: the base model's (before training) and the trained model's."""

    prompt: str
    base: str
    trained: str


@dataclass
class CompareResult(Result):
    """Both models' answers to each prompt, in prompt order; ``reference`` says what answered "before"."""

    model: str
    reference: str
    answers: list[Answers]


def compare(config: CompareConfig) -> CompareResult:
    """Answers of the base and the trained model to each prompt, in prompt order."""
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
    answers = [Answers(p, b, t) for p, b, t in zip(config.prompts, base, trained, strict=True)]
    return CompareResult(config.model, config.ref or "base model (adapters disabled)", answers)
