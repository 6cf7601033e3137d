"""prefkit convert against the code a user writes today, on an HH-RLHF-sized input.

    python benchmarks/bench_convert.py [--copies 70] [--data ../shared/data]

Builds about 160k pairs at run time from the real HH-RLHF rows in ../shared/data (each copy gets a
unique change in its first Human turn, so no two pairs are equal), then runs, each in its own
process so wall time and peak memory are measured separately:

- baseline: ``datasets.load_dataset("json")`` + ``.map(trl.data_utils.maybe_extract_prompt)`` +
  ``.to_json()`` (a fresh datasets cache, as on a first run);
- prefkit: ``prefkit convert`` (full multi-turn parsing, reject reasons, validation, dedupe).

Prints both wall times (whole process, imports included, and the work alone), the ratio and the
peak resident memory of each.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

BASELINE = """
import sys, time
t0 = time.perf_counter()
from datasets import load_dataset
from trl.data_utils import maybe_extract_prompt
t1 = time.perf_counter()
ds = load_dataset("json", data_files=sys.argv[1], split="train", cache_dir=sys.argv[3])
ds = ds.map(maybe_extract_prompt)
ds.to_json(sys.argv[2])
print(time.perf_counter() - t1, len(ds))
"""

PREFKIT = """
import sys, time
t0 = time.perf_counter()
from prefkit.data.convert import ConvertConfig, convert
t1 = time.perf_counter()
result = convert(ConvertConfig(sources=[sys.argv[1]], output=sys.argv[2]))
print(time.perf_counter() - t1, result.written)
"""


def build_input(data: Path, copies: int, out: Path) -> int:
    """Repeats the real HH rows; copy k prefixes the first Human turn with ``(k)``."""
    rows = [
        json.loads(line)
        for line in gzip.open(data / "hh-rlhf-harmless-base-test.jsonl.gz", "rt", encoding="utf-8")
        if line.strip()
    ]
    n = 0
    with open(out, "w", encoding="utf-8") as handle:
        for k in range(copies):
            tag = f"\n\nHuman: ({k}) "
            for row in rows:
                record = {side: row[side].replace("\n\nHuman: ", tag, 1) for side in ("chosen", "rejected")}
                handle.write(json.dumps(record) + "\n")
                n += 1
    return n


def run(script: str, *args: str) -> dict:
    """Runs a script in a fresh interpreter; returns wall seconds, work seconds, peak RSS (MiB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"benchmark process failed with status {status}")
    work, rows = out.split()
    return {"wall": wall, "work": float(work), "rows": int(rows), "rss_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=70, help="copies of the 2,312 real rows (70 gives 161,840 pairs)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    console = Console(width=120)
    with tempfile.TemporaryDirectory(prefix="prefkit-bench-") as tmp:
        tmp = Path(tmp)
        source = tmp / "hh-sized.jsonl"
        n = build_input(args.data, args.copies, source)
        console.print(f"input: {n:,} pairs, {source.stat().st_size / 2**20:,.0f} MiB")
        base = run(BASELINE, str(source), str(tmp / "baseline.jsonl"), str(tmp / "hf-cache"))
        ours = run(PREFKIT, str(source), str(tmp / "prefkit.jsonl"))

    table = Table(title=f"convert {n:,} HH-RLHF pairs", title_justify="left")
    for column in ("", "wall s (process)", "work s", "pairs/s (work)", "peak RSS MiB", "rows out"):
        table.add_column(column, justify="right")
    for name, r in (("baseline: datasets + TRL", base), ("prefkit convert", ours)):
        table.add_row(
            name,
            f"{r['wall']:.1f}",
            f"{r['work']:.1f}",
            f"{n / r['work']:,.0f}",
            f"{r['rss_mib']:,.0f}",
            f"{r['rows']:,}",
        )
    console.print(table)
    console.print(
        f"speed-up: {base['wall'] / ours['wall']:.1f}x wall, {base['work'] / ours['work']:.1f}x work; "
        f"peak memory ratio prefkit/baseline: {ours['rss_mib'] / base['rss_mib']:.2f}"
    )


if __name__ == "__main__":
    main()
