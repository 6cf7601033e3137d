import json

import polars as pl
import pytest

from prefkit.data.convert import ConvertConfig, convert, parse_fields
from prefkit.data.reasons import RejectReason
from prefkit.errors import ConfigError, SourceError
from tests.conftest import hh


def pair(q, good="good", bad="bad"):
    return {"chosen": hh(q, good), "rejected": hh(q, bad)}


def test_duplicates_within_and_across_sources_point_at_the_first_copy(write_jsonl, run_convert):
    a = write_jsonl("a.jsonl", [pair("Q1"), pair("Q2"), pair("Q1")])
    b = write_jsonl("b.jsonl", [pair("Q2"), pair("Q3")])
    result, rows, rejects = run_convert(a, b)
    assert [r["prompt"][0]["content"] for r in rows] == ["Q1", "Q2", "Q3"]
    assert [(r["source"].endswith("a.jsonl"), r["line"], r["reason"]) for r in rejects] == [
        (True, 3, RejectReason.DUPLICATE),
        (False, 1, RejectReason.DUPLICATE),
    ]
    assert rejects[0]["detail"].endswith("a.jsonl line 1")
    assert [(s.read, s.written, s.rejected) for s in result.sources] == [(3, 2, 1), (2, 1, 1)]


def test_a_rejected_row_does_not_shadow_a_later_good_copy(write_jsonl, run_convert):
    # Line 1 is rejected for another reason; its twin on line 2 must not be called a duplicate of it.
    path = write_jsonl("a.jsonl", ['{"chosen": 1, "rejected": "x"}', pair("Q"), pair("Q")])
    result, _, rejects = run_convert(path)
    assert result.written == 1
    assert [(r["line"], r["reason"]) for r in rejects] == [(1, "wrong_type"), (3, "duplicate")]


def test_report_and_rejects_default_beside_the_output(write_jsonl, tmp_path):
    path = write_jsonl("a.jsonl", [pair("Q"), "not json"])
    result = convert(ConvertConfig(sources=[str(path)], output=str(tmp_path / "o" / "pairs.parquet")))
    report = json.loads((tmp_path / "o" / "pairs.report.json").read_text())
    assert (report["read"], report["written"], report["rejected"]) == (2, 1, 1)
    assert report["reasons"] == {"invalid_json": 1}
    assert (tmp_path / "o" / "pairs.rejects.jsonl").exists()
    frame = pl.read_parquet(tmp_path / "o" / "pairs.parquet")
    assert frame.columns == ["id", "source", "prompt", "chosen", "rejected", "score_chosen", "score_rejected"]
    assert result.output.endswith("pairs.parquet")


def test_standard_style_flattens_and_keeps_ids(write_jsonl, run_convert):
    path = write_jsonl(
        "a.jsonl", [{"chosen": hh("Hi", "Hey", "Bye?", "Bye!"), "rejected": hh("Hi", "Hey", "Bye?", "No.")}]
    )
    _, conversational, _ = run_convert(path)
    _, standard, _ = run_convert(path, style="standard", output="std.jsonl")
    assert standard[0]["prompt"] == "\n\nHuman: Hi\n\nAssistant: Hey\n\nHuman: Bye?\n\nAssistant:"
    assert (standard[0]["chosen"], standard[0]["rejected"]) == ("Bye!", "No.")
    assert standard[0]["id"] == conversational[0]["id"]


def test_ids_are_stable_content_hashes(write_jsonl, run_convert):
    import polars_hash  # noqa: F401

    _, rows, _ = run_convert(write_jsonl("a.jsonl", [pair("Q")]))
    text = "user\x1fQ\x1dassistant\x1fgood\x1dassistant\x1fbad"
    direct = pl.DataFrame({"t": [text]}).select(pl.col("t").chash.blake3()).item()
    assert rows[0]["id"] == direct[:16]
    assert rows[0]["id"] == "368a8ff5c9fc2696"  # pinned: ids must never change across releases


def test_failures_before_writing_leave_no_output(write_jsonl, tmp_path):
    good = write_jsonl("a.jsonl", [pair("Q")])
    out = tmp_path / "out.jsonl"
    with pytest.raises(SourceError):
        convert(ConvertConfig(sources=[str(good), str(tmp_path / "missing.jsonl")], output=str(out)))
    with pytest.raises(ConfigError, match="style: expected one of conversational, standard, got 'chatml'"):
        convert(ConvertConfig(sources=[str(good)], output=str(out), style="chatml"))
    with pytest.raises(ConfigError, match="format: expected one of canonical, hh-rlhf, .*got 'sharegpt'"):
        convert(ConvertConfig(sources=[str(good)], output=str(out), format="sharegpt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]


def test_empty_input_writes_empty_output(write_jsonl, run_convert, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    result, rows, rejects = run_convert(path, format="hh-rlhf")
    assert (result.read, result.written, rows, rejects) == (0, 0, [], [])


def test_parse_fields():
    assert parse_fields(["prompt=question", " chosen = a.good "]) == (("prompt", "question"), ("chosen", "a.good"))


def test_small_batches_give_the_same_result_as_one(write_jsonl, run_convert, monkeypatch):
    from prefkit.data import sources

    records = [pair(f"Q{i % 7}") if i % 5 else "{broken" for i in range(40)]
    path = write_jsonl("a.jsonl", records + ["", pair("Q1")])
    whole = run_convert(path, output="whole.jsonl")
    monkeypatch.setattr(sources, "BATCH_BYTES", 100)  # a few lines per batch
    batched = run_convert(path, output="batched.jsonl")
    assert batched[1] == whole[1] and len(whole[1]) == 7
    assert [(r["line"], r["reason"], r["detail"]) for r in batched[2]] == [
        (r["line"], r["reason"], r["detail"]) for r in whole[2]
    ]
    assert whole[2][-1] == {**whole[2][-1], "line": 42, "reason": "duplicate"}
    assert (batched[0].read, batched[0].sources[0].blank_lines) == (41, 1)


def test_strict_raises_for_library_callers_after_writing_whole_outputs(write_jsonl, tmp_path):
    from prefkit.errors import RejectsFound

    src = write_jsonl("a.jsonl", [pair("Q"), "{bad", pair("R")])
    out = tmp_path / "out.jsonl"
    with pytest.raises(RejectsFound, match="strict: 1 of 3 records rejected") as caught:
        convert(ConvertConfig(sources=[str(src)], output=str(out), strict=True))
    result = caught.value.report
    assert (result.read, result.written, result.rejected) == (3, 2, 1)
    assert len(out.read_text().splitlines()) == 2  # the outputs are whole; the run failed the strict gate
    assert convert(ConvertConfig(sources=[str(src)], output=str(out))).rejected == 1  # not strict: no error
