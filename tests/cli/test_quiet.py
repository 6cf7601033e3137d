"""Harmless third-party noise is hidden unless -v; other warnings still show."""

import os
import subprocess
import sys

QUIET_VARIABLES = {
    "HF_DATASETS_DISABLE_PROGRESS_BARS",
    "HF_HUB_DISABLE_PROGRESS_BARS",
    "TRANSFORMERS_VERBOSITY",
    "TOKENIZERS_PARALLELISM",
}

SCRIPT = """
import sys, warnings
from prefkit.cli.quiet import quiet_third_parties
quiet_third_parties(verbose=sys.argv[1] == "1")
warnings.warn("`gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned memory won't be used.")
warnings.warn("`past_key_values` is deprecated and will be removed in version 5.40.0 for `LlamaForCausalLM.forward`. Use `cache` instead.", FutureWarning)
warnings.warn("a real problem", UserWarning)
import os
print(os.environ.get("HF_DATASETS_DISABLE_PROGRESS_BARS"))
"""


def run(verbose: bool) -> subprocess.CompletedProcess:
    # A CLI test earlier in this process may have set the variables quiet mode sets.
    env = {k: v for k, v in os.environ.items() if k not in QUIET_VARIABLES}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, "1" if verbose else "0"], capture_output=True, text=True, check=True, env=env
    )


def test_known_noise_is_hidden_and_real_warnings_stay():
    quiet = run(verbose=False)
    assert "gradient_checkpointing" not in quiet.stderr and "pin_memory" not in quiet.stderr
    assert "past_key_values" not in quiet.stderr
    assert "a real problem" in quiet.stderr and quiet.stdout.strip() == "1"


def test_verbose_shows_everything():
    loud = run(verbose=True)
    assert "gradient_checkpointing" in loud.stderr and "pin_memory" in loud.stderr and "past_key_values" in loud.stderr
    assert loud.stdout.strip() == "None"


def test_the_cli_has_a_verbose_flag():
    from click.testing import CliRunner

    from prefkit.cli import main

    assert "--verbose" in CliRunner().invoke(main, ["--help"]).output
