"""The CI integrations, run for real: the GitHub Action's script and the pre-commit hook."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT, canonical_row


def write_good_and_bad(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good, bad = folder / "good.jsonl", folder / "bad.jsonl"
    good.write_text("".join(json.dumps(canonical_row(id=f"g{i}")) + "\n" for i in range(3)))
    rows = [canonical_row(id="b0"), canonical_row(id="b1", rejected=canonical_row()["chosen"]), canonical_row(id="b2")]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return good, bad


def run_action(
    tmp_path: Path, files: str, fail_on: str = "any", fmt: str = ""
) -> tuple[subprocess.CompletedProcess, Path, Path]:
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    for path in (summary, outputs):
        path.write_text("")
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(outputs),
        "PREFKIT_FILES": files,
        "PREFKIT_FORMAT": fmt,
        "PREFKIT_FAIL_ON": fail_on,
    }
    done = subprocess.run(
        ["bash", str(PROJECT / "action" / "validate.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done, summary, outputs


def test_action_passes_good_files_and_annotates_each_failing_record(tmp_path):
    write_good_and_bad(tmp_path / "data")
    done, summary, outputs = run_action(tmp_path, "data/good.jsonl")
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs.read_text() == "ok=true\nfailing=0\n"
    assert "## prefkit validate: passed" in summary.read_text()

    done, summary, outputs = run_action(tmp_path, "data/**/*.jsonl")
    assert done.returncode == 1
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error")]
    assert errors == [
        "::error file=data/bad.jsonl,line=2::replies_differ: identical_responses: chosen and rejected replies differ"
    ]
    assert outputs.read_text() == "ok=false\nfailing=1\n"
    assert "| `data/bad.jsonl` | 3 | 1 | replies_differ (1) |" in summary.read_text()
    # 1 of 6 records fails: a 20% allowance passes the step, and the summary says so
    done, summary, outputs = run_action(tmp_path, "data/*.jsonl", fail_on="0.2")
    assert done.returncode == 0 and outputs.read_text() == "ok=true\nfailing=1\n"


def test_action_dry_run_of_a_raw_file_and_a_pattern_matching_nothing(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text(
        json.dumps({"chosen": "\n\nHuman: Q\n\nAssistant: a", "rejected": "\n\nHuman: Q\n\nAssistant: a"}) + "\n"
    )
    done, _, outputs = run_action(tmp_path, "raw.jsonl", fmt="hh-rlhf")
    assert done.returncode == 1
    assert (
        "::error file=raw.jsonl,line=1::identical_responses: chosen and rejected replies are the same text"
        in done.stdout
    )
    done, _, _ = run_action(tmp_path, "missing/*.jsonl")
    assert done.returncode == 2 and "no file matches 'missing/*.jsonl'" in done.stdout


@pytest.mark.install
def test_pre_commit_try_repo_passes_the_good_file_and_fails_the_bad_one(tmp_path):
    if not (PROJECT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("pre-commit try-repo needs prefkit as a git checkout")
    data_repo = tmp_path / "data-repo"
    good, bad = write_good_and_bad(data_repo)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=data_repo, check=True)
    subprocess.run([*git, "add", "."], cwd=data_repo, check=True)
    env = os.environ | {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(PROJECT), "prefkit-validate"]

    def run(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*pre_commit, "--files", path.name], cwd=data_repo, env=env, capture_output=True, text=True, check=False
        )

    passed = run(good)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "prefkit validate" in passed.stdout and "Passed" in passed.stdout
    failed = run(bad)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout and "identical_responses" in failed.stdout and "line 2" in failed.stdout
    assert "failed: 1 of 3 records fail" in failed.stdout
