"""One small hierarchy of typed errors.

The library raises these and never prints or exits; the CLI maps them to exit codes:
``UsageError`` and its children exit 2 with one line; ``DataError`` and its children exit 1.
"""

from __future__ import annotations


class PrefkitError(Exception):
    """Base class for every error prefkit raises on purpose."""


class UsageError(PrefkitError):
    """The user asked for something that cannot be done as asked (exit 2)."""


class SourceError(UsageError):
    """An input cannot be found or read at all (missing file, unreadable archive, bad hub id)."""


class UnknownFormatError(UsageError):
    """The input format could not be detected, or an unknown ``--format`` was named."""


class FieldMappingError(UsageError):
    """A ``--field`` mapping is malformed or names a key that no record has."""


class ConfigError(UsageError):
    """A configuration or recipe value is invalid (unknown key, wrong type, out of range)."""


class DataError(PrefkitError):
    """The data failed a check the user asked for (exit 1); ``report`` holds what was found."""

    def __init__(self, message: str, report: object | None = None):
        super().__init__(message)
        self.report = report


class ValidationFailed(DataError):
    """Data does not conform to the canonical schema (exit 1); ``report`` holds every failure."""


class RejectsFound(DataError):
    """``convert`` with ``strict``: records were rejected (exit 1); ``report`` is the convert result."""


class ExtraMissing(UsageError):
    """A command needs an optional part of prefkit that is not installed (``prefkit[train]``)."""
