import json

from click.testing import CliRunner

from prefkit.cli import main
from tests.conftest import canonical_row, hh, read_jsonl, write_canonical


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_convert_then_validate(write_jsonl, tmp_path):
    src = write_jsonl("a.jsonl", [{"chosen": hh("Q", "a"), "rejected": hh("Q", "b")}, "{bad"])
    out = tmp_path / "out.jsonl"
    result = run("convert", src, "-o", out)
    assert result.exit_code == 0, result.output
    assert "hh-rlhf" in result.output and "invalid_json 1" in result.output
    validated = run("validate", out)
    assert validated.exit_code == 0 and f"ok {out}: 1 rows, conversational style" in validated.output
    strict = run("convert", src, "-o", tmp_path / "strict.jsonl", "--strict")
    assert strict.exit_code == 1 and "strict: 1 of 2 records rejected" in strict.output
    # strict fails the run; the outputs are complete, so what was rejected can be read
    assert len((tmp_path / "strict.rejects.jsonl").read_text().splitlines()) == 1


def test_validate_failure_exits_1_and_writes_report(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"chosen": "a", "rejected": "b"}\n')
    report = tmp_path / "report.json"
    result = run("validate", bad, "--report", report)
    assert result.exit_code == 1
    assert "column is present" in result.output
    data = json.loads(report.read_text())
    assert data["ok"] is False and data["files"][0]["path"] == str(bad)
    assert data["files"][0]["failing_rows"] == 1 and data["records"] == 1


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


def test_json_output_is_one_object_that_adds_up(write_jsonl, tmp_path):
    src = write_jsonl("a.jsonl", [{"chosen": hh("Q", "a"), "rejected": hh("Q", "b")}, "{bad", {"chosen": 1}])
    result = run("convert", src, "-o", tmp_path / "out.jsonl", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["read"], report["written"], report["rejected"]) == (3, 1, 2)
    assert report["reasons"] == {"invalid_json": 1, "wrong_type": 1}
    assert [r["line"] for r in report["first_rejects"]] == [2, 3]
    validated = json.loads(run("validate", tmp_path / "out.jsonl", "--json").stdout)
    assert validated["ok"] is True and validated["records"] == 1 and validated["failing"] == 0


def test_validate_format_is_a_dry_run_listing_rejects(write_jsonl, tmp_path):
    src = write_jsonl(
        "raw.jsonl",
        [
            {"chosen": hh("Q", "a"), "rejected": hh("Q", "b")},
            {"chosen": hh("Q", "same"), "rejected": hh("Q", "same")},
            "{bad",
        ],
    )
    result = run("validate", "--format", "hh-rlhf", src)
    assert result.exit_code == 1
    assert "dry run: nothing written" in result.output
    assert "identical_responses" in result.output and "invalid_json" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.jsonl"]
    report = json.loads(run("validate", "--format", "auto", src, "--json").stdout)
    assert report["conversion"]["output"] is None
    assert [(r["line"], r["reason"]) for r in report["conversion"]["first_rejects"]] == [
        (2, "identical_responses"),
        (3, "invalid_json"),
    ]
    # 2 of 3 records fail: above a 50% threshold fails, above 70% passes
    assert run("validate", "--format", "hh-rlhf", src, "--fail-on", "0.5").exit_code == 1
    assert run("validate", "--format", "hh-rlhf", src, "--fail-on", "0.7").exit_code == 0
    assert run("validate", "--format", "hh-rlhf", src, "--fail-on", "never").exit_code == 0
    clean = write_jsonl("clean.jsonl", [{"chosen": hh("Q", "a"), "rejected": hh("Q", "b")}])
    assert run("validate", "--format", "hh-rlhf", clean).exit_code == 0


