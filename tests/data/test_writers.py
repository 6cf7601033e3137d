import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from prefkit.atomic_files import atomic_path, line_sink, write_json
from prefkit.data.schema import frame_schema
from prefkit.data.writers import pair_sink, reject_line


def standard_pairs(n: int) -> pl.DataFrame:
    schema = frame_schema("standard")
    rows = {name: [f"{name}{i}" for i in range(n)] for name in ("id", "source", "prompt", "chosen", "rejected")}
    return pl.DataFrame(rows | {"score_chosen": [None] * n, "score_rejected": [None] * n}, schema=schema)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_failure_mid_stream_leaves_no_output_and_no_temporary_file(tmp_path, suffix):
    target = tmp_path / f"out{suffix}"
    target.write_text("previous run\n")
    with pytest.raises(RuntimeError, match="boom"), pair_sink(target, "standard") as write:
        write(standard_pairs(3))
        raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert target.read_text() == "previous run\n"  # the old output is untouched


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_killed_writer_leaves_nothing_behind(tmp_path, suffix):
    script = f"""
import os, signal
from pathlib import Path
from prefkit.data.writers import pair_sink
from tests.data.test_writers import standard_pairs
with pair_sink(Path({str(tmp_path / ("out" + suffix))!r}), "standard") as write:
    write(standard_pairs(1000))
    os.kill(os.getpid(), signal.SIGKILL)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, check=False)
    assert done.returncode == -9
    assert list(tmp_path.iterdir()) == []


def test_completed_writes_land_whole(tmp_path):
    with pair_sink(tmp_path / "a.parquet", "standard") as write:
        write(standard_pairs(2))
        write(standard_pairs(3))
    assert pl.read_parquet(tmp_path / "a.parquet")["id"].to_list() == ["id0", "id1", "id0", "id1", "id2"]
    with pair_sink(tmp_path / "empty.parquet", "conversational"):
        pass
    assert dict(pl.read_parquet(tmp_path / "empty.parquet").schema) == frame_schema("conversational")
    write_json({"b": [1, 2]}, tmp_path / "r.json")
    with line_sink(tmp_path / "l.txt") as write:
        write(["x", "y"])
    assert json.loads((tmp_path / "r.json").read_text()) == {"b": [1, 2]}
    assert (tmp_path / "l.txt").read_text() == "x\ny\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "empty.parquet", "l.txt", "r.json"]


def test_without_anonymous_files_the_named_temporary_is_cleaned_up(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    with pytest.raises(ValueError), atomic_path(tmp_path / "x.json") as tmp:
        assert tmp.name == f".x.json.tmp-{os.getpid()}"
        tmp.write_text("half")
        raise ValueError
    assert list(tmp_path.iterdir()) == []
    with atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("whole")
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_reject_line_embeds_json_records_and_quotes_raw_text():
    assert json.loads(reject_line("a.jsonl", 2, "tie", "both 5", '{"x": 1}', True))["record"] == {"x": 1}
    assert json.loads(reject_line("a.jsonl", 3, "invalid_json", "oops", "{bad", False))["record"] == "{bad"
