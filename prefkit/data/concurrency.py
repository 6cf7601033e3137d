"""Overlapping the stages of a batch pipeline on threads.

polars, pyarrow and file I/O release the GIL, so threads give real parallelism here. Each helper
keeps results in input order and bounds how much runs ahead, which bounds memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(work: Callable[[T], R], items: Iterator[T], depth: int = 2) -> Iterator[R]:
    """``map(work, items)`` with up to ``depth`` calls running at once; results come in order.

    Items are drawn lazily, at most ``depth`` ahead of the consumer, unlike
    ``ThreadPoolExecutor.map``, which drains the whole iterator up front.
    """
    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="prefkit") as pool:
        running: deque[Future] = deque()
        for item in items:
            running.append(pool.submit(work, item))
            if len(running) >= depth:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """Draws the next item on a worker thread while the caller handles the current one."""
    done = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefkit-read") as pool:
        pending = pool.submit(next, items, done)
        while (item := pending.result()) is not done:
            pending = pool.submit(next, items, done)
            yield item
