import polars as pl

from prefkit.data.splits import grouped_test_mask


def test_groups_never_straddle_and_size_is_close_to_target():
    keys = pl.Series([f"p{i % 300}" for i in range(1000)])  # 300 prompts, 3-4 rows each
    test = grouped_test_mask(keys, 0.1, seed=0)
    frame = pl.DataFrame({"key": keys, "test": test})
    assert frame.group_by("key").agg(pl.col("test").n_unique())["test"].max() == 1
    assert 95 <= int(test.sum()) <= 100


def test_deterministic_per_seed_and_seed_changes_the_split():
    keys = pl.Series([f"p{i}" for i in range(500)])
    a, b, c = (grouped_test_mask(keys, 0.2, seed=s) for s in (1, 1, 2))
    assert a.to_list() == b.to_list() and a.to_list() != c.to_list()
    assert int(a.sum()) == int(c.sum()) == 100


def test_zero_test_size():
    assert not grouped_test_mask(pl.Series(["a", "b"]), 0.0, seed=0).any()