def test_validate_on_a_raw_file_hints_at_the_dry_run(write_jsonl):
    src = write_jsonl("raw.jsonl", [{"chosen": hh("Q", "a"), "rejected": hh("Q", "b")}])
    result = run("validate", src)
    assert result.exit_code == 1
    assert f"looks like hh-rlhf: prefkit validate --format hh-rlhf {src}" in result.output.replace("\n", "")


def test_no_overlap_and_duplicate_share_gates(tmp_path):
    prompts = ["How do I bake bread at home today", "Name three rivers in Europe please", "What is 2 + 2"]
    train = write_canonical(
        tmp_path / "train.jsonl",
        [
            (
                [{"role": "user", "content": p}],
                [{"role": "assistant", "content": "a"}],
                [{"role": "assistant", "content": "b"}],
            )
            for p in [*prompts, prompts[2]]
        ],
    )
    heldout = write_canonical(
        tmp_path / "test.jsonl",
        [
            (
                [{"role": "user", "content": "name three rivers in europe, please"}],
                [{"role": "assistant", "content": "x"}],
                [{"role": "assistant", "content": "y"}],
            )
        ],
    )
    result = run("validate", train, "--no-overlap", heldout, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["gates_failed"] == ["no_overlap"]
    assert [(m["line"], m["duplicate_of_line"]) for m in report["overlap"]] == [(2, 1)]
    dup = json.loads(run("validate", train, "--max-duplicate-share", "0.2", "--json").stdout)
    assert (dup["duplicates"]["duplicates"], dup["duplicates"]["pairs"]) == (1, 4)
    assert dup["gates_failed"] == ["max_duplicate_share"] and dup["ok"] is False
    assert run("validate", train, "--max-duplicate-share", "0.25").exit_code == 0


def test_github_annotations_summary_and_outputs(tmp_path, monkeypatch):
    bad = tmp_path / "data, v1.jsonl"
    bad.write_text(
        json.dumps(canonical_row(id="a"))
        + "\n"
        + json.dumps(canonical_row(id="b", chosen=canonical_row()["rejected"]))
        + "\n"
    )
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    result = run("validate", bad, "--github")
    assert result.exit_code == 1
    annotations = [line for line in result.output.splitlines() if line.startswith("::error")]
    assert annotations == [
        (
            f"::error file={str(bad).replace(',', '%2C')},line=2::replies_differ: identical_responses: "
            "chosen and rejected replies differ"
        )
    ]
    assert "## prefkit validate: failed" in summary.read_text()
    assert f"| `{bad}` | 2 | 1 |" in summary.read_text()
    assert outputs.read_text() == "ok=false\nfailing=1\n"


def test_dedupe_command_writes_kept_pairs_and_removals(write_jsonl, tmp_path):
    rows = [{"chosen": hh(q, "a"), "rejected": hh(q, "b")} for q in ("One", "Two", "one ", "Three")]
    src = write_jsonl("raw.jsonl", rows)
    result = run("dedupe", src, "-o", tmp_path / "d.jsonl", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["read"], report["written"], report["removed"]) == (4, 3, {"exact": 1})
    removed = read_jsonl(tmp_path / "d.removed.jsonl")
    assert [(r["line"], r["duplicate_of_line"], r["method"]) for r in removed] == [(3, 1, "exact")]
    plain = run("dedupe", src, "-o", tmp_path / "e.jsonl", "--prompt", "--no-exact")
    assert plain.exit_code == 0 and "removed: prompt 1, wrote 3" in plain.output


def test_card_command_writes_a_card_and_refuses_raw_input(write_jsonl, tmp_path):
    src = write_jsonl("raw.jsonl", [{"chosen": hh(f"Q{i}", "a"), "rejected": hh(f"Q{i}", "b")} for i in range(3)])
    assert run("convert", src, "-o", tmp_path / "train.jsonl").exit_code == 0
    result = run("card", tmp_path / "train.jsonl", "-o", tmp_path / "card" / "README.md")
    assert result.exit_code == 0 and "wrote" in result.output
    assert "| hh-rlhf:raw.jsonl | 3 |" in (tmp_path / "card" / "README.md").read_text()
    refused = run("card", src, "-o", tmp_path / "c2" / "README.md")
    assert refused.exit_code == 1 and "column is present" in refused.output
    assert not (tmp_path / "c2").exists()


def test_mix_quick_form_json_and_recipe_flag_conflict(write_jsonl, tmp_path):
    a = write_jsonl("a.jsonl", [{"chosen": hh(f"A{i}", "x"), "rejected": hh(f"A{i}", "y")} for i in range(10)])
    b = write_jsonl("b.jsonl", [{"chosen": hh(f"B{i}", "x"), "rejected": hh(f"B{i}", "y")} for i in range(10)])
    result = run("mix", a, b, "--weights", "0.5,0.5", "--total", 8, "--test-size", 0.25, "-o", tmp_path / "m", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["train"], report["test"]) == (6, 2)
    assert [s["kept"] for s in report["sources"]] == [4, 4]
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"sources:\n  - path: {a}\n")
    conflict = run("mix", recipe, "--total", 5, "-o", tmp_path / "m2")
    assert conflict.exit_code == 2 and "total: set it in the recipe" in conflict.output


