"""How the CLI shows things: the rich consoles, one progress bar builder, tables, JSON on request."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

# emoji=False: user text such as a scorer spec "judge:x:" or a reply holding ":smile:" prints as written.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)
_stage: list[str] = []


def last_stage() -> str | None:
    """What the last progress update said the command was doing (``reading a.jsonl``), for an
    internal error's one line; None before any."""
    return _stage[-1] if _stage else None


@contextmanager
def progress_bar(description: str, always: bool = False) -> Iterator[Callable[[str, int, int | None], None]]:
    """One rich bar on stderr for a long stage; yields ``update(description, done, total)``.

    Shown only on a terminal unless ``always``; it disappears when the stage ends.
    """
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not (always or err_console.is_terminal),
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(text: str, done: int, total: int | None) -> None:
            _stage[:] = [text]
            progress.update(task, description=text, completed=done, total=total)

        yield update


def print_json(data: object) -> None:
    """The one JSON object a ``--json`` command prints on stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def counts_text(counts: dict[str, int]) -> str:
    """``{"exact": 3, "near": 1200}`` gives ``"exact 3, near 1,200"``.

    >>> counts_text({"exact": 3, "near": 1200}), counts_text({})
    ('exact 3, near 1,200', 'none')
    """
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def reasons_text(reasons: dict[str, int]) -> str:
    """Reasons by count, most first, one per line."""
    return "\n".join(f"{k} {v:,}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])) or "-"
