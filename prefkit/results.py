"""What every library call returns: a small dataclass with ``to_dict()``.

A result's fields are its report. A field declared with ``repr=False`` holds working data for
Python callers (token ids, per-pair arrays, the records of a rejects file) and stays out of
``to_dict()``, which is what ``--json`` prints and the report files hold.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def plain(value: Any) -> Any:
    """A dataclass, or dicts and lists of them, as plain JSON-ready values; ``repr=False`` fields left out.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Counts:
    ...     read: int
    ...     rows: list = field(default_factory=list, repr=False)
    >>> plain({"a": Counts(3, [1, 2]), "b": [Counts(1)]})
    {'a': {'read': 3}, 'b': [{'read': 1}]}
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


class Result:
    """Mixin of every result dataclass: ``to_dict()`` is the report (see :func:`plain`)."""

    def to_dict(self) -> dict:
        """The result as plain values, as ``--json`` prints it."""
        return plain(self)
