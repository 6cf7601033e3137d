"""``method: kto``: the pairs unpaired into desirable and undesirable replies, trained on TRL's KTOTrainer."""

from __future__ import annotations

from prefkit.lm.train import load_train_recipe, train
from tests.conftest import write_canonical


def msg(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


def test_kto_trains_a_step_on_every_pair_unpaired(tiny_model_dir, tmp_path, capsys):
    long = "word " * 60
    rows = [
        (msg("user", f"What is {i} + 1?"), msg("assistant", str(i + 1)), msg("assistant", str(i))) for i in range(5)
    ]
    rows.append((msg("user", "Say a lot."), msg("assistant", long), msg("assistant", "No.")))
    data = write_canonical(tmp_path / "train.jsonl", rows)
    recipe = tmp_path / "kto.yaml"
    recipe.write_text(
        f"method: kto\nmodel: {tiny_model_dir}\ndata: {{train: {data}}}\noutput_dir: {tmp_path / 'run'}\n"
        "max_steps: 1\nper_device_train_batch_size: 4\nmax_length: 48\nbf16: false\nbeta: 0.2\n"
        "gradient_checkpointing: false\nlogging_steps: 1\n"
    )
    config = load_train_recipe(recipe)
    assert type(config.training_arguments()).__name__ == "KTOConfig" and config.training_arguments().beta == 0.2
    result = train(config)
    assert capsys.readouterr().out == ""
    t = result.tokens
    # Six pairs, twelve records; the long reply is cut to max_length (KTO keeps it), never dropped.
    assert (t.read, t.trained, t.dropped, t.truncated) == (6, 6, 0, 1)
    assert result.steps == 1 and (tmp_path / "run" / "adapter_model.safetensors").exists()
    assert result.metrics["train_loss"] > 0


def test_kto_trains_on_an_unpaired_file_as_it_is(tiny_model_dir, tmp_path):
    import json

    import pytest

    from prefkit.errors import UsageError

    long = "word " * 60
    records = [
        {"id": f"r{i}", "source": "thumbs", "prompt": msg("user", f"What is {i} + 1?"), "label": i % 3 != 0}
        | {"completion": msg("assistant", str(i + 1) if i % 3 else str(i))}
        for i in range(6)
    ]
    records.append(
        {
            "id": "long",
            "source": "thumbs",
            "prompt": msg("user", "Say a lot."),
            "completion": msg("assistant", long),
            "label": False,
        }
    )
    data = tmp_path / "feedback.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))

    def recipe(method: str):
        path = tmp_path / f"{method}.yaml"
        path.write_text(
            f"method: {method}\nmodel: {tiny_model_dir}\ndata: {{train: {data}}}\noutput_dir: {tmp_path / method}\n"
            "max_steps: 1\nper_device_train_batch_size: 4\nmax_length: 48\nbf16: false\n"
            "gradient_checkpointing: false\nlogging_steps: 1\n"
        )
        return load_train_recipe(path)

    result = train(recipe("kto"))
    t = result.tokens
    # Seven records read and trained as they are (no unpairing), the long one cut, none dropped.
    assert (t.unit, t.read, t.trained, t.dropped, t.truncated) == ("records", 7, 7, 0, 1)
    assert result.steps == 1 and result.metrics["train_loss"] > 0
    for method in ("dpo", "reward"):
        with pytest.raises(UsageError, match=f"holds unpaired records .* method {method} trains on pairs"):
            train(recipe(method))
