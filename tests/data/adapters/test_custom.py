"""Generic shapes through --field alone: labelled pairs, ranked lists and rated rows."""

import pytest

from prefkit.data.reasons import RejectReason
from prefkit.errors import FieldMappingError
from tests.data.adapters.helpers import pairs, reasons


def test_labelled_pair_with_an_index_label(write_jsonl, run_convert):
    records = [
        {"q": "Q1", "r0": "first", "r1": "second", "better": 1},
        {"q": "Q2", "r0": "first", "r1": "second", "better": 0},
        {"q": "Q3", "r0": "first", "r1": "second", "better": 2},
    ]
    fields = ["prompt=q", "responses=r0,r1", "label=better"]
    result, rows, rejects = run_convert(write_jsonl("l.jsonl", records), fields=fields)
    assert result.sources[0].format == "custom"
    assert pairs(rows) == [("second", "first"), ("first", "second")]
    assert reasons(rejects) == [(3, RejectReason.INVALID_LABEL)]
    assert rejects[0]["detail"] == "better must be 0 or 1 (the index of the better reply), got 2"


def test_labelled_pair_with_a_signed_preference(write_jsonl, run_convert):
    records = [{"q": "Q", "a": {"x": "one", "y": "two"}, "p": p} for p in (-2, 1.5, 0, None)]
    fields = ["prompt=q", "responses=a.x,a.y", "preference=p"]
    _, rows, rejects = run_convert(write_jsonl("p.jsonl", records), fields=fields)
    assert pairs(rows) == [("one", "two"), ("two", "one")] and [r["margin"] for r in rows] == [2.0, 1.5]
    assert reasons(rejects) == [(3, RejectReason.TIE), (4, RejectReason.MISSING_FIELD)]


def test_ranked_list_by_rank_and_by_score(write_jsonl, run_convert):
    record = {
        "q": "Q",
        "answers": [
            {"text": "mid", "rank": 2, "s": 5},
            {"text": "top", "rank": 1, "s": 9},
            {"text": "low", "rank": 3, "s": 1},
        ],
    }
    path = write_jsonl("r.jsonl", [record])
    _, rows, _ = run_convert(path, fields=["prompt=q", "responses=answers", "rank=answers.rank"], binarize="best-worst")
    assert pairs(rows) == [("top", "low")] and rows[0]["margin"] == 2.0
    _, rows, _ = run_convert(
        path, fields=["prompt=q", "responses=answers.text", "score=answers.s"], binarize="all-pairs", output="s.jsonl"
    )
    assert sorted(pairs(rows)) == [("mid", "low"), ("top", "low"), ("top", "mid")]
    assert {(r["score_chosen"], r["score_rejected"]) for r in rows} == {(5.0, 1.0), (9.0, 1.0), (9.0, 5.0)}


def test_rated_rows_grouped_by_a_key(write_jsonl, run_convert):
    rows_in = [
        {"task": "t1", "text": "Q1", "reply": "ok", "stars": 3},
        {"task": "t2", "text": "Q2", "reply": "great", "stars": 5},
        {"task": "t1", "text": "Q1", "reply": "best", "stars": 5},
        {"task": "t2", "text": "Q2", "reply": "bad", "stars": 1},
    ]
    fields = ["group=task", "prompt=text", "response=reply", "score=stars"]
    result, rows, _ = run_convert(write_jsonl("rated.jsonl", rows_in), fields=fields)
    assert (result.read, result.candidates) == (4, 2)
    assert pairs(rows) == [("great", "bad"), ("best", "ok")]  # in the order of the chosen reply's line
    assert [r["prompt"][0]["content"] for r in rows] == ["Q2", "Q1"]


def test_shape_mistakes_are_usage_errors(write_jsonl, run_convert):
    path = write_jsonl("x.jsonl", [{"q": "Q", "answers": [{"body": "a", "rank": 1}], "r0": "a", "r1": "b"}])
    with pytest.raises(FieldMappingError, match="name the text field, e.g. responses=answers.body"):
        run_convert(path, fields=["prompt=q", "responses=answers", "rank=answers.rank"])
    with pytest.raises(FieldMappingError, match="exactly one of --field label"):
        run_convert(path, fields=["prompt=q", "responses=r0,r1"])
    with pytest.raises(FieldMappingError, match="needs --field responses"):
        run_convert(path, fields=["prompt=q", "chosen=r0", "rejected=r1", "label=q"])
