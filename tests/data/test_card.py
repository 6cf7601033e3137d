from pathlib import Path

import polars as pl
import pytest
import yaml

from prefkit.data.card import card_for_file, card_rows, length_bias, length_table, license_of, size_category
from prefkit.errors import ValidationFailed
from tests.conftest import hh


def test_size_categories_and_licenses():
    assert [size_category(n) for n in (10, 1000, 99_999, 2_000_000)] == ["n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]
    assert (license_of("hh-rlhf:x.jsonl"), license_of("ultrafeedback-raw:y"), license_of("jsonl:mine.jsonl")) == (
        "mit",
        "mit",
        "other",
    )


def test_length_quantiles_match_a_direct_computation():
    replies = ["a", "bb bb", "ccc ccc ccc", "dddd"]
    frame = pl.DataFrame({"prompt": ["p"] * 4, "chosen": replies, "rejected": ["x"] * 4})
    table = length_table(card_rows(frame, None)).filter((pl.col("field") == "chosen") & (pl.col("unit") == "tokens"))
    assert (table["p50"].item(), table["max"].item(), table["mean"].item()) == (2, 3, 1.8)


def test_length_bias_per_source_from_a_given_counter():
    frame = pl.DataFrame(
        {"source": ["a", "a", "b"], "prompt": ["p"] * 3, "chosen": ["x", "y", "z"], "rejected": ["u", "v", "w"]}
    )
    counts = {"prompt": [1, 1, 1], "chosen": [5, 1, 2], "rejected": [2, 3, 9]}  # as a tokenizer would give them
    bias = length_bias(card_rows(frame, lambda _: counts))
    assert bias.rows() == [("a", 2, 0.5, 0.5), ("b", 1, 0.0, -7.0)]


def test_card_for_a_canonical_file(write_jsonl, run_convert, tmp_path):
    path = write_jsonl("hh.jsonl", [{"chosen": hh(f"q{i}", "yes"), "rejected": hh(f"q{i}", "no")} for i in range(20)])
    run_convert(path, output="train.jsonl")
    out = card_for_file(tmp_path / "train.jsonl", tmp_path / "card" / "README.md")
    assert (out.kind, out.records, out.histogram) == ("pairs", 20, str(tmp_path / "card" / "lengths.png"))
    text = Path(out.card).read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["license"] == ["mit"] and header["size_categories"] == ["n<1K"]
    assert header["configs"][0]["data_files"][0]["split"] == "train"
    assert "| hh-rlhf:hh.jsonl | 20 |" in text
    assert (tmp_path / "card" / "lengths.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValidationFailed, match="not canonical: column_in_dataframe"):
        card_for_file(path, tmp_path / "c2" / "README.md")
