"""A pytest plugin: a DeprecationWarning or FutureWarning that prefkit's own code provokes fails the test.

A library deprecates an API by warning inside it; the warning's frame is the library's (or torch's
``Module.__call__``), so pytest's ``filterwarnings`` by module cannot tell prefkit's call from
TRL's. This plugin looks at who called: it walks out of the warning library's own frames (and the
plumbing between, torch and the standard library) to the first frame of another package. When that
package is prefkit, the warning is raised as an error the day a release deprecates what prefkit
calls. Deprecations that TRL or PEFT provoke stay warnings: prefkit cannot act on them (its CLI
hides the known ones).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

PREFKIT = str(Path(__file__).resolve().parents[1] / "prefkit")
PLUMBING = {"torch", "functools", "contextlib", "typing", "warnings", "dataclasses"}
_original_warn = warnings.warn


def _package(frame) -> str:
    filename = frame.f_code.co_filename
    if filename.startswith(PREFKIT):
        return "prefkit"
    module = frame.f_globals.get("__name__", "") or ""
    return module.split(".")[0] or filename


def provoked_by_prefkit(frame) -> bool:
    """Whether the first frame outside the warning library and the plumbing belongs to prefkit."""
    issuer = _package(frame)
    if issuer == "prefkit":
        return True
    while frame is not None:
        package = _package(frame)
        if package == "importlib":
            # A module's own body warning while it is imported (torch's on first import): no call of prefkit's.
            return False
        if package != issuer and package not in PLUMBING and not package.startswith("<"):
            return package == "prefkit"
        frame = frame.f_back
    return False


def ignored_on_purpose(message, kind, module: str) -> bool:
    """Whether the first filter matching the warning ignores it by message or module: prefkit silences
    a library's warning about the library's own internals (``warnings.catch_warnings`` around the
    call, with a comment saying why), never a blanket category."""
    text = str(message)
    for action, pattern, category, where, _line in warnings.filters:
        if (
            issubclass(kind, category)
            and (pattern is None or pattern.match(text))
            and (where is None or where.match(module))
        ):
            return action == "ignore" and (pattern is not None or where is not None)
    return False


def warn(message, category=None, stacklevel=1, source=None, **kwargs):
    kind = category or (message.__class__ if isinstance(message, Warning) else UserWarning)
    if (
        issubclass(kind, DeprecationWarning | FutureWarning)
        and not ignored_on_purpose(message, kind, sys._getframe(stacklevel).f_globals.get("__name__", ""))
        and provoked_by_prefkit(sys._getframe(1))
    ):
        raise kind(f"prefkit's own code uses a deprecated API: {message}")
    return _original_warn(message, category, stacklevel + 1, source, **kwargs)


def pytest_configure(config):
    warnings.warn = warn


def pytest_unconfigure(config):
    warnings.warn = _original_warn
