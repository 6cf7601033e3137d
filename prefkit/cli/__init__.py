"""The ``prefkit`` command line: a thin click layer over :mod:`prefkit.data` and :mod:`prefkit.lm`."""

from prefkit.cli.commands import main

__all__ = ["main"]
