"""The private and changing APIs prefkit leans on still exist, with the signatures prefkit expects."""

import datasets
import pytest
import torch
from trl import DPOTrainer

from prefkit.lm.compat import TORCH_CPU_BF16_CHECKS, TRL_HOOKS, dataset_fingerprint, hook_parameters


@pytest.mark.parametrize("name", sorted(TRL_HOOKS))
def test_each_trl_hook_prefkit_overrides_still_exists_with_its_signature(name):
    assert hook_parameters(DPOTrainer, name) == TRL_HOOKS[name]


def test_the_prefkit_trainer_overrides_exactly_the_named_hooks():
    from prefkit.lm.dpo_trainer import PrefkitDPOTrainer

    overridden = {name for name in vars(PrefkitDPOTrainer) if name.startswith("_") and hasattr(DPOTrainer, name)}
    assert overridden - {"__init__", "__doc__", "__module__", "__qualname__"} == set(TRL_HOOKS)
    for name in TRL_HOOKS:
        assert hook_parameters(PrefkitDPOTrainer, name) == TRL_HOOKS[name]


def test_dataset_fingerprint_is_a_content_key():
    a = datasets.Dataset.from_dict({"x": [1, 2]})
    assert dataset_fingerprint(a) == dataset_fingerprint(datasets.Dataset.from_dict({"x": [1, 2]}))
    assert dataset_fingerprint(a) != dataset_fingerprint(a.map(lambda r: {"x": r["x"] + 1}))


def test_torch_still_has_at_least_one_cpu_bf16_check():
    assert any(callable(getattr(torch.cpu, name, None)) for name in TORCH_CPU_BF16_CHECKS)


def test_scoring_passes_the_cache_without_a_deprecation(tiny_model_dir, recwarn):
    """prefkit's own forward calls use the current cache argument: no FutureWarning from them."""
    from transformers import AutoModelForCausalLM

    from prefkit.lm.logprobs import reply_logps

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    batch = [([1, 2, 3], [4, 5], [6]), ([1, 2, 7], [8], [9, 10])]
    logps = reply_logps(model, batch, batch_size=2, max_length=64)
    assert logps.chosen.shape == (2,)
    deprecations = [w for w in recwarn if issubclass(w.category, DeprecationWarning | FutureWarning)]
    assert [str(w.message) for w in deprecations if "cache" in str(w.message)] == []
