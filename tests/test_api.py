"""The public Python API: every name resolves, every function has a runnable example, and calls
agree with the commands."""

import inspect
import json
import subprocess
import sys

import pytest

import prefkit
from prefkit import api


def test_every_command_of_the_cli_has_its_function_config_and_result_on_import_prefkit():
    """The list comes from the click group, so a new command without a function fails here."""
    from prefkit.cli import main

    commands = sorted(main.commands)
    functions = sorted({"eval": "evaluate"}.get(name, name) for name in commands)
    assert sorted(prefkit.COMMANDS) == functions
    import_prefkit = subprocess.run(
        [sys.executable, "-c", f"import prefkit; print([callable(getattr(prefkit, n)) for n in {functions!r}])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert import_prefkit.stdout.strip() == str([True] * len(functions))
    for name in functions:
        signature = inspect.signature(getattr(api, name))
        returned = signature.return_annotation
        result_type = returned.split("|")[0].strip().split("[")[0]
        assert result_type in prefkit.__all__, f"{name} returns {returned}, not an exported type"
        assert hasattr(getattr(prefkit, result_type), "to_dict"), f"{name}'s result {result_type} has no to_dict"
    exported = set(prefkit.__all__) - {"COMMANDS", "__version__"}
    assert all(isinstance(getattr(prefkit, name), type) or callable(getattr(prefkit, name)) for name in exported)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = prefkit.nope


def test_every_public_function_of_the_api_has_a_docstring_example():
    functions = [f for name, f in inspect.getmembers(api, inspect.isfunction) if not name.startswith("_")]
    public = [f for f in functions if f.__module__ == "prefkit.api"]
    assert {f.__name__ for f in public} >= set(prefkit.COMMANDS)
    assert [f.__name__ for f in public if ">>>" not in (f.__doc__ or "")] == []


def test_convert_then_mix_from_python_agrees_with_the_report_files(tmp_path):
    raw = prefkit.sample(tmp_path, train=40, heldout=8)
    result = prefkit.convert(raw.train, tmp_path / "train.jsonl")
    report = json.loads((tmp_path / "train.report.json").read_text())
    assert report == json.loads(json.dumps(result.to_dict()))
    assert (result.read, result.written, result.rejected) == (43, 40, 3)
    mixed = prefkit.mix([tmp_path / "train.jsonl"], tmp_path / "mix", test_size=0.25, seed=1)
    assert mixed.train + mixed.test == 40 and mixed.test == len(
        (tmp_path / "mix" / "test.jsonl").read_text().splitlines()
    )
    with pytest.raises(prefkit.UsageError, match="weights: 1 weights for 2 sources"):
        prefkit.mix([tmp_path / "train.jsonl", tmp_path / "train.jsonl"], tmp_path / "m2", weights=[1.0], total=5)
    assert not (tmp_path / "m2").exists()


def test_a_mix_recipe_refuses_quick_options(tmp_path):
    recipe = tmp_path / "mix.yaml"
    recipe.write_text("sources: [{path: a.jsonl}]\n")
    with pytest.raises(prefkit.UsageError, match="near: set it in the recipe"):
        prefkit.mix(recipe, tmp_path / "out", near=True)


def test_validate_token_settings_without_a_model_is_a_usage_error(tmp_path):
    with pytest.raises(prefkit.UsageError, match="max_length: token settings need model="):
        prefkit.validate(tmp_path / "x.jsonl", max_length=64)


def test_the_custom_format_keeps_its_old_name_and_reads_parquet(tmp_path):
    import polars as pl

    rows = [{"q": "2+2?", "good": "4", "bad": "5"}, {"q": "3+3?", "good": "6", "bad": "7"}]
    pl.DataFrame(rows).write_parquet(tmp_path / "mine.parquet")
    fields = ["prompt=q", "chosen=good", "rejected=bad"]
    new = prefkit.convert(tmp_path / "mine.parquet", tmp_path / "a.jsonl", format="custom", fields=fields)
    old = prefkit.convert(tmp_path / "mine.parquet", tmp_path / "b.jsonl", format="jsonl", fields=fields)
    assert (new.written, new.sources[0].format, old.sources[0].format) == (2, "custom", "custom")
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
