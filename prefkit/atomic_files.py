"""Atomic files: a run that fails or is killed never leaves a half-written output behind.

Every output prefkit writes, on the data side and the model side, goes through :func:`atomic_path`:
a temporary file that replaces the target only when it is complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path


def _anonymous_file(folder: Path) -> int | None:
    """A file descriptor of a new file in ``folder`` with no name yet (Linux ``O_TMPFILE``), or None."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(folder, flag | os.O_RDWR, 0o644)
    except OSError:  # a filesystem without O_TMPFILE support
        return None


@contextmanager
def atomic_path(path: Path):
    """Yields a temporary path to write; it replaces ``path`` only if the block succeeds.

    Where the system allows, the temporary file has no name until it is complete (``O_TMPFILE``),
    so a process killed mid-write, even by SIGKILL, leaves nothing behind; it is linked under a
    staging name and renamed over ``path`` in one step at the end. Elsewhere a hidden sibling
    ``.NAME.tmp-PID`` is written and removed on any error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = _anonymous_file(path.parent)
    if fd is None:
        try:
            yield staged
            os.replace(staged, path)
        finally:
            staged.unlink(missing_ok=True)
        return
    try:
        yield Path(f"/proc/self/fd/{fd}")
        # A directory fd makes Python call linkat(AT_SYMLINK_FOLLOW), which follows the /proc
        # link to the unnamed file; plain link() would try to link the /proc entry itself.
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(f"/proc/self/fd/{fd}", staged.name, dst_dir_fd=folder, follow_symlinks=True)
        finally:
            os.close(folder)
        try:
            os.replace(staged, path)
        finally:
            staged.unlink(missing_ok=True)
    finally:
        os.close(fd)


@contextmanager
def line_sink(path: Path):
    """Yields a function that appends text lines to ``path``, renamed into place at the end."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:

        def write(lines: Iterable[str]) -> None:
            for line in lines:
                handle.write(line)
                handle.write("\n")

        yield write


def write_json(data: object, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_lines(lines: Iterable[str], path: Path) -> None:
    with line_sink(path) as write:
        write(lines)


def check_outputs(outputs: Iterable[tuple[str, Path | str | None]], inputs: Iterable[Path | str] = ()) -> None:
    """Refuses, before anything is written, an output that is one of the inputs or two outputs that
    are one file; ``outputs`` are ``(option name, path)`` pairs (a None path is not written).

    Paths are compared resolved (``./a.jsonl``, ``a.jsonl`` and a symlink to it are one file).

    >>> check_outputs([("-o", "same.jsonl")], ["./same.jsonl"])
    Traceback (most recent call last):
    ...
    prefkit.errors.UsageError: -o same.jsonl is an input: writing it would replace the data it reads; choose another path
    >>> check_outputs([("-o", "x.jsonl"), ("--rejects", "x.jsonl")])
    Traceback (most recent call last):
    ...
    prefkit.errors.UsageError: -o and --rejects both name x.jsonl: give each output its own path
    """
    from prefkit.errors import UsageError

    read = {_identity(p): p for p in inputs}
    written: dict[str, str] = {}
    for name, path in outputs:
        if path is None:
            continue
        key = _identity(path)
        if key in read:
            raise UsageError(
                f"{name} {path} is an input: writing it would replace the data it reads; choose another path"
            )
        if key in written:
            raise UsageError(f"{written[key]} and {name} both name {path}: give each output its own path")
        written[key] = name


def _identity(path: Path | str) -> str:
    """One key per file: the resolved path, or for an existing file its device and inode (hard links too)."""
    real = os.path.realpath(path)
    try:
        stat = os.stat(real)
    except OSError:
        return real
    return f"{stat.st_dev}:{stat.st_ino}"
