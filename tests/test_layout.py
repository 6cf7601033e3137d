"""The layout is the architecture: the data side never imports the model side or the CLI, and the
working columns are named in one place."""

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
                # ``from prefkit import __version__`` is a constant; any other name from the package
                # root goes through its lazy exports to the model side.
                names = [node.module] if [a.name for a in node.names] != ["__version__"] else []
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] in MODEL_LIBRARIES
                or n.startswith(("prefkit.lm", "prefkit.cli", "prefkit.api"))
                or n == "prefkit"  # the package's lazy names reach the model side
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


def test_working_column_names_are_spelled_only_in_the_data_side():
    """``__line``, ``__file`` and the other row-provenance columns are constants of
    ``prefkit/data/columns.py``; the model side and the CLI import them instead of spelling them."""
    offenders = []
    for path in sorted((PROJECT / "prefkit").rglob("*.py")):
        if path.parent.name == "data" or "data" in path.relative_to(PROJECT / "prefkit").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if text.startswith("__") and not text.endswith("__") and text[2:].isidentifier():
                    offenders.append(f"{path.relative_to(PROJECT)}: {text!r}")
    assert offenders == []


def test_import_prefkit_is_light_and_names_load_on_first_use():
    script = """
import sys
import prefkit
light = sorted(m for m in sys.modules if m.split(".")[0] in {"polars", "torch", "transformers", "trl", "datasets"})
convert = prefkit.convert
print(light, prefkit.ConvertConfig.__module__, "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[] prefkit.data.convert False"


def _module_name(path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _prefkit_imports(path, modules: set[str]) -> set[str]:
    """The prefkit modules one file imports, at the top or inside a function (either can close a circle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from prefkit.cli import render`` imports the submodule; ``from prefkit.x import f`` the module.
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("prefkit."):  # the package root is the lazy front door, not a module edge
                found.add(name)
    return found


def test_no_import_circle_inside_prefkit():
    """No module of prefkit reaches itself through its imports (top-level or deferred): a circle
    means two modules each hold half of one idea."""
    paths = sorted((PROJECT / "prefkit").rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    edges = {_module_name(p): _prefkit_imports(p, modules) - {_module_name(p)} for p in paths}

    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(edges[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(edges.get(module, ()))
        return seen

    in_circles = sorted(m for m in edges if m in reachable(m))
    assert in_circles == []


def test_no_function_is_over_80_lines_outside_the_cli_option_lists():
    """Long functions mix stages; each stage is a function of its own, testable alone. The CLI's
    commands are exempt: their decorators are option lists."""
    long = []
    for path in sorted((PROJECT / "prefkit").rglob("*.py")):
        if path.name == "commands.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if ast.get_docstring(node):
                    lines -= node.body[0].end_lineno - node.body[0].lineno + 1
                if lines > 80:
                    long.append(f"{path.relative_to(PROJECT)}:{node.name} ({lines} lines)")
    assert long == []
