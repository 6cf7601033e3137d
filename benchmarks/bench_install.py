"""What ``pip install prefkit`` weighs against ``pip install "prefkit[train]"``.

    python benchmarks/bench_install.py [--runs 3]

Each run installs into a fresh venv with ``--no-cache-dir`` (every package fetched and unpacked
again), the core with ``pip install .`` and the training extra with
``pip install -c constraints.txt ".[train]"`` (the CPU build of torch this machine keeps on disk;
without the constraint pip takes a CUDA build of several GB). Prints the install time range and
the venv's size on disk (``du``), with the date and Python version.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"core": ["."], "train": ["-c", "constraints.txt", ".[train]"]}


def install_once(target: list[str]) -> tuple[float, int, int]:
    """Seconds to install, bytes on disk of the venv (minus the empty venv), packages installed."""
    with tempfile.TemporaryDirectory(prefix="prefkit-install-") as tmp:
        env_dir = Path(tmp) / "venv"
        venv.create(env_dir, with_pip=True)
        empty = _du(env_dir)
        started = time.perf_counter()
        subprocess.run(
            [
                env_dir / "bin" / "python",
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-cache-dir",
                "--disable-pip-version-check",
                *target,
            ],
            cwd=ROOT,
            check=True,
        )
        seconds = time.perf_counter() - started
        listed = subprocess.run(
            [env_dir / "bin" / "python", "-m", "pip", "list", "--format", "freeze"],
            capture_output=True,
            text=True,
            check=True,
        )
        return seconds, _du(env_dir) - empty, len(listed.stdout.splitlines())


def _du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{datetime.date.today()}, Python {platform.python_version()}, {args.runs} runs each, --no-cache-dir")
    for name, target in TARGETS.items():
        results = [install_once(target) for _ in range(args.runs)]
        times = [r[0] for r in results]
        size = max(r[1] for r in results) / 2**20
        print(
            f"{name:5s}  pip install {' '.join(target):30s}  {min(times):6.1f}-{max(times):6.1f} s  "
            f"{size:8,.0f} MiB  {results[0][2]} packages"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
