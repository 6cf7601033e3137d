"""The pool on disk: batches, keys and gather against direct computations on one frame."""

import numpy as np
import polars as pl
import pytest

import prefkit.data.pool as pool_module
from prefkit.data.columns import FILE, LINE, ROW, SOURCE
from prefkit.data.dedupe import DedupeConfig, remove_duplicates
from prefkit.data.keys import exact_key
from prefkit.data.messages import MESSAGES
from prefkit.data.pool import EXACT, PROMPT, FramePool, SpilledPool


def _pairs(n: int, start: int = 0) -> pl.DataFrame:
    turn = lambda role, text: [{"role": role, "content": text}]
    # Every seventh prompt repeats an earlier one (exact duplicates across batches); chosen varies in length.
    return pl.DataFrame(
        {
            "id": [f"p{i}" for i in range(start, start + n)],
            "source": "s",
            "prompt": [turn("user", f"Question {i % 7 if i % 7 == 0 else i}") for i in range(start, start + n)],
            "chosen": [turn("assistant", "good " * (i % 5 + 1)) for i in range(start, start + n)],
            "rejected": [turn("assistant", "bad")] * n,
            "score_chosen": [float(i % 3) for i in range(start, start + n)],
            "score_rejected": [0.0] * n,
            FILE: pl.Series([0] * n, dtype=pl.Int32),
            LINE: pl.Series(range(start + 1, start + n + 1), dtype=pl.Int64),
        },
        schema_overrides={"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES},
    )


@pytest.fixture
def spilled(tmp_path):
    """300 pairs spilled in 12 batches of 25 from two sources, and the same pairs as one frame."""
    with SpilledPool(tmp_path) as pool:
        for b in range(12):
            pool.add(_pairs(25, b * 25), source=b % 2)
        whole = pl.concat([_pairs(25, b * 25).with_columns(pl.lit(b % 2, pl.Int32).alias(SOURCE)) for b in range(12)])
        yield pool, whole.with_row_index(ROW)


def test_keys_equal_keys_computed_on_the_whole_frame(spilled):
    pool, whole = spilled
    assert pool.keys[ROW].to_list() == list(range(300))
    assert pool.keys[SOURCE].to_list() == whole[SOURCE].to_list()
    assert pool.keys[EXACT].to_list() == whole.select(exact_key()).to_series().to_list()
    assert pool.keys.equals(FramePool(whole).keys.select(pool.keys.columns))
    # Rows 0, 7, 14, ... share the prompt "Question 0": one prompt hash among them.
    assert pool.keys.filter(pl.col(ROW) % 7 == 0)[PROMPT].n_unique() == 1


def test_batches_give_only_the_rows_asked_for_in_pool_order(spilled):
    pool, whole = spilled
    rows = pl.Series([299, 3, 26, 27, 150], dtype=pl.UInt32)
    got = pl.concat(pool.batches(rows))
    assert got[ROW].to_list() == [3, 26, 27, 150, 299]
    assert got["id"].to_list() == ["p3", "p26", "p27", "p150", "p299"]


def test_gather_puts_rows_in_any_order_with_repeats_through_many_buckets(spilled, monkeypatch):
    pool, whole = spilled
    monkeypatch.setattr(pool_module, "BUCKET_BYTES", 1)  # 1,000 rows a bucket: the least gather takes
    order_rows = np.random.default_rng(0).permutation(np.tile(np.arange(300), 5))  # 1,500 rows, each five times
    order = pl.DataFrame({ROW: pl.Series(order_rows, dtype=pl.UInt32), "id": [f"x{i}" for i in range(1500)]})
    chunks = list(pool.gather(order))
    assert [c.height for c in chunks] == [1000, 500]
    got = pl.concat(chunks)
    assert got[ROW].to_list() == order_rows.tolist()
    assert got["id"].to_list() == [f"x{i}" for i in range(1500)]  # order's id replaces the row's own
    expected = whole[order_rows].drop("id")
    assert got.drop("id").select(expected.columns).equals(expected)
    assert [p.name for p in pool.folder.iterdir()] != [] and not list(pool.folder.glob("gather-*"))


def test_the_folder_is_removed_on_leaving_even_after_an_error(tmp_path):
    with pytest.raises(RuntimeError), SpilledPool(tmp_path) as pool:
        pool.add(_pairs(10))
        assert len(list(pool.folder.iterdir())) == 1
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_dedupe_over_spilled_batches_equals_dedupe_of_one_frame(spilled):
    pool, whole = spilled
    config = DedupeConfig(prompt=True, near=True, near_threshold=0.5)
    on_disk = remove_duplicates(pool, config, seed=3)
    in_memory = remove_duplicates(whole, config, seed=3)
    assert on_disk.equals(in_memory)
    # The 43 rows asking "Question 0" have 5 distinct chosen replies: 38 exact copies, then 4 more of
    # the prompt; every other prompt is one of a kind.
    counts = dict(on_disk.group_by("method", maintain_order=True).len().iter_rows())
    assert counts == {"exact": 38, "prompt": 4}
