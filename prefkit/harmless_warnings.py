"""Third-party warnings prefkit knows to be harmless, silenced inside prefkit's own calls.

Each entry is a message a user cannot act on: it comes from arguments prefkit itself passes, or
from a library's default that does not apply on this machine. The filters are installed only for
the duration of a prefkit call (:func:`silenced`, a ``warnings.catch_warnings()`` block), never
globally, so a user's own code around the call warns as it always did. ``prefkit -v`` (or
``silenced(show=True)``) lets them through.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

HARMLESS_WARNINGS = (
    # transformers 5 renamed gradient checkpointing; TRL's DPOConfig still sets the old names.
    (FutureWarning, r"`(is_)?gradient_checkpointing\w*` is deprecated"),
    # transformers 5.2x renamed the forward's past_key_values to cache; TRL's own forward passes still
    # use the old name (prefkit's use the new one, through prefkit.lm.compat).
    (FutureWarning, r"`past_key_values` is deprecated and will be removed"),
    # torch's DataLoader on a machine without an accelerator: pinning does nothing there.
    (UserWarning, r".*'pin_memory' argument is set as true but no accelerator is found"),
)

SHOW = {"all": False}
"""``prefkit -v`` sets ``all``: every warning shows, the harmless ones too."""


@contextmanager
def silenced(show: bool | None = None) -> Iterator[None]:
    """The harmless warnings silenced inside the block, and only there.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     with silenced(show=False):
    ...         warnings.warn("'pin_memory' argument is set as true but no accelerator is found", UserWarning)
    ...     warnings.warn("'pin_memory' argument is set as true but no accelerator is found", UserWarning)
    >>> len(seen)
    1
    """
    if SHOW["all"] if show is None else show:
        yield
        return
    with warnings.catch_warnings():
        for category, pattern in HARMLESS_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern, category=category)
        yield
