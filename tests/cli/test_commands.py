import json

from click.testing import CliRunner

from prefkit.cli import main
from tests.conftest import hh


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_convert_then_validate(write_jsonl, tmp_path):
    src = write_jsonl("a.jsonl", [{"chosen": hh("Q", "a"), "rejected": hh("Q", "b")}, "{bad"])
    out = tmp_path / "out.jsonl"
    result = run("convert", src, "-o", out)
    assert result.exit_code == 0, result.output
    assert "hh-rlhf" in result.output and "invalid_json 1" in result.output
    assert run("validate", out).exit_code == 0
    assert run("convert", src, "-o", tmp_path / "strict.jsonl", "--strict").exit_code == 1


def test_validate_failure_exits_1_and_writes_report(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"chosen": "a", "rejected": "b"}\n')
    report = tmp_path / "report.json"
    result = run("validate", bad, "--report", report)
    assert result.exit_code == 1
    assert "column is present" in result.output
    data = json.loads(report.read_text())
    assert data[0]["ok"] is False and data[0]["path"] == str(bad)


def test_usage_errors_exit_2_with_one_line(write_jsonl, tmp_path):
    src = write_jsonl("a.jsonl", [{"q": "x", "a": "y", "b": "z"}])
    cases = [
        (["convert", tmp_path / "missing.jsonl", "-o", tmp_path / "o.jsonl"], "no such file"),
        (["convert", src, "-o", tmp_path / "o.jsonl"], "cannot detect the format"),
        (
            ["convert", src, "--field", "prompt=nope", "-o", tmp_path / "o.jsonl"],
            "--field prompt=nope: no record has the key 'nope'",
        ),
        (["convert", src, "--format", "sharegpt", "-o", tmp_path / "o.jsonl"], "Invalid value for '--format'"),
        (["convert", src, "-o", tmp_path / "o.csv"], "must end in .jsonl or .parquet"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_error_is_one_line(write_jsonl, tmp_path):
    result = run("convert", tmp_path / "missing.jsonl", "-o", tmp_path / "o.jsonl")
    assert result.output.strip().count("\n") == 0


def test_sample_command_writes_convertible_data(tmp_path):
    assert run("sample", tmp_path / "s", "--train", 8, "--heldout", 4).exit_code == 0
    result = run(
        "convert",
        tmp_path / "s" / "heldout.custom.jsonl",
        "-o",
        tmp_path / "h.jsonl",
        "--field",
        "prompt=question",
        "--field",
        "chosen=answers.good",
        "--field",
        "rejected=answers.bad",
    )
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "h.jsonl").read_text().splitlines()) == 4
