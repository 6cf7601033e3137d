"""Detection, custom --field mappings, and TRL / canonical pass-through."""

import polars as pl
import pytest

from prefkit.data.adapters import detect_format
from prefkit.data.reasons import RejectReason
from prefkit.errors import FieldMappingError, UnknownFormatError
from tests.conftest import hh

USER = {"role": "user", "content": "Q"}


def reply(text):
    return [{"role": "assistant", "content": text}]


def test_custom_fields_with_dotted_paths_and_system(write_jsonl, run_convert):
    path = write_jsonl(
        "custom.jsonl",
        [
            {"q": "Q", "sys": "Be brief.", "ans": {"good": "yes", "bad": "no"}, "s": {"g": 2, "b": 1}},
            {"q": "Q2", "sys": None, "ans": {"good": "ok", "bad": 7}, "s": {"g": 2, "b": 1}},
        ],
    )
    fields = ["prompt=q", "chosen=ans.good", "rejected=ans.bad", "score_chosen=s.g", "score_rejected=s.b", "system=sys"]
    result, rows, rejects = run_convert(path, fields=fields)
    assert result.sources[0].format == "custom"
    assert rows[0]["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q"}]
    assert (rows[0]["chosen"], rows[0]["score_chosen"]) == (reply("yes"), 2.0)
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, RejectReason.WRONG_TYPE)]


def test_field_naming_a_key_no_record_has_is_a_usage_error(write_jsonl, run_convert, tmp_path):
    path = write_jsonl("custom.jsonl", [{"q": "Q", "a": "x", "b": "y"}])
    with pytest.raises(FieldMappingError, match="prompt=question: no record has the key 'question'"):
        run_convert(path, fields=["prompt=question", "chosen=a", "rejected=b"])
    with pytest.raises(FieldMappingError, match="unknown key"):
        run_convert(path, fields=["answer=a"])
    with pytest.raises(FieldMappingError, match="KEY=PATH"):
        run_convert(path, fields=["prompt"])
    assert not (tmp_path / "out.jsonl").exists()


def test_trl_forms_all_give_the_same_pair(write_jsonl, run_convert):
    records = {
        "standard_explicit": {"prompt": "Q", "chosen": "good", "rejected": "bad"},
        "conversational_explicit": {"prompt": [USER], "chosen": reply("good"), "rejected": reply("bad")},
        "conversational_implicit": {"chosen": [USER] + reply("good"), "rejected": [USER] + reply("bad")},
    }
    ids = set()
    for name, record in records.items():
        result, rows, _ = run_convert(write_jsonl(f"{name}.jsonl", [record]), output=f"{name}.out.jsonl")
        assert result.sources[0].format == "trl", name
        assert (rows[0]["prompt"], rows[0]["chosen"], rows[0]["rejected"]) == ([USER], reply("good"), reply("bad"))
        ids.add(rows[0]["id"])
    assert len(ids) == 1


def test_standard_implicit_prompt_splits_at_a_word_boundary(write_jsonl, run_convert):
    path = write_jsonl("implicit.jsonl", [{"chosen": "The sky is blue.", "rejected": "The sky is bright green."}])
    _, rows, _ = run_convert(path)
    assert rows[0]["prompt"][0]["content"] == "The sky is"
    assert (rows[0]["chosen"][0]["content"], rows[0]["rejected"][0]["content"]) == (" blue.", " bright green.")


def test_conversational_pairs_that_diverge_early_are_rejected(write_jsonl, run_convert):
    record = {
        "chosen": [USER] + reply("a") + [USER] + reply("good"),
        "rejected": [USER] + reply("b") + [USER] + reply("bad"),
    }
    _, _, rejects = run_convert(write_jsonl("c.jsonl", [record]))
    assert rejects[0]["reason"] == RejectReason.DIVERGED_BEFORE_LAST_TURN


def test_canonical_output_round_trips_with_ids_and_sources(write_jsonl, run_convert, tmp_path):
    path = write_jsonl(
        "hh.jsonl",
        [{"chosen": hh("Q", "a"), "rejected": hh("Q", "b")}, {"chosen": hh("R", "a"), "rejected": hh("R", "b")}],
    )
    _, first, _ = run_convert(path)
    _, second, _ = run_convert(tmp_path / "out.jsonl", output="again.jsonl")
    assert first == second  # same ids, and the original source label kept


def test_bad_roles_and_message_shapes(write_jsonl, run_convert):
    records = [
        {"prompt": [{"role": "wizard", "content": "Q"}], "chosen": reply("a"), "rejected": reply("b")},
        {"prompt": [USER, {"role": "user", "content": "again"}], "chosen": reply("a"), "rejected": reply("b")},
        {"prompt": [USER], "chosen": [{"role": "user", "content": "a"}], "rejected": reply("b")},
        {"prompt": [USER], "chosen": reply("a"), "rejected": []},
    ]
    result, _, rejects = run_convert(write_jsonl("c.jsonl", records))
    assert result.written == 0
    assert [r["reason"] for r in rejects] == [
        RejectReason.INVALID_ROLE,
        RejectReason.NON_ALTERNATING_TURNS,
        RejectReason.NO_ASSISTANT_TURN,
        RejectReason.NO_ASSISTANT_TURN,
    ]


def test_detection_failure_names_the_keys():
    with pytest.raises(UnknownFormatError, match=r"keys \(question, answer\)"):
        detect_format(pl.DataFrame({"question": ["q"], "answer": ["a"]}), "x.jsonl")