def test_every_command_has_example_lines_and_the_group_lists_them():
    from prefkit.cli import main as group

    listed = run("--help").output
    for name in group.commands:
        assert f"    {name} " in listed, name
        help_text = run(name, "--help").output
        assert "Example:" in help_text and f"prefkit {name}" in help_text.split("Example:")[1], name


def test_config_defaults_reach_the_cli_unchanged():
    from prefkit.data.dedupe import DedupeConfig

    help_text = run("dedupe", "--help").output
    assert f"[default: {DedupeConfig().near_threshold}; 0<x<=1]" in help_text
    assert f"[default: {DedupeConfig().num_perm}; x>=16]" in help_text
    out_of_range = run("dedupe", "x.jsonl", "-o", "y.jsonl", "--near-threshold", "1.5")
    assert out_of_range.exit_code == 2 and "0<x<=1" in out_of_range.output


def test_model_commands_without_the_extra_name_the_install(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trl" else real(name, *a))
    result = run("eval", "--model", "m", "--data", tmp_path / "d.jsonl")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: prefkit eval needs the training extra (trl missing): pip install 'prefkit[train]'"
    )


def test_convert_ranked_source_shows_candidates_and_validate_dry_runs_labels(write_jsonl, tmp_path):
    nectar = write_jsonl(
        "nectar.jsonl",
        [{"prompt": "\n\nHuman: Q\n\nAssistant:", "answers": [{"answer": f"a{r}", "rank": r} for r in (2, 1, 3)]}],
    )
    table = run("convert", nectar, "-o", tmp_path / "n.jsonl", "--binarize", "all-pairs")
    assert table.exit_code == 0, table.output
    assert "candidates" in table.output and "nectar" in table.output
    as_json = run("convert", nectar, "-o", tmp_path / "n2.jsonl", "--binarize", "all-pairs", "--json")
    report = json.loads(as_json.stdout)
    assert (report["read"], report["candidates"], report["written"]) == (1, 3, 3)
    votes = write_jsonl(
        "pref.jsonl",
        [
            {"prompt": "Q", "response_1": "a", "response_2": "b", "preference_strength": -1},
            {"prompt": "Q2", "response_1": "a", "response_2": "b", "preference_strength": 9},
        ],
    )
    dry = run("validate", "--format", "auto", votes)
    assert dry.exit_code == 1 and "invalid_label" in dry.output
    conversion = json.loads(run("validate", "--format", "auto", votes, "--json").stdout)["conversion"]
    assert conversion["sources"][0]["format"] == "helpsteer2-preference"
    assert conversion["reasons"] == {"invalid_label": 1}
    assert not (tmp_path / "pref.rejects.jsonl").exists()
