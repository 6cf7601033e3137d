"""Integration tests on the real rows in ../shared/data (skipped when the folder is absent).

The expected counts were measured once with ``prefkit convert`` and cross-checked against a
plain-Python reading of each transcript (see ``test_hh_matches_a_reference_parse``).
"""

import gzip
import json

import pytest

from prefkit.data.adapters.hh_rlhf import parse_transcript
from prefkit.data.validate import validate_file

EXPECTED = {
    "hh-rlhf-harmless-base-test.jsonl.gz": ("hh-rlhf", 2312, 2299, {"empty_response": 4, "non_alternating_turns": 9}),
    "ultrafeedback-binarized-train_prefs.parquet": (
        "ultrafeedback",
        1000,
        884,
        {"empty_response": 2, "identical_responses": 4, "tie": 110},
    ),
    "ultrafeedback-binarized-test_prefs.parquet": ("ultrafeedback", 200, 175, {"identical_responses": 1, "tie": 24}),
    "ultrafeedback-binarized-preferences-argilla.jsonl.gz": (
        "ultrafeedback-argilla",
        1200,
        1059,
        {"empty_response": 2, "identical_responses": 5, "tie": 134},
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_convert_real_file_exact_counts_and_validates(shared_data, run_convert, name):
    fmt, read, written, reasons = EXPECTED[name]
    result, rows, _ = run_convert(shared_data / name, output=f"{name}.out.jsonl")
    assert (result.sources[0].format, result.read, result.written, result.reasons) == (fmt, read, written, reasons)
    assert validate_file(result.output).ok


def test_ties_kept_on_request(shared_data, run_convert):
    result, _, _ = run_convert(shared_data / "ultrafeedback-binarized-train_prefs.parquet", keep_ties=True)
    assert (result.written, result.reasons) == (994, {"empty_response": 2, "identical_responses": 4})


def test_both_ultrafeedback_layouts_hold_the_same_pairs(shared_data, run_convert):
    ids = {}
    for name in EXPECTED:
        if "ultrafeedback" in name:
            _, rows, _ = run_convert(shared_data / name, output=f"{name}.out.jsonl")
            ids[name] = {r["id"] for r in rows}
    h4 = ids["ultrafeedback-binarized-train_prefs.parquet"] | ids["ultrafeedback-binarized-test_prefs.parquet"]
    assert ids["ultrafeedback-binarized-preferences-argilla.jsonl.gz"] == h4


def test_hh_matches_a_reference_parse(shared_data, run_convert):
    """Every written HH pair equals what a plain per-record parse of the transcripts gives."""
    path = shared_data / "hh-rlhf-harmless-base-test.jsonl.gz"
    records = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8") if line.strip()]
    _, rows, rejects = run_convert(path)
    rejected_lines = {r["line"] for r in rejects}
    kept = [rec for i, rec in enumerate(records, start=1) if i not in rejected_lines]
    assert len(kept) == len(rows)
    for record, row in zip(kept, rows, strict=True):
        _, chosen = parse_transcript(record["chosen"])
        _, rejected = parse_transcript(record["rejected"])
        assert (row["prompt"], row["chosen"], row["rejected"]) == (chosen[:-1], chosen[-1:], rejected[-1:])
