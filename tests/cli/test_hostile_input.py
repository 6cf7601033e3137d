"""Nothing lost on hostile input: no output over an input, no two outputs in one file, one bad line
is one reject, and no traceback reaches the user."""

import json

import pytest
from click.testing import CliRunner

from prefkit.cli import main
from tests.conftest import hh, write_canonical


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def files_of(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def raw(tmp_path):
    path = tmp_path / "raw.jsonl"
    path.write_text(json.dumps({"chosen": hh("Q", "a"), "rejected": hh("Q", "b")}) + "\n")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "{raw}"],
        ["-o", "./{raw_name}"],
        ["-o", "{link}"],
        ["-o", "{out}", "--rejects", "{raw}"],
        ["-o", "{out}", "--report", "{raw}"],
    ],
)
def test_convert_never_writes_over_its_input(raw, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link.jsonl").symlink_to(raw)
    before = raw.read_bytes()
    names = {"raw": raw, "raw_name": raw.name, "link": tmp_path / "link.jsonl", "out": tmp_path / "out.jsonl"}
    result = run("convert", raw, *(a.format(**names) for a in args))
    assert result.exit_code == 2
    assert "is an input: writing it would replace the data it reads" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert raw.read_bytes() == before and files_of(tmp_path) == ["link.jsonl", "raw.jsonl"]


def test_two_outputs_in_one_file_is_a_usage_error(raw, tmp_path):
    result = run("convert", raw, "-o", tmp_path / "x.jsonl", "--rejects", tmp_path / "x.jsonl")
    assert result.exit_code == 2 and "-o and --rejects both name" in result.stderr
    result = run(
        "convert", raw, "-o", tmp_path / "x.jsonl", "--rejects", tmp_path / "r.json", "--report", tmp_path / "r.json"
    )
    assert result.exit_code == 2 and "--rejects and --report both name" in result.stderr
    assert files_of(tmp_path) == ["raw.jsonl"]


def test_dedupe_mix_validate_lint_and_eval_refuse_to_write_over_inputs(tmp_path):
    pairs = [
        (
            [{"role": "user", "content": f"Q{i}"}],
            [{"role": "assistant", "content": "a"}],
            [{"role": "assistant", "content": "b"}],
        )
        for i in range(4)
    ]
    data = write_canonical(tmp_path / "train.jsonl", pairs)
    before = data.read_bytes()
    assert run("dedupe", data, "-o", data).exit_code == 2
    # a mix writes train.jsonl into its folder: the folder holding the source is refused
    mixed = run("mix", data, "-o", tmp_path)
    assert mixed.exit_code == 2 and f"-o {data} is an input" in mixed.stderr
    assert run("validate", data, "--report", data).exit_code == 2
    assert run("lint", data, "--report", data).exit_code == 2
    assert run("lint", data, "--rejects", data).exit_code == 2
    assert run("card", data, "-o", tmp_path / "README.md").exit_code == 0  # beside it is fine
    assert run("card", data, "-o", data).exit_code == 2
    assert data.read_bytes() == before


def test_evaluate_refuses_before_loading_a_model(tmp_path):
    from prefkit.errors import UsageError
    from prefkit.lm.evaluate import EvalConfig, evaluate

    data = write_canonical(
        tmp_path / "d.jsonl",
        [
            (
                [{"role": "user", "content": "Q"}],
                [{"role": "assistant", "content": "a"}],
                [{"role": "assistant", "content": "b"}],
            )
        ],
    )
    with pytest.raises(UsageError, match="--per-pair .* is an input"):
        evaluate(EvalConfig(model="no-such-model-folder", data=str(data), per_pair=str(data)))


def test_train_refuses_an_output_dir_that_holds_its_data(tmp_path):
    from prefkit.errors import UsageError
    from prefkit.lm.train import DataSettings, TrainConfig, train

    data = write_canonical(
        tmp_path / "train.jsonl",
        [
            (
                [{"role": "user", "content": "Q"}],
                [{"role": "assistant", "content": "a"}],
                [{"role": "assistant", "content": "b"}],
            )
        ],
    )
    with pytest.raises(UsageError, match="output_dir .* holds the training data"):
        train(TrainConfig(data=DataSettings(train=str(data)), output_dir=str(tmp_path)))
    assert files_of(tmp_path) == ["train.jsonl"]


def test_one_hostile_line_is_one_reject_and_the_rest_converts(tmp_path):
    good = json.dumps({"chosen": hh("Q", "a"), "rejected": hh("Q", "b")}).encode()
    other = json.dumps({"chosen": hh("R", "a"), "rejected": hh("R", "b")}).encode()
    lines = [
        good,
        b"[" * 100_000,
        b'{"chosen": "\\ud800", "rejected": "x"}',
        b'{"chosen": "' + b"x" * 200_000 + b'"}',
        other,
    ]
    src = tmp_path / "hostile.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    result = run("convert", src, "-o", tmp_path / "out.jsonl", "--max-line-bytes", "150000", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["read"], report["written"], report["rejected"]) == (5, 2, 3)
    assert report["reasons"] == {"invalid_json": 1, "invalid_utf8": 1, "line_too_long": 1}
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (2, "invalid_json"),
        (3, "invalid_utf8"),
        (4, "line_too_long"),
    ]
    assert len(rejects[2]["record"]) <= 1001


def test_an_unexpected_error_is_one_line_with_the_traceback_in_a_file(raw, tmp_path, monkeypatch):
    import prefkit.data.convert

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(prefkit.data.convert, "apply_checks", broken)
    monkeypatch.setenv("PREFKIT_CACHE", str(tmp_path / "cache"))
    result = run("convert", raw, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 70
    (line,) = result.stderr.strip().splitlines()
    assert "prefkit convert" in line and "internal error" in line and "KeyError: 'boom'" in line
    assert "Traceback" not in result.output
    (log,) = (tmp_path / "cache" / "crashes").iterdir()
    assert str(log) in line and "Traceback" in log.read_text() and "apply_checks" not in log.name
    assert not (tmp_path / "out.jsonl").exists()
    verbose = CliRunner().invoke(main, ["-v", "convert", str(raw), "-o", str(tmp_path / "out.jsonl")])
    assert verbose.exit_code == 70 and "Traceback" in verbose.stderr
