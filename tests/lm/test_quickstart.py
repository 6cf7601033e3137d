"""``prefkit quickstart``: the whole job, on a tiny model (fast) and on the real one (slow)."""

import re

import pytest


@pytest.mark.slow
def test_quickstart_reaches_its_target(bundled_model_dir, tmp_path, monkeypatch):
    """The README's main job, ``prefkit quickstart`` with the packaged recipe, on the real bundled
    model and the bundled sample; held-out implicit-reward accuracy >= 0.9, interval above 0.5."""
    from prefkit.lm.quickstart import QuickstartConfig, quickstart

    # The fixture materialized the bundled model under this cache; the recipe names it.
    monkeypatch.setenv("PREFKIT_CACHE", str(bundled_model_dir.parents[1]))
    result = quickstart(QuickstartConfig(directory=str(tmp_path / "qs")))
    accuracy = result.eval.metrics.implicit_reward_accuracy
    assert result.eval.metrics.pairs == 120
    assert accuracy.value >= 0.9 and accuracy.low > 0.5, accuracy
    assert result.conversions["train"].rejected == 3 and result.train.tokens.dropped == 0


def test_quickstart_command_runs_every_step(tiny_model_dir, tmp_path):
    """The whole flow on a tiny random model: every stage runs, prints, and writes its files."""
    from click.testing import CliRunner

    from prefkit.cli import main
    from prefkit.lm.quickstart import packaged_recipe

    recipe = tmp_path / "tiny.yaml"
    text = packaged_recipe().read_text().replace("model: smollm2-135m-instruct", f"model: {tiny_model_dir}")
    recipe.write_text(re.sub(r"max_steps: \d+", "max_steps: 2", text))
    folder = tmp_path / "qs"
    result = CliRunner().invoke(main, ["quickstart", str(folder), "--recipe", str(recipe), "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert "convert train: read 483, written 480, rejected 3" in result.output
    assert "Loading weights" not in result.output  # transformers' progress bars stay hidden
    assert "implicit-reward accuracy" in result.output and "two held-out prompts" in result.output
    assert (folder / "run" / "adapter_model.safetensors").exists() and (folder / "lint.json").exists()
    assert "{'loss'" not in result.output  # logging steps show as table rows, not dicts
