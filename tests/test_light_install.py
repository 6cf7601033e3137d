"""``pip install prefkit`` is the data side alone: validate and convert work in a fresh venv without torch."""

import json
import subprocess
import venv

import pytest

from tests.conftest import PROJECT, canonical_row


@pytest.mark.install
def test_core_install_validates_and_converts_without_torch(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(PROJECT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True
    )
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert {"prefkit", "polars", "pandera"} <= names
    assert not names & {"torch", "transformers", "trl", "peft", "accelerate"}

    (tmp_path / "good.jsonl").write_text(json.dumps(canonical_row()) + "\n")
    (tmp_path / "raw.jsonl").write_text(
        json.dumps({"chosen": "\n\nHuman: Q\n\nAssistant: a", "rejected": "\n\nHuman: Q\n\nAssistant: b"}) + "\n{bad\n"
    )
    prefkit = env_dir / "bin" / "prefkit"
    validated = subprocess.run(
        [prefkit, "validate", "good.jsonl"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert validated.returncode == 0 and "ok good.jsonl: 1 rows" in validated.stdout
    converted = subprocess.run(
        [prefkit, "convert", "raw.jsonl", "-o", "out.jsonl", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert converted.returncode == 0, converted.stderr
    assert (json.loads(converted.stdout)["written"], json.loads(converted.stdout)["rejected"]) == (1, 1)
    no_extra = subprocess.run(
        [prefkit, "train", "recipe.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert no_extra.returncode == 2
    assert "pip install 'prefkit[train]'" in no_extra.stderr
    modules = subprocess.run(
        [python, "-c", "import sys, prefkit.cli, prefkit.data.validate; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert modules.stdout.strip() == "False"
