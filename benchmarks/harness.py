"""What every benchmark here shares: running a side in a fresh interpreter, repeating runs, and a
header that says when and with what the figures were taken.

Each side runs in its own process, so wall time and peak memory are its own; a run is repeated
(``--runs``, at least 3) and the figures are quoted as ranges, never the best run alone.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(script: str, *args: str) -> dict:
    """Runs ``script`` with ``python -c``; its last printed line is ``WORK_SECONDS ROWS``. Returns
    wall and work seconds, rows, and the process's own peak resident memory (MiB)."""
    import tempfile

    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=errors, text=True, cwd=ROOT
        )
        out = proc.stdout.read()
        # wait4 on this pid gives this process's own rusage, not the maximum over all children.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if status != 0:
            errors.seek(0)
            raise SystemExit(f"benchmark process failed ({status}):\n{errors.read().decode()[-2000:]}")
    work, rows = out.split()[-2:]
    return {"wall": wall, "work": float(work), "rows": int(rows), "rss_mib": usage.ru_maxrss / 1024}


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """``"2.1–2.4"`` (min–max), or one value when all runs agree to the shown precision."""
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return low if low == high else f"{low}–{high}"


def header(packages: tuple[str, ...]) -> str:
    """Date, machine and the versions of the libraries a benchmark compares."""
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return (
        f"{datetime.date.today().isoformat()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        + ", ".join(versions)
    )


def results_table(title: str, columns: tuple[str, ...], rows: list[list[str]], left: tuple[str, ...] = ()):
    """A rich table of a benchmark's rows; ``left`` names the text columns (the rest are numbers,
    right-aligned)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right")
    for row in rows:
        table.add_row(*row)
    return table
