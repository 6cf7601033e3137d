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


def test_label_value_reads_every_spelling_in_its_direction():
    from prefkit.data.adapters.unpaired import DESIRABLE_WORDS, UNDESIRABLE_WORDS, label_value

    words = pl.DataFrame({"v": [*DESIRABLE_WORDS, *UNDESIRABLE_WORDS, " Thumbs Up ", "THUMBS DOWN", "maybe", ""]})
    read = words.select(label_value(pl.col("v"), "string")).to_series().to_list()
    n, m = len(DESIRABLE_WORDS), len(UNDESIRABLE_WORDS)
    assert read == [True] * n + [False] * m + [True, False, None, None]
    numbers = pl.DataFrame({"v": [1.0, 0.0, -1.0, 2.0, 0.5, None]}).select(label_value(pl.col("v"), "number"))
    assert numbers.to_series().to_list() == [True, False, False, None, None, None]


THUMBS = [
    {"q": "What is 2+2?", "a": "4", "thumbs": "up"},  # 1 kept, desirable
    {"q": "What is 2+2?", "a": "5", "thumbs": "down"},  # 2 kept, undesirable
    {"q": "Capital of France?", "a": "Paris", "thumbs": "👍"},  # 3 kept, desirable
    {"q": "Capital of France?", "a": "Paris", "thumbs": "👎"},  # 4 conflicting_labels (line 3)
    {"q": "Capital of France?", "a": "Paris", "thumbs": "good"},  # 5 duplicate of line 3
    {"q": "Hi", "a": "   ", "thumbs": "up"},  # 6 empty_response
    {"q": "Hi", "a": "Hello", "thumbs": "meh"},  # 7 invalid_label
    {"q": "", "a": "Hello", "thumbs": "down"},  # 8 empty_prompt
    "not json",  # 9 invalid_json
    {"q": "Bye", "a": "Bye!", "thumbs": "Thumbs Down"},  # 10 kept, undesirable
    {"q": "Bye", "thumbs": "up"},  # 11 missing_field
]


