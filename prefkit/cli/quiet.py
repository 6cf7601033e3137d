"""Third-party output that prefkit knows to be harmless, silenced unless ``prefkit -v``.

Each entry is a message a user cannot act on: it comes from arguments prefkit itself passes, or
from a library's default that does not apply on this machine. Anything else (a real warning, an
error) still shows.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from prefkit.harmless_warnings import HARMLESS_WARNINGS, SHOW


def quiet_third_parties(verbose: bool) -> None:
    """Silences the harmless warnings, ``datasets``' and the hub's progress bars and the libraries'
    info logging; ``verbose`` leaves everything as the libraries set it."""
    SHOW["all"] = verbose
    if verbose:
        return
    for category, pattern in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    # Environment variables reach the libraries however late they are imported.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Ray Data sets its loggers' levels from this as it is imported (generate --ray).
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    for name in ("datasets", "transformers", "trl", "peft", "accelerate", "huggingface_hub", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Libraries imported already (in a test process, a notebook) read those variables at import.
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
