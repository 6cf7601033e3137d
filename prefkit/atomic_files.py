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
