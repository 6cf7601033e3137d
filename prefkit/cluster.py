"""Ray: the one place prefkit checks for it and starts or joins a cluster.

Both sides use it: ``generate --ray`` answers batches on Ray Data, and ``mix --ray`` reads its
partitions and signs near-duplicate batches in Ray tasks.
"""

from __future__ import annotations

from prefkit.errors import ExtraMissing, UsageError


def require_ray(flag: str = "--ray") -> None:
    """Raises :class:`ExtraMissing` naming ``flag`` when Ray is not installed."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ExtraMissing(f"{flag} needs Ray Data: pip install 'prefkit[ray]' (or 'ray[data]')")


def connect_ray(address: str, flag: str = "--ray") -> None:
    """Joins the cluster at ``address`` (``auto``: the one this machine belongs to; ``local``: start
    one here), unless this process is connected already (a caller's own ``ray.init``)."""
    import logging

    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(
            address=None if address == "local" else address,
            logging_level=logging.ERROR,
            log_to_driver=False,
            include_dashboard=False,
            configure_logging=True,
        )
    except ConnectionError as err:
        raise UsageError(f"{flag} {address}: no Ray cluster there ({err})") from err
