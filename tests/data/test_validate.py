import json

import polars as pl

from prefkit.data.validate import validate_file
from tests.conftest import canonical_row


def line(**overrides):
    return json.dumps(canonical_row(score_chosen=1) | overrides)


def test_integer_scores_and_content_role_order_are_accepted(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text(line() + "\n" + line(id="b", prompt=[{"content": "Q", "role": "user"}]) + "\n")
    result = validate_file(path)
    assert result.ok and result.rows == 2 and result.style == "conversational"


def test_collects_parse_and_row_failures_with_line_numbers(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                line(),
                "{broken",
                line(id="a"),
                line(id="c", chosen=[{"role": "assistant", "content": ""}]),
                line(id="d", score_chosen=float("nan")),
            ]
        )
        + "\n"
    )
    result = validate_file(path)
    assert not result.ok and result.rows == 5
    found = {f.check: (f.rows, [e.line for e in f.examples]) for f in result.failures}
    assert found == {
        "invalid_json": (1, [2]),
        "field_uniqueness": (2, [1, 3]),
        "replies_not_empty": (1, [4]),
        "scores_finite": (1, [5]),
    }


def test_non_canonical_file_reports_schema_problems_not_cascades(tmp_path):
    path = tmp_path / "raw.parquet"
    pl.DataFrame({"chosen": ["a"], "rejected": ["b"]}).write_parquet(path)
    result = validate_file(path)
    checks = {f.check for f in result.failures}
    assert "column_in_dataframe" in checks
    assert not checks & {"replies_differ", "prompt_not_empty"}


def test_standard_style_output_validates(write_jsonl, run_convert, tmp_path):
    from tests.conftest import hh

    path = write_jsonl("hh.jsonl", [{"chosen": hh("Q", "A", "Q2", "yes"), "rejected": hh("Q", "A", "Q2", "no")}])
    run_convert(path, style="standard", output="std.jsonl")
    result = validate_file(tmp_path / "std.jsonl")
    assert result.ok and result.style == "standard"
