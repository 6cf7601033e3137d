"""Unpaired feedback: every pair gives exactly one desirable and one undesirable record, ids kept."""

from __future__ import annotations

import json

import polars as pl
from click.testing import CliRunner

from prefkit.cli import main
from prefkit.data.sample_data import write_sample
from prefkit.data.unpaired import unpair
from tests.conftest import read_jsonl


def test_every_pair_gives_one_true_and_one_false_record(tmp_path):
    pairs = pl.DataFrame(
        {
            "id": ["a", "b"],
            "source": ["s", "t"],
            "prompt": ["2 + 2?", "Say hi."],
            "chosen": ["4", "Hi!"],
            "rejected": ["5", "No."],
            "metadata": [{"task": "addition"}, {"task": "greeting"}],
        }
    )
    records = unpair(pairs)
    assert records.rows() == [
        ("a:chosen", "a", "s", "2 + 2?", "4", True, {"task": "addition"}),
        ("a:rejected", "a", "s", "2 + 2?", "5", False, {"task": "addition"}),
        ("b:chosen", "b", "t", "Say hi.", "Hi!", True, {"task": "greeting"}),
        ("b:rejected", "b", "t", "Say hi.", "No.", False, {"task": "greeting"}),
    ]


def test_convert_to_unpaired_accounts_for_every_pair(tmp_path):
    raw = write_sample(tmp_path / "demo")["train"]
    out = tmp_path / "feedback.jsonl"
    run = CliRunner().invoke(main, ["convert", str(raw), "--to", "unpaired", "-o", str(out), "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    assert (report["written"], report["rejected"]) == (480, 3)
    assert report["unpaired"] == {"records": 960, "desirable": 480, "undesirable": 480}
    records = read_jsonl(out)
    pairs_run = CliRunner().invoke(main, ["convert", str(raw), "-o", str(tmp_path / "pairs.jsonl")])
    assert pairs_run.exit_code == 0
    pairs = {p["id"]: p for p in read_jsonl(tmp_path / "pairs.jsonl")}
    assert len(records) == 960 and {r["pair_id"] for r in records} == set(pairs)
    for r in records:
        pair = pairs[r["pair_id"]]
        side = "chosen" if r["label"] else "rejected"
        assert r["id"] == f"{pair['id']}:{side}" and r["completion"] == pair[side] and r["prompt"] == pair["prompt"]
    parquet = tmp_path / "feedback.parquet"
    assert CliRunner().invoke(main, ["convert", str(raw), "--to", "unpaired", "-o", str(parquet)]).exit_code == 0
    assert pl.read_parquet(parquet)["label"].to_list() == [r["label"] for r in records]
