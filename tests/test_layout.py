"""The layout is the architecture: the data side never imports the model side's libraries."""

import ast
import subprocess
import sys

from tests.conftest import PROJECT

MODEL_LIBRARIES = {"torch", "transformers", "trl", "peft", "accelerate", "gguf"}


def test_no_data_module_imports_a_model_library_anywhere_in_its_source():
    offenders = []
    for path in sorted((PROJECT / "prefkit" / "data").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] in MODEL_LIBRARIES | {"prefkit"}
                and (n.split(".")[0] in MODEL_LIBRARIES or n.startswith("prefkit.lm"))
            ]
    assert offenders == []


def test_the_cli_and_a_data_command_load_no_model_library(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        '{"chosen": "\\n\\nHuman: Q\\n\\nAssistant: a", "rejected": "\\n\\nHuman: Q\\n\\nAssistant: b"}\n'
    )
    script = f"""
import sys
from click.testing import CliRunner
import prefkit.data.card, prefkit.data.gates, prefkit.data.mix, prefkit.data.validate
from prefkit.cli import main
runner = CliRunner()
assert runner.invoke(main, ["convert", {str(tmp_path / "a.jsonl")!r}, "-o", {str(tmp_path / "o.jsonl")!r}]).exit_code == 0
assert runner.invoke(main, ["validate", {str(tmp_path / "o.jsonl")!r}]).exit_code == 0
print(sorted(m for m in sys.modules if m.split(".")[0] in {sorted(MODEL_LIBRARIES)!r}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
