"""One matplotlib setup for every figure prefkit writes (cards' length histograms, training curves)."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend: prefkit writes PNGs and never opens a window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Writes ``fig`` as a PNG atomically, without the software tag (same figure, same bytes), and closes it."""
    from prefkit.atomic_files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    pyplot().close(fig)
