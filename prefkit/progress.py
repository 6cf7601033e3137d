"""The one progress hook every long library call takes.

The library never draws a bar; it calls ``progress(description, done, total)`` and the caller (the
CLI's rich bar, a notebook, a log line) shows it. ``total`` is None while a stage cannot know its
size yet (a stream of unknown length).
"""

from __future__ import annotations

from collections.abc import Callable

ReportProgress = Callable[[str, int, "int | None"], None]
"""``progress("converting a.jsonl", 3, None)``: a stage's description, units done, and units in all (or None)."""
