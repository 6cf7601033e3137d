import json

import polars as pl
import pytest

from prefkit.data.reasons import RejectReason


def msgs(prompt, reply):
    return [{"content": prompt, "role": "user"}, {"content": reply, "role": "assistant"}]


def test_h4_layout_carries_scores_and_rejects_ties(tmp_path, run_convert):
    path = tmp_path / "h4.parquet"
    pl.DataFrame(
        {
            "prompt": ["p1", "p2", "p3"],
            "prompt_id": ["a", "b", "c"],
            "chosen": [msgs("p1", "good"), msgs("p2", "good"), msgs("p3", "good")],
            "rejected": [msgs("p1", "bad"), msgs("p2", "bad"), msgs("p3", "bad")],
            "score_chosen": [9.0, 7.0, float("nan")],
            "score_rejected": [3.5, 7.0, 1.0],
        }
    ).write_parquet(path)
    result, rows, rejects = run_convert(path)
    assert result.sources[0].format == "ultrafeedback"
    assert [(r["score_chosen"], r["score_rejected"]) for r in rows] == [(9.0, 3.5)]
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, RejectReason.TIE), (3, RejectReason.INVALID_SCORE)]
    result, rows, _ = run_convert(path, keep_ties=True, output="keep.jsonl")
    assert result.written == 2 and rows[1]["score_chosen"] == rows[1]["score_rejected"] == 7.0


def test_infinite_scores_are_invalid(write_jsonl, run_convert):
    lines = [
        '{"instruction": "q", "chosen_response": "a", "rejected_response": "b", "chosen_avg_rating": Infinity, "rejected_avg_rating": 1}',
        '{"instruction": "q2", "chosen_response": "a", "rejected_response": "b", "chosen_avg_rating": 5, "rejected_avg_rating": 1.5}',
    ]
    result, rows, rejects = run_convert(write_jsonl("argilla.jsonl", lines))
    assert result.sources[0].format == "ultrafeedback-argilla"
    assert [r["reason"] for r in rejects] == [RejectReason.INVALID_SCORE]
    assert rows[0]["prompt"] == [{"role": "user", "content": "q2"}] and rows[0]["score_rejected"] == 1.5


def test_argilla_cleaned_layout(write_jsonl, run_convert):
    record = {
        "prompt": "q",
        "chosen": msgs("q", "a"),
        "rejected": msgs("q", "b"),
        "chosen-rating": 5,
        "rejected-rating": 2,
    }
    result, rows, _ = run_convert(write_jsonl("clean.jsonl", [record]))
    assert result.sources[0].format == "ultrafeedback-argilla-cleaned"
    assert (rows[0]["score_chosen"], rows[0]["score_rejected"]) == (5.0, 2.0)


def completion(response, *ratings):
    aspects = ["helpfulness", "honesty", "instruction_following", "truthfulness"]
    return {
        "model": "m",
        "response": response,
        "overall_score": 10.0,  # deliberately wrong, as in the published data: must be ignored
        "annotations": {a: {"Rating": str(r), "Rationale": "..."} for a, r in zip(aspects, ratings, strict=True)},
    }


RAW = [
    {
        "instruction": "q1",
        "completions": [
            completion("mid", 3, 3, 3, 3),
            completion("best", 5, 5, 5, "N/A"),
            completion("worst", 1, 1, 1, 1),
            completion("low", 2, 2, 2, 2),
        ],
    },
    {"instruction": "q2", "completions": [completion("a", 4, 4, 4, 4), completion("b", 4, 4, 4, 4)]},
    {"instruction": "q3", "completions": [completion("only", 5, 5, 5, 5)]},
]


def test_raw_best_worst_uses_mean_aspect_rating(write_jsonl, run_convert):
    result, rows, rejects = run_convert(write_jsonl("raw.jsonl", RAW), binarize="best-worst")
    assert result.sources[0].format == "ultrafeedback-raw"
    assert (rows[0]["chosen"][0]["content"], rows[0]["rejected"][0]["content"]) == ("best", "worst")
    assert (rows[0]["score_chosen"], rows[0]["score_rejected"]) == (5.0, 1.0)
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, RejectReason.TIE), (3, RejectReason.TOO_FEW_COMPLETIONS)]


def test_raw_random_lower_is_seeded_and_always_lower(write_jsonl, run_convert):
    path = write_jsonl("raw.jsonl", [RAW[0]] + [dict(RAW[0], instruction=f"q{i}") for i in range(40)])
    picks = {}
    for seed in (0, 1):
        _, rows, _ = run_convert(path, seed=seed, output=f"s{seed}.jsonl")
        assert all(r["score_rejected"] < r["score_chosen"] == 5.0 for r in rows)
        picks[seed] = [r["rejected"][0]["content"] for r in rows]
    _, again, _ = run_convert(path, seed=0, output="again.jsonl")
    assert [r["rejected"][0]["content"] for r in again] == picks[0]
    assert picks[0] != picks[1] and set(picks[0]) == {"mid", "worst", "low"}


def test_raw_ties_kept_on_request(write_jsonl, run_convert):
    result, rows, _ = run_convert(write_jsonl("raw.jsonl", RAW), keep_ties=True)
    assert result.written == 2 and {rows[1]["chosen"][0]["content"], rows[1]["rejected"][0]["content"]} == {"a", "b"}


def test_raw_with_malformed_completions_rejects_each_record(write_jsonl, run_convert):
    """Completions of another shape are the data's problem, not the command's: each record is one
    wrong_type reject (a file without the field at all is a usage error)."""
    from prefkit.errors import FieldMappingError

    path = write_jsonl(
        "raw.jsonl",
        [{"instruction": "q", "completions": [json.dumps({"x": 1})]}, {"instruction": "r", "completions": []}],
    )
    result, rows, rejects = run_convert(path)
    assert rows == [] and [(r["line"], r["reason"]) for r in rejects] == [(1, "wrong_type"), (2, "wrong_type")]
    assert "'completions' must be a list of objects" in rejects[0]["detail"]
    with pytest.raises(FieldMappingError, match="no record has the field 'completions'"):
        run_convert(write_jsonl("none.jsonl", [{"instruction": "q"}]), format="ultrafeedback-raw")


def test_raw_completions_whose_annotations_carry_no_rating_are_unrated(write_jsonl, run_convert):
    """Found by the fuzz test: an annotations object without a Rating left the whole file failing."""
    good = {"response": "a", "annotations": {"helpfulness": {"Rating": "5"}}}
    record = {"instruction": "Q", "completions": [good, {"response": "b", "annotations": {"": None}}]}
    result, rows, rejects = run_convert(write_jsonl("raw.jsonl", [record]), format="ultrafeedback-raw")
    assert rows == [] and [(r["line"], r["reason"]) for r in rejects] == [(1, "too_few_completions")]
