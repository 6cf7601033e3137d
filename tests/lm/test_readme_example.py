"""The README's Python example runs as written, on the bundled model."""

import re
import subprocess
import sys

import pytest

from tests.conftest import PROJECT

README = (PROJECT / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(bundled_model_dir, tmp_path):
    """Trains the bundled model for 10 steps: about two minutes on 2 CPU cores."""
    (example,) = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    done = subprocess.run(
        [sys.executable, "-c", example],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PREFKIT_CACHE": str(bundled_model_dir.parents[1]), "PATH": "", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Warning" not in done.stderr, done.stderr[-3000:]  # known-harmless third-party warnings stay silent
    lines = [line for line in done.stdout.splitlines() if re.match(r"\d+ pairs|train \d|\d+ of|held-out", line)]
    assert lines[0] == "480 pairs, 3 rejected: {'empty_response': 1, 'invalid_json': 1, 'non_alternating_turns': 1}"
    train, test = map(int, re.match(r"train (\d+), test (\d+)", lines[1]).groups())
    assert train + test == 480 and 0 < test < 100
    assert re.match(rf"{train} of {train} pairs trained for 10 steps", lines[2])
    accuracy = re.match(r"held-out implicit-reward accuracy ([\d.]+) \(([\d.]+)–([\d.]+)\)$", lines[3])
    assert accuracy, lines[3]
    value, low, high = map(float, accuracy.groups())
    assert low <= value <= high
    assert (tmp_path / "demo" / "run" / "adapter_model.safetensors").is_file()
