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


def test_validate_json_and_the_card_report_the_length_gap(tmp_path):
    """A source whose chosen reply is longer in 3 of 4 pairs shows it before training: the share, and
    the mean gap in words with an interval that holds it, both checked against a direct count."""
    import json

    from click.testing import CliRunner

    from prefkit.cli import main
    from tests.conftest import write_canonical

    replies = [("a b c d e", "x"), ("a b c", "x y"), ("a", "x y z"), ("a b c d", "x")]
    pairs = [(f"Question {i}?", c, r) for i, (c, r) in enumerate(replies)]
    data = write_canonical(
        tmp_path / "pairs.jsonl",
        [
            ([{"role": "user", "content": p}],) + tuple([{"role": "assistant", "content": t}] for t in (c, r))
            for p, c, r in pairs
        ],
    )
    done = CliRunner().invoke(main, ["validate", str(data), "--json"])
    assert done.exit_code == 0, done.output
    gap = json.loads(done.output)["files"][0]["length_gap"]
    gaps = [len(c.split()) - len(r.split()) for c, r in replies]
    assert (gap["pairs"], gap["chosen_longer"], gap["mean_gap"]) == (4, 0.75, sum(gaps) / 4)
    assert gap["gap_low"] <= gap["mean_gap"] <= gap["gap_high"] and gap["unit"] == "words"
    card = CliRunner().invoke(main, ["card", str(data), "-o", str(tmp_path / "card" / "README.md")])
    assert card.exit_code == 0, card.output
    text = (tmp_path / "card" / "README.md").read_text()
    assert f"All 4 pairs: the chosen reply is the longer in 75.0%; mean gap {sum(gaps) / 4:+.1f} (" in text