def test_thumbs_feedback_is_read_validated_and_accounted_for(write_jsonl, tmp_path):
    from prefkit.data.validate import validate_file

    source = write_jsonl("thumbs.jsonl", THUMBS)
    out = tmp_path / "feedback.jsonl"
    fields = ["--field", "prompt=q", "--field", "completion=a", "--field", "label=thumbs"]
    run = CliRunner().invoke(main, ["convert", str(source), *fields, "--to", "unpaired", "-o", str(out), "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    assert (report["read"], report["written"], report["rejected"]) == (11, 4, 7)
    assert report["unpaired"] == {"records": 4, "desirable": 2, "undesirable": 2}
    records = read_jsonl(out)
    assert [(r["prompt"][0]["content"], r["completion"][0]["content"], r["label"]) for r in records] == [
        ("What is 2+2?", "4", True),
        ("What is 2+2?", "5", False),
        ("Capital of France?", "Paris", True),
        ("Bye", "Bye!", False),
    ]
    assert all(r["pair_id"] is None and r["source"] == "custom:thumbs.jsonl" for r in records)
    rejects = {r["line"]: (r["reason"], r["detail"]) for r in read_jsonl(tmp_path / "feedback.rejects.jsonl")}
    assert {line: reason for line, (reason, _) in rejects.items()} == {
        4: "conflicting_labels",
        5: "duplicate",
        6: "empty_response",
        7: "invalid_label",
        8: "empty_prompt",
        9: "invalid_json",
        11: "missing_field",
    }
    assert rejects[4][1] == f"same record as {source} line 3, labelled the other way"
    assert "got meh" in rejects[7][1]
    checked = validate_file(out)
    assert checked.ok and (checked.kind, checked.rows) == ("unpaired", 4)


def test_trl_unpaired_files_are_detected_and_written_as_canonical(write_jsonl, tmp_path):
    source = write_jsonl(
        "kto.jsonl",
        [
            {"prompt": "Say hi", "completion": "Hi!", "label": True},
            {"prompt": "Say bye", "completion": "Whatever.", "label": False},
            {"prompt": "Say yo", "completion": "Yo.", "label": None},
        ],
    )
    out = tmp_path / "kto.canonical.parquet"
    run = CliRunner().invoke(main, ["convert", str(source), "--to", "unpaired", "-o", str(out), "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    assert report["sources"][0]["format"] == "unpaired"
    assert (report["written"], report["reasons"]) == (2, {"missing_field": 1})
    frame = pl.read_parquet(out)
    assert frame.columns == ["id", "pair_id", "source", "prompt", "completion", "label"]
    assert frame["label"].to_list() == [True, False]
    # A completion given as the whole conversation brings its own prompt.
    conversation = write_jsonl(
        "conversation.jsonl",
        [{"completion": [{"role": "user", "content": "Say yo"}, {"role": "assistant", "content": "Yo."}], "label": 1}],
    )
    out = tmp_path / "conversation.canonical.jsonl"
    run = CliRunner().invoke(main, ["convert", str(conversation), "--to", "unpaired", "-o", str(out)])
    assert run.exit_code == 0, run.output
    (record,) = read_jsonl(out)
    assert record["prompt"] == [{"role": "user", "content": "Say yo"}]
    assert (record["completion"], record["label"]) == ([{"role": "assistant", "content": "Yo."}], True)


def test_an_unpaired_source_is_refused_where_pairs_are_needed(write_jsonl, tmp_path):
    source = write_jsonl("kto.jsonl", [{"prompt": "Say hi", "completion": "Hi!", "label": True}])
    out = tmp_path / "out.jsonl"
    run = CliRunner().invoke(main, ["convert", str(source), "-o", str(out)])
    assert run.exit_code == 2 and "write it with --to unpaired" in run.output
    assert not out.exists()
    assert CliRunner().invoke(main, ["mix", str(source), "-o", str(tmp_path / "mixed")]).exit_code == 2
    converted = tmp_path / "records.jsonl"
    assert CliRunner().invoke(main, ["convert", str(source), "--to", "unpaired", "-o", str(converted)]).exit_code == 0
    linted = CliRunner().invoke(main, ["lint", str(converted), "--model", "gpt2"])
    assert linted.exit_code == 2 and "holds unpaired records" in linted.output


def test_pairs_and_feedback_sources_write_one_unpaired_file(write_jsonl, tmp_path):
    raw = write_sample(tmp_path / "demo")["train"]
    thumbs = write_jsonl("thumbs.jsonl", THUMBS)
    out = tmp_path / "all.jsonl"
    fields = ["--field", "prompt=q", "--field", "completion=a", "--field", "label=thumbs"]
    # --field applies to every source, so the thumbs file is converted first and then joined.
    first = tmp_path / "thumbs.canonical.jsonl"
    run = CliRunner().invoke(main, ["convert", str(thumbs), *fields, "--to", "unpaired", "-o", str(first)])
    assert run.exit_code == 0, run.output
    run = CliRunner().invoke(main, ["convert", str(raw), str(first), "--to", "unpaired", "-o", str(out), "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    assert [s["format"] for s in report["sources"]] == ["hh-rlhf", "unpaired"]
    assert report["unpaired"] == {"records": 964, "desirable": 482, "undesirable": 482}
    records = read_jsonl(out)
    assert len(records) == 964 and sum(r["pair_id"] is None for r in records) == 4
    # Converting the unpaired file again changes nothing: ids, order, labels.
    again = tmp_path / "again.jsonl"
    assert CliRunner().invoke(main, ["convert", str(out), "--to", "unpaired", "-o", str(again)]).exit_code == 0
    assert read_jsonl(again) == records
    # The thumbs records keep their source name through the canonical file.
    assert {r["source"] for r in records if r["pair_id"] is None} == {"custom:thumbs.jsonl"}


def test_validate_names_what_is_wrong_with_an_unpaired_file(write_jsonl):
    from prefkit.data.validate import validate_file

    good = {"id": "a", "pair_id": None, "source": "s", "prompt": "Hi", "completion": "Hello", "label": True}
    path = write_jsonl(
        "bad.jsonl",
        [good, good | {"id": "b", "completion": " "}, good | {"id": "c", "label": None}, good],
    )
    result = validate_file(path)
    assert result.kind == "unpaired" and not result.ok
    found = {f.check: f.lines for f in result.failures}
    assert found["completion_not_empty"] == [2]
    assert any("not_nullable" in check for check in found) and found["field_uniqueness"] == [1, 4]


def test_the_card_gives_the_class_balance_and_the_kto_weights(write_jsonl, tmp_path):
    from prefkit.data.card import kto_weights

    rows = [
        {
            "id": f"r{i}",
            "source": "s" if i < 8 else "t",
            "prompt": f"Q{i}",
            "completion": "A " * (i + 1),
            "label": i % 4 == 0,
        }
        for i in range(12)
    ]
    path = write_jsonl("feedback.jsonl", rows)
    card = tmp_path / "card" / "README.md"
    run = CliRunner().invoke(main, ["card", str(path), "-o", str(card)])
    assert run.exit_code == 0, run.output
    text = card.read_text()
    # 3 desirable (i = 0, 4, 8) of 12: s has 0 and 4 of 8, t has 8 of 4.
    assert "| s | 8 | 2 | 6 | 0.25 |" in text and "| t | 4 | 1 | 3 | 0.25 |" in text
    assert "| all | 12 | 3 | 9 | 0.25 |" in text
    assert kto_weights(3, 9) == (3.0, 3.99, 0.25, 0.33)
    assert "`desirable_weight` in [3.0, 3.99]" in text and "`undesirable_weight` in [0.25, 0.33]" in text
    # Completion lengths by label, in words: desirable i = 0, 4, 8 have 1, 5, 9 words; mean 5.0.
    words = pl.Series([1, 5, 9])
    quantiles = [int(words.quantile(q, "nearest")) for q in (0.05, 0.25, 0.5, 0.75, 0.95)]
    assert f"| desirable | 3 | {' | '.join(map(str, quantiles))} | 5.0 |" in text


def test_a_label_column_of_no_usable_type_rejects_every_record(write_jsonl, tmp_path):
    # Found by the fuzz test: a label null in every record (or a list) once crashed convert.
    for name, label, reason in (("null", None, "missing_field"), ("list", [1], "wrong_type")):
        source = write_jsonl(f"{name}.jsonl", [{"prompt": "Q", "completion": "a", "label": label}] * 2)
        out = tmp_path / f"{name}.out.jsonl"
        run = CliRunner().invoke(main, ["convert", str(source), "--to", "unpaired", "-o", str(out), "--json"])
        assert run.exit_code == 0, run.output
        report = json.loads(run.output)
        assert (report["written"], report["reasons"]) == (0, {reason: 2}) and out.read_text() == ""
