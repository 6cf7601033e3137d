"""Every place prefkit leans on another library's private or changing API, in one module.

prefkit overrides three private hooks of TRL's ``DPOTrainer`` and reads a few private attributes;
each is named here with the signature prefkit expects, and ``tests/lm/test_compat.py`` checks that
the installed versions still have them, so an upgrade that moves one fails a test, not a user's
run. The key/value-cache argument that transformers renamed (``past_key_values`` → ``cache``) is
bridged here too, for the oldest transformers prefkit supports and the newest.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

TRL_HOOKS = {
    "_prepare_dataset": ("self", "dataset", "processing_class", "args", "dataset_name"),
    "_precompute_ref_logps": ("self", "dataset", "name", "batch_size"),
    "_get_train_sampler": ("self", "train_dataset"),
}
"""``DPOTrainer`` methods prefkit overrides, with the parameters it calls and overrides them with."""

TORCH_CPU_BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
"""Private ``torch.cpu`` functions that tell whether the CPU computes bf16 natively."""


def hook_parameters(cls: type, name: str) -> tuple[str, ...]:
    """The parameter names of ``cls.name``, as :data:`TRL_HOOKS` states them.

    >>> class Trainer:
    ...     def _prepare_dataset(self, dataset, processing_class, args, dataset_name): ...
    >>> hook_parameters(Trainer, "_prepare_dataset")
    ('self', 'dataset', 'processing_class', 'args', 'dataset_name')
    """
    return tuple(inspect.signature(getattr(cls, name)).parameters)


def dataset_fingerprint(dataset) -> str:
    """A ``datasets.Dataset``'s content fingerprint (private in ``datasets``; what its own cache keys on)."""
    return dataset._fingerprint


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); False where torch cannot tell."""
    import torch

    checks = (getattr(torch.cpu, name, None) for name in TORCH_CPU_BF16_CHECKS)
    return any(check() for check in checks if check is not None)


@cache
def _cache_name() -> str:
    """The name transformers gives the key/value cache: ``cache`` since it renamed ``past_key_values``."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    return "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def with_cache(cache_value: Any) -> dict[str, Any]:
    """The keyword argument that passes a key/value cache to a model's forward, in this transformers' spelling.

    >>> sorted(with_cache(None))[0] in ("cache", "past_key_values")
    True
    """
    return {_cache_name(): cache_value}


def returned_cache(output: Any) -> Any:
    """The key/value cache a model's forward returned."""
    return getattr(output, _cache_name())
