"""A mix of a million pairs (slow tier): the split's prompt groups, the line number of a bad line a
million lines in, and every count, against direct computations on the files written."""

import json

import polars as pl
import pytest

import prefkit


@pytest.mark.slow
def test_a_million_pair_mix_keeps_prompt_groups_whole_and_finds_a_bad_line_by_number(tmp_path):
    n, groups, bad_line = 1_000_000, 250_000, 999_983
    # Pair i asks prompt i % 250,000: four pairs a prompt, 250,000 lines apart (many batches).
    source = tmp_path / "pairs.jsonl"
    pair = '{{"prompt": "question {} of many", "chosen": "answer {}", "rejected": "no"}}\n'
    with open(source, "w") as out:
        out.writelines(
            "{not json\n" if k == bad_line else pair.format((k - 1) % groups, k - 1) for k in range(1, n + 1)
        )
    result = prefkit.mix(str(source), tmp_path / "mix", test_size=0.1)
    (reject,) = (tmp_path / "mix" / "rejects.jsonl").read_text().splitlines()
    assert json.loads(reject)["line"] == bad_line and json.loads(reject)["reason"] == "invalid_json"
    counts = result.sources[0]
    assert (counts.read, counts.rejected, counts.deduped, counts.kept) == (n, 1, 0, n - 1)

    def prompts(split: str) -> pl.Series:
        frame = pl.read_ndjson(tmp_path / "mix" / f"{split}.jsonl")
        return frame["prompt"].list.last().struct.field("content")

    train, test = prompts("train"), prompts("test")
    assert (train.len(), test.len()) == (result.train, result.test) and train.len() + test.len() == n - 1
    assert not set(train.unique().to_list()) & set(test.unique().to_list())
    # Whole groups of four (three for the group that lost its bad line) reach the test side: about 10%.
    sizes = test.value_counts()["count"]
    assert set(sizes.unique().to_list()) <= {3, 4} and abs(test.len() - 0.1 * (n - 1)) < 10
    manifest = json.loads((tmp_path / "mix" / "manifest.json").read_text())
    assert len(manifest["lineage"]["rows"]) == n - 1
    assert not list((tmp_path / "mix").glob(".prefkit-pool-*"))
