"""What every library call returns: a small dataclass with ``to_dict()``.

A result's fields are its report. A field declared with ``repr=False`` holds working data for
Python callers (token ids, per-pair arrays, the records of a rejects file) and stays out of
``to_dict()``, which is what ``--json`` prints and the report files hold.
"""

from __future__ import annotations

import dataclasses
from typing import Any

OMIT_IF_NONE = {"omit_if_none": True}
"""Field metadata: leave the field out of ``to_dict()`` when it is None (a row type shared by reports
of which some never know that field, say a reject's ``id`` before a record is parsed)."""


def plain(value: Any) -> Any:
    """A dataclass, or dicts and lists of them, as plain JSON-ready values; ``repr=False`` fields left
    out, the properties a class names in ``derived_fields`` added after its fields.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Counts:
    ...     read: int
    ...     rows: list = field(default_factory=list, repr=False)
    ...     derived_fields = ("twice",)
    ...     @property
    ...     def twice(self) -> int:
    ...         return 2 * self.read
    >>> plain({"a": Counts(3, [1, 2]), "b": [Counts(1)]})
    {'a': {'read': 3, 'twice': 6}, 'b': [{'read': 1, 'twice': 2}]}
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.repr and not (f.metadata.get("omit_if_none") and getattr(value, f.name) is None)
        }
        return out | {name: plain(getattr(value, name)) for name in getattr(value, "derived_fields", ())}
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


@dataclasses.dataclass(frozen=True)
class Reject:
    """One record left out, and why: its file (or source label) and line, its id once it has one,
    the reason and a detail. The one row type of every ``first_rejects``, ``unscored`` and token
    error list; ``to_dict()`` leaves out a ``source`` or ``id`` the report does not know.

    >>> Reject("a.jsonl", 3, "invalid_json", "Expecting value").to_dict()
    {'source': 'a.jsonl', 'line': 3, 'reason': 'invalid_json', 'detail': 'Expecting value'}
    """

    source: str | None = dataclasses.field(metadata=OMIT_IF_NONE)
    line: int | None
    reason: str
    detail: str | None
    id: str | None = dataclasses.field(default=None, metadata=OMIT_IF_NONE)

    def to_dict(self) -> dict:
        return plain(self)


@dataclasses.dataclass(frozen=True)
class TokenReject:
    """A pair the token audit found a fault in: where it is, the fault, and whether training drops it.

    >>> TokenReject("hh:a.jsonl", 7, "p7", "prompt_fills_max_length", "512 tokens", True).to_dict()["dropped"]
    True
    """

    source: str | None
    line: int | None
    id: str | None
    reason: str
    detail: str | None
    dropped: bool

    def to_dict(self) -> dict:
        return plain(self)


def count_reasons(reasons) -> dict[str, int]:
    """How many times each reason occurs, by reason name.

    >>> count_reasons(["tie", "duplicate", "tie"])
    {'duplicate': 1, 'tie': 2}
    """
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[str(reason)] = counts.get(str(reason), 0) + 1
    return dict(sorted(counts.items()))
