import gzip
import json

import polars as pl
import pytest

from prefkit.data.columns import DETAIL, LINE, REASON
from prefkit.data.reasons import RejectReason
from prefkit.data.sources import HubSource, iter_batches, read, resolve
from prefkit.errors import SourceError


def test_fast_path_keeps_line_numbers_across_blank_lines(write_jsonl):
    path = write_jsonl("a.jsonl", [{"x": 1}, "", "   ", {"x": 2}])
    raw = read(resolve(str(path))[0])
    assert raw.frame[LINE].to_list() == [1, 4]
    assert raw.blank_lines == 2 and raw.rejects.is_empty()


def test_crlf_and_bom_are_read_as_plain_lines(write_jsonl):
    path = write_jsonl("a.jsonl", [{"x": "a"}, {"x": "b"}], newline=b"\r\n", prefix=b"\xef\xbb\xbf")
    raw = read(resolve(str(path))[0])
    assert raw.frame["x"].to_list() == ["a", "b"]
    assert raw.record_text([2]) == {2: '{"x": "b"}'}


def test_fallback_quarantines_each_bad_line_with_its_reason(write_jsonl):
    path = write_jsonl(
        "a.jsonl",
        [{"x": "ok"}, '{"x": ', "[1, 2]", b'{"x": "\xff"}', '"just a string"', {"x": "fine"}],
    )
    raw = read(resolve(str(path))[0])
    assert raw.frame[LINE].to_list() == [1, 6]
    reasons = dict(zip(raw.rejects[LINE].to_list(), raw.rejects[REASON].to_list(), strict=True))
    assert reasons == {
        2: RejectReason.INVALID_JSON,
        3: RejectReason.NOT_AN_OBJECT,
        4: RejectReason.INVALID_UTF8,
        5: RejectReason.NOT_AN_OBJECT,
    }
    assert raw.read == 6


def test_type_conflict_rejects_the_minority_type(write_jsonl):
    path = write_jsonl("a.jsonl", [{"x": "a"}, {"x": 5}, {"x": "b"}, {"x": {"nested": 1}}])
    raw = read(resolve(str(path))[0])
    assert raw.frame["x"].to_list() == ["a", "b"]
    assert raw.rejects[REASON].to_list() == [RejectReason.WRONG_TYPE] * 2
    assert "is a number where other records have a string" in raw.rejects["__detail"][0]


def test_json_array_file_and_gzip(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"x": 1}, [2], {"x": 3}]))
    raw = read(resolve(str(tmp_path / "a.json"))[0])
    assert raw.frame[LINE].to_list() == [1, 3] and raw.rejects[REASON].to_list() == ["not_an_object"]
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b'{"x": 1}\n{"x": 2}\n'))
    assert read(resolve(str(tmp_path / "b.jsonl.gz"))[0]).frame.height == 2


def test_folder_of_shards_in_name_order(tmp_path):
    (tmp_path / "shards").mkdir()
    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "shards" / "part-1.parquet")
    (tmp_path / "shards" / "part-0.jsonl").write_text('{"x": 0}\n')
    (tmp_path / "shards" / "notes.txt").write_text("ignored")
    assert [p.name for p in resolve(str(tmp_path / "shards"))] == ["part-0.jsonl", "part-1.parquet"]


@pytest.mark.parametrize("spec", ["missing.jsonl", "notes.txt"])
def test_unreadable_sources_raise(tmp_path, spec):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceError):
        resolve(str(tmp_path / spec))


def test_corrupt_gzip_raises_source_error(tmp_path):
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(SourceError, match="cannot read"):
        read(resolve(str(tmp_path / "bad.jsonl.gz"))[0])


def test_hub_spec_parsing():
    assert HubSource.parse("hf:HuggingFaceH4/ultrafeedback_binarized@main:train_prefs") == HubSource(
        "HuggingFaceH4/ultrafeedback_binarized", "main", "train_prefs"
    )
    assert HubSource.parse("hf:Anthropic/hh-rlhf") == HubSource("Anthropic/hh-rlhf", None, None)
    with pytest.raises(SourceError):
        HubSource.parse("hf:")


def test_hub_path_loads_a_locally_saved_dataset(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict(
        {"chosen": ["\n\nHuman: a\n\nAssistant: b"], "rejected": ["\n\nHuman: a\n\nAssistant: c"]}
    )
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "saved"))
    raw = read(resolve(f"hf:{tmp_path / 'saved'}:test")[0])
    assert raw.frame.height == 1 and raw.label.endswith(":test")
    with pytest.raises(SourceError, match="name a split"):
        read(resolve(f"hf:{tmp_path / 'saved'}")[0])
    (tmp_path / "repo").mkdir()
    ds.to_parquet(str(tmp_path / "repo" / "train.parquet"))
    raw = read(resolve(f"hf:{tmp_path / 'repo'}:train")[0])
    assert raw.frame["chosen"].to_list() == ds["chosen"]


def test_hostile_lines_are_one_reject_each_and_the_rest_reads(tmp_path):
    """A line nested 100,000 deep, a lone surrogate escape, a number where the others have text, a
    2**70 integer and a line over the limit: one reject each, with its reason, and the good lines
    around them still read."""
    lines = [
        b'{"a": "one"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": "\\ud800"}',
        b'{"a": "two"}',
        b'{"a": NaN}',
        b'{"a": "three", "n": ' + str(2**70).encode() + b"}",
        b'{"a": "' + b"x" * 300_000 + b'"}',
        b'{"a": "four"}',
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    (raw,) = list(iter_batches(path, max_line_bytes=250_000))
    assert raw.frame["a"].to_list() == ["one", "two", "four"]
    assert raw.frame[LINE].to_list() == [1, 4, 8]
    rejects = dict(zip(raw.rejects[LINE].to_list(), raw.rejects[REASON].to_list(), strict=True))
    assert rejects == {
        2: "invalid_json",
        3: "invalid_utf8",
        5: "wrong_type",
        6: "invalid_json",
        7: "line_too_long",
    }
    assert raw.read == len(lines)


def test_a_gigantic_line_streams_past_without_being_held(tmp_path):
    """A .jsonl.gz whose one line inflates far past the limit: skipped as it streams, one reject,
    the lines after it read; batches stay small whatever the line's size."""
    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b'{"a": "before"}\n')
        for _ in range(64):  # 64 MiB of blanks on one line, in 1 MiB writes
            handle.write(b" " * (1 << 20))
        handle.write(b'\n{"a": "after"}\n')
    batches = list(iter_batches(path, batch_bytes=1 << 20, max_line_bytes=4 << 20))
    records = [a for b in batches if b.frame.height for a in b.frame["a"].to_list()]
    assert records == ["before", "after"]
    (reject,) = [r for b in batches for r in b.rejects.rows(named=True)]
    assert (reject[LINE], reject[REASON]) == (2, "line_too_long")
    assert reject[DETAIL].startswith("67,108,864 bytes")
    line_text = next(b for b in batches if b.rejects.height).record_text([2])[2]
    assert len(line_text) <= 1001 and line_text.endswith("…")
    assert [b.frame[LINE].to_list() for b in batches if b.frame.height] == [[1], [3]]
