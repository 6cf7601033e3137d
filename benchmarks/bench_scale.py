"""Memory and time of the data commands at the sizes real mixtures have (issue 30).

Builds a canonical file from the real HH-RLHF harmless-base rows in ``../shared/data``, repeated with
a unique suffix per copy (generated at run time, never committed), then runs each command in a
fresh interpreter and prints its wall time and peak resident memory, side by side with the code at
``--before`` (a checkout of an earlier prefkit, e.g. ``git worktree add /tmp/before c3f00c3``) when given.

    python benchmarks/bench_scale.py --pairs 100000 400000 --runs 3 [--before /tmp/before]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, header, spread

SHARED = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
COMMANDS = {
    "convert": "prefkit.convert({raw!r}, {work!r} + '/conv.jsonl')",
    "validate": "prefkit.validate({pairs!r})",
    "card": "prefkit.card({pairs!r}, {work!r} + '/card/README.md')",
    "dedupe": "prefkit.dedupe({pairs!r}, {work!r} + '/dedupe/out.jsonl')",
    "mix": "prefkit.mix({pairs!r}, {work!r} + '/mix', test_size=0.1)",
    "mix-near": "prefkit.mix({pairs!r}, {work!r} + '/mix', test_size=0.1, near=True)",
    "validate-gates": "prefkit.validate([{pairs!r}], max_duplicate_share=1.0, fail_on='never')",
}


def build(pairs: int, folder: Path) -> tuple[Path, Path]:
    """A raw HH-RLHF file of ``pairs`` records (each copy's prompt made unique) and its canonical conversion."""
    rows = [json.loads(line) for line in gzip.open(SHARED, "rt")]
    raw = folder / "raw.jsonl"
    with open(raw, "w") as out:
        for i in range(pairs):
            row = rows[i % len(rows)]
            tag = f" (copy {i // len(rows)})"
            first = row["chosen"].index("\n\nAssistant:")
            chosen = row["chosen"][:first] + tag + row["chosen"][first:]
            first = row["rejected"].index("\n\nAssistant:")
            rejected = row["rejected"][:first] + tag + row["rejected"][first:]
            out.write(json.dumps({"chosen": chosen, "rejected": rejected}) + "\n")
    canonical = folder / "pairs.jsonl"
    subprocess.run([sys.executable, "-c", f"import prefkit; prefkit.convert({str(raw)!r}, {str(canonical)!r})"], check=True)
    return raw, canonical


def run(command: str, raw: Path, pairs: Path, code: Path | None) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one command in a fresh interpreter."""
    with tempfile.TemporaryDirectory(dir=pairs.parent) as work:
        script = "import prefkit; " + COMMANDS[command].format(raw=str(raw), pairs=str(pairs), work=work)
        env = dict(os.environ, PYTHONPATH=str(code)) if code else os.environ
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=code or ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        if status:
            raise SystemExit(f"{command} failed ({status})")
        return time.perf_counter() - started, usage.ru_maxrss / 2**20


def _cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", nargs="+", default=list(COMMANDS))
    parser.add_argument("--before", type=Path, help="a checkout of the prefkit to compare with")
    args = parser.parse_args()
    print(header(("polars", "pyarrow", "pandera", "numpy")))
    print(f"CPU: {_cpu_name()}; {os.cpu_count()} cores")
    sides = [("now", None)] + ([("before", args.before)] if args.before else [])
    print("| pairs | command | " + " | ".join(f"{name} s | {name} GiB" for name, _ in sides) + " |")
    for n in args.pairs:
        with tempfile.TemporaryDirectory() as tmp:
            raw, pairs = build(n, Path(tmp))
            for command in args.commands:
                cells = []
                for _, code in sides:
                    times, peaks = zip(*(run(command, raw, pairs, code) for _ in range(args.runs)), strict=True)
                    cells += [spread(list(times)), spread(list(peaks), "{:.2f}")]
                print(f"| {n:,} | {command} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
