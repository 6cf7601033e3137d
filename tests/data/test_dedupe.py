import random

import polars as pl
import pytest

from prefkit.data.dedupe import (
    ROW,
    DecontaminateConfig,
    DedupeConfig,
    contaminated,
    exact_duplicates,
    lsh_bands,
    near_duplicates,
    prompt_duplicates,
)
from prefkit.data.keys import normalize_text, shingles
from prefkit.data.messages import MESSAGES
from prefkit.errors import ConfigError


def pool_of(prompts, chosen=None, scores=None):
    n = len(prompts)
    chosen = chosen or ["good"] * n
    scores = scores or [(None, None)] * n
    return pl.DataFrame(
        {
            "id": [f"id{i}" for i in range(n)],
            "prompt": [[{"role": "user", "content": p}] for p in prompts],
            "chosen": [[{"role": "assistant", "content": c}] for c in chosen],
            "rejected": [[{"role": "assistant", "content": "bad"}]] * n,
            "score_chosen": [s[0] for s in scores],
            "score_rejected": [s[1] for s in scores],
        },
        schema_overrides={
            "prompt": MESSAGES,
            "chosen": MESSAGES,
            "rejected": MESSAGES,
            "score_chosen": pl.Float64,
            "score_rejected": pl.Float64,
        },
    ).with_row_index(ROW)


def test_normalize_text():
    out = pl.DataFrame({"t": ["  Ｈello\u00a0\n World ", "ÉCOLE"]}).select(normalize_text(pl.col("t"))).to_series()
    assert out.to_list() == ["hello world", "école"]


def test_shingles_fall_back_to_words_for_short_texts():
    out = (
        pl.DataFrame({"t": ["What is the capital, of France?", "Hi!", "?!"]})
        .select(shingles(pl.col("t"), 2))
        .to_series()
    )
    assert out.to_list() == [["what is", "is the", "the capital", "capital of", "of france"], ["hi"], []]


def test_exact_ignores_case_width_and_whitespace_but_not_words():
    pool = pool_of(["Hello  world", "hello world", "HELLO WORLD\n", "hello there"])
    removed = exact_duplicates(pool)
    assert removed[ROW].to_list() == [1, 2] and removed["__dup_of"].to_list() == [0, 0]
    assert set(removed["method"]) == {"exact"}


def test_prompt_dedupe_keeps_the_largest_margins():
    pool = pool_of(
        ["q"] * 4 + ["other"], chosen=["a", "b", "c", "d", "e"], scores=[(5, 4), (9, 1), (7, 2), (None, None), (1, 0)]
    )
    removed = prompt_duplicates(pool, k=2, seed=0)
    assert sorted(removed[ROW].to_list()) == [0, 3]  # margins 1 and unscored lose to 8 and 5
    assert set(removed["__dup_of"].to_list()) == {1}


def test_prompt_dedupe_prefers_the_margin_column_over_the_score_gap():
    pool = pool_of(["q"] * 3, chosen=["a", "b", "c"], scores=[(9, 1), (5, 4), (None, None)])
    pool = pool.with_columns(margin=pl.Series([None, 3.0, 6.0], dtype=pl.Float64))
    removed = prompt_duplicates(pool, k=1, seed=0)
    # Row 0 has no margin, so its score gap of 8 stands in and beats row 2's margin of 6.
    assert sorted(removed[ROW].to_list()) == [1, 2] and set(removed["__dup_of"].to_list()) == {0}
    removed = prompt_duplicates(pool.with_columns(margin=pl.Series([1.0, 3.0, 6.0])), k=1, seed=0)
    assert sorted(removed[ROW].to_list()) == [0, 1] and set(removed["__dup_of"].to_list()) == {2}


def test_prompt_dedupe_without_scores_is_seeded():
    pool = pool_of(["q"] * 10, chosen=[str(i) for i in range(10)])
    picks = {s: prompt_duplicates(pool, k=1, seed=s)[ROW].to_list() for s in range(4)}
    assert all(len(p) == 9 for p in picks.values())
    assert picks[0] == prompt_duplicates(pool, k=1, seed=0)[ROW].to_list()
    assert len({tuple(p) for p in picks.values()}) > 1


def planted(n=600, every=6, seed=0):
    """Distinct prompts of 20-40 random words, plus an edited copy of every ``every``-th one."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(4000)]
    base = [" ".join(rng.choice(vocab) for _ in range(rng.randint(20, 40))) for _ in range(n)]
    prompts, truth = list(base), {}
    edits = [lambda t: t.upper(), lambda t: t.replace(" ", ", ", 3) + "?", None]
    for k, i in enumerate(range(0, n, every)):
        edit = edits[k % 3]
        if edit is None:
            words = base[i].split()
            words[len(words) // 2] = rng.choice(vocab)
            text = " ".join(words)
        else:
            text = edit(base[i])
        truth[len(prompts)] = i
        prompts.append(text)
    return prompts, truth


def test_near_duplicates_recall_and_precision_on_planted_copies():
    prompts, truth = planted()
    removed = near_duplicates(pool_of(prompts), DedupeConfig(near=True), seed=0)
    found = dict(zip(removed[ROW].to_list(), removed["__dup_of"].to_list(), strict=True))
    hits = sum(found.get(copy) == original for copy, original in truth.items())
    assert hits / len(truth) >= 0.95
    assert hits / len(found) >= 0.99
    assert removed["similarity"].min() >= 0.7


def test_near_clusters_point_at_their_first_row():
    pool = pool_of(["a b c d e f g h", "a b c d e f g x", "a b c d e f y x"])
    removed = near_duplicates(pool, DedupeConfig(near=True, near_threshold=0.5), seed=0)
    assert removed["__dup_of"].to_list() == [0, 0]


def test_lsh_bands_divide_num_perm_and_loosen_with_threshold():
    assert 128 % lsh_bands(0.8, 128) == 0
    assert lsh_bands(0.5, 128) >= lsh_bands(0.9, 128)


def test_decontamination_exact_and_near():
    prompts, truth = planted(n=60, every=6)
    train = pool_of(prompts[:60])
    evals = pool_of([prompts[0], prompts[61], "totally unrelated words here"])  # exact, edited copy of 6, unrelated
    removed = contaminated(train, evals, DecontaminateConfig(files=["x"], threshold=0.7), seed=0)
    assert list(zip(removed[ROW].to_list(), removed["method"].to_list())) == [
        (0, "decontaminate-exact"),
        (6, "decontaminate-near"),
    ]
    assert removed["__dup_of"].to_list() == [0, 1]
    exact_only = contaminated(train, evals, DecontaminateConfig(files=["x"], near=False), seed=0)
    assert exact_only[ROW].to_list() == [0]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"prompt_k": 0}, "prompt_k: expected a whole number >= 1, got 0"),
        ({"near_threshold": 1.5}, r"near_threshold: expected a number in \(0, 1\], got 1.5"),
        ({"near_fields": "chosen"}, "near_fields: expected one of prompt, pair, got 'chosen'"),
        ({"num_perm": 8}, "num_perm: expected a whole number >= 16, got 8"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(bad, message):
    with pytest.raises(ConfigError, match=message):
        DedupeConfig(**bad)
