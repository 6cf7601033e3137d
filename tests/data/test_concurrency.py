import threading
import time

import pytest

from prefkit.data.concurrency import ordered_map, prefetched


def test_ordered_map_keeps_input_order_when_later_items_finish_first():
    def work(x: int) -> int:
        time.sleep(0.02 if x % 2 == 0 else 0.0)  # even items are slower
        return x * 10

    assert list(ordered_map(work, iter(range(9)), depth=3)) == [x * 10 for x in range(9)]


def test_ordered_map_draws_at_most_depth_items_ahead():
    drawn = []

    def items():
        for i in range(100):
            drawn.append(i)
            yield i

    results = ordered_map(lambda x: x, items(), depth=2)
    assert next(results) == 0
    assert len(drawn) == 2  # the first result needs two items drawn, no more


def test_errors_in_workers_reach_the_caller():
    def work(x: int) -> int:
        if x == 3:
            raise ValueError("bad item 3")
        return x

    with pytest.raises(ValueError, match="bad item 3"):
        list(ordered_map(work, iter(range(6))))


def test_prefetched_draws_on_another_thread_in_order():
    threads = []

    def items():
        for i in range(5):
            threads.append(threading.current_thread().name)
            yield i

    assert list(prefetched(items())) == [0, 1, 2, 3, 4]
    assert all(name.startswith("prefkit-read") for name in threads)
