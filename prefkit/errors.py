"""One small hierarchy of typed errors.

The library raises these and never prints or exits; the CLI maps them to exit codes:
``UsageError`` and its children exit 2 with one line, ``ValidationFailed`` exits 1.
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


class ValidationFailed(PrefkitError):
    """Data does not conform to the canonical schema (exit 1); ``report`` holds every failure."""

    def __init__(self, message: str, report: object | None = None):
        super().__init__(message)
        self.report = report
