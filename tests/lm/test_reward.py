"""Reward models: ``method: reward`` recipes, every pair accounted for, and a trained head that
ranks held-out pairs better than the untrained one, checked against a direct computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prefkit.errors import ConfigError
from prefkit.lm.reward import conversation_ids, is_reward_model, load_reward_model, pair_rewards
from prefkit.lm.train import load_train_recipe, train
from tests.conftest import RECIPES, write_canonical


def msg(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


def test_a_reward_recipe_checks_its_keys_against_reward_config(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: reward\ndata: {train: t.jsonl}\noutput_dir: out\nbeta: 0.1\n")
    with pytest.raises(ConfigError, match="beta: unknown key .*RewardConfig"):
        load_train_recipe(recipe)
    recipe.write_text("method: ppo\ndata: {train: t.jsonl}\noutput_dir: out\n")
    with pytest.raises(ConfigError, match="method: 'ppo' is not one of dpo, reward"):
        load_train_recipe(recipe)
    recipe.write_text("method: reward\ndata: {train: t.jsonl}\noutput_dir: out\ncenter_rewards_coefficient: 0.01\n")
    config = load_train_recipe(recipe)
    assert type(config.training_arguments()).__name__ == "RewardConfig"
    assert config.training_arguments().center_rewards_coefficient == 0.01


def test_the_hub_reward_recipe_runs_on_a_tiny_model_and_drops_nothing_silently(tiny_model_dir, tmp_path, capsys):
    """The hub recipe, unchanged but for model, data and lengths: pairs longer than max_length are
    left out by name (TRL's RewardTrainer would filter them without a word); the run is a reward
    model that ``score``, ``audit`` and ``eval`` load."""
    long = "word " * 80
    rows = [(msg("user", f"Q{i}"), msg("assistant", f"good {i}"), msg("assistant", f"bad {i}")) for i in range(6)]
    rows += [(msg("user", f"L{i}"), msg("assistant", long), msg("assistant", "short")) for i in range(2)]
    data = write_canonical(tmp_path / "train.jsonl", rows)
    overrides = [
        f"model={tiny_model_dir}",
        f"data.train={data}",
        f"output_dir={tmp_path / 'run'}",
        "bf16=false",
        "gradient_checkpointing=false",
        "max_steps=1",
        "per_device_train_batch_size=2",
        "gradient_accumulation_steps=1",
        "max_length=64",
    ]
    result = train(load_train_recipe(RECIPES / "reward-hh-ultrafeedback.yaml", overrides))
    assert capsys.readouterr().out == ""  # the library prints nothing (transformers would print each log)
    t = result.tokens
    assert (t.read, t.trained, t.dropped, t.dropped_reasons) == (8, 6, 2, {"too_long": 2})
    dropped = [json.loads(line) for line in (tmp_path / "run" / "dropped.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in dropped) == ["p6", "p7"] and {r["line"] for r in dropped} == {7, 8}
    assert result.steps == 1 and is_reward_model(str(tmp_path / "run"))
    assert not is_reward_model(str(tiny_model_dir))
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "SEQ_CLS" and adapter["r"] == 32


def test_reward_training_ranks_held_out_pairs_better_than_the_untrained_head(tiny_model_dir, tmp_path):
    """A tiny model learns which reply its pairs prefer. The untrained head (seeded as training seeds
    it) prefers the "yes" reply of every pair; the pairs prefer "no", so training must turn it
    round: the held-out pairwise accuracy of ``prefkit eval`` goes from 0 to at least 0.9, each
    figure equal to a direct count of one plain forward pass per reply. (The bundled model's
    figures on the sample are bench_audit's.)"""
    from transformers import AutoModelForSequenceClassification, set_seed

    from prefkit.lm.evaluate import EvalConfig, evaluate

    def pairs(start: int, n: int):
        return [
            (msg("user", f"Is {i} a number?"), msg("assistant", f"{i}: no, never"), msg("assistant", f"{i}: yes, sure"))
            for i in range(start, start + n)
        ]

    train_file = write_canonical(tmp_path / "train.jsonl", pairs(0, 64))
    heldout = write_canonical(tmp_path / "heldout.jsonl", pairs(500, 40))
    recipe = tmp_path / "rm.yaml"
    recipe.write_text(
        f"method: reward\nmodel: {tiny_model_dir}\ndata: {{train: {train_file}}}\noutput_dir: {tmp_path / 'rm'}\n"
        "lora: {r: 8, alpha: 16, dropout: 0.0}\nlearning_rate: 0.01\nmax_steps: 24\n"
        "per_device_train_batch_size: 8\nmax_length: 64\nbf16: false\ngradient_checkpointing: false\n"
    )
    train(load_train_recipe(recipe))
    result = evaluate(EvalConfig(model=str(tmp_path / "rm"), data=str(heldout)))
    trained = result.metrics.pairwise_accuracy.value

    model, tokenizer = load_reward_model(str(tmp_path / "rm"))
    rows = [json.loads(line) for line in heldout.read_text().splitlines()]

    def one_by_one(model) -> float:
        with torch.inference_mode():
            score = lambda p, side: model(torch.tensor([conversation_ids(tokenizer, p["prompt"], p[side])])).logits[
                0, 0
            ]
            return float(np.mean([1.0 if score(p, "chosen") > score(p, "rejected") else 0.0 for p in rows]))

    assert trained == one_by_one(model)
    set_seed(0)
    untrained = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1).eval()
    untrained.config.pad_token_id = tokenizer.pad_token_id
    chosen, rejected = pair_rewards(untrained, tokenizer, rows)
    before = float(np.mean(chosen > rejected))
    assert before == one_by_one(untrained)
    assert (before, trained >= 0.9) == (0.0, True), (before, trained)
