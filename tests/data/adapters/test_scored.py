"""Scored completions (prefkit generate + score) binarize by the one ranked-source rule."""

import pytest

from tests.data.adapters.helpers import pairs, reasons


def record(prompt: str, scores: list[float | None], reference: str | None = "the reference", rank_by: str = "ok"):
    completions = [
        {"text": f"answer {i}", "finish_reason": "stop", "tokens": 3, "scores": {"ok": s, "other": -i}}
        for i, s in enumerate(scores)
    ]
    return {
        "id": prompt,
        "prompt": [{"role": "user", "content": prompt}],
        "reference": reference,
        "completions": completions,
        "generation": {"model": "m"},
        "rank_by": rank_by,
    }


RECORDS = [
    record("mixed", [0.0, 1.0, 0.0, 1.0]),  # best: answer 1 (earliest of the two best); worst: answer 0
    record("all fail", [0.0, 0.0]),
    record("all pass", [1.0, 1.0]),
    record("one", [1.0]),
    record("graded", [0.2, 0.9, 0.5]),
]


def test_best_worst_pairs_each_prompt_and_rejects_ties(write_jsonl, run_convert):
    result, rows, rejects = run_convert(write_jsonl("scored.jsonl", RECORDS), binarize="best-worst")
    assert result.sources[0].format == "scored"
    assert pairs(rows) == [("answer 1", "answer 0"), ("answer 1", "answer 0")]
    assert [r["margin"] for r in rows] == [1.0, pytest.approx(0.7)]
    assert [r["score_chosen"] for r in rows] == [1.0, 0.9]
    assert reasons(rejects) == [(2, "tie"), (3, "tie"), (4, "too_few_completions")]
    assert {r["metadata"]["chosen_origin"] for r in rows} == {"model"}
    assert rows[0]["metadata"]["rank_by"] == "ok" and rows[0]["metadata"]["model"] == "m"


def test_pair_reference_pairs_the_reference_against_a_failing_answer(write_jsonl, run_convert):
    result, rows, rejects = run_convert(
        write_jsonl("scored.jsonl", RECORDS), binarize="best-worst", pair_reference=True
    )
    # Every prompt whose answers all score below the pass mark (1.0) is paired against its reference:
    # "all fail", and "graded", whose best is 0.9; nothing else changes.
    assert pairs(rows) == [("answer 1", "answer 0"), ("the reference", "answer 0"), ("the reference", "answer 0")]
    origins = [(r["metadata"]["chosen_origin"], r["metadata"]["rejected_origin"]) for r in rows]
    assert origins == [("model", "model"), ("reference", "model"), ("reference", "model")]
    assert [r["margin"] for r in rows] == [1.0, 1.0, pytest.approx(0.8)]  # the pass mark minus the own score
    assert reasons(rejects) == [(3, "tie"), (4, "too_few_completions")]
    # With the pass mark at 0.9, "graded"'s best answer passes and is paired as before.
    _, rows, _ = run_convert(
        write_jsonl("scored.jsonl", RECORDS), binarize="best-worst", pair_reference=True, pass_score=0.9
    )
    assert pairs(rows) == [("answer 1", "answer 0"), ("the reference", "answer 0"), ("answer 1", "answer 0")]


def test_pair_reference_needs_a_reference(write_jsonl, run_convert):
    _, rows, rejects = run_convert(
        write_jsonl("scored.jsonl", [record("all fail", [0.0, 0.0], reference=None)]), pair_reference=True
    )
    assert rows == [] and reasons(rejects) == [(1, "tie")]


def test_unscored_completions_take_no_part(write_jsonl, run_convert):
    _, rows, rejects = run_convert(write_jsonl("scored.jsonl", [record("q", [None, 1.0, 0.0])]), binarize="best-worst")
    assert pairs(rows) == [("answer 1", "answer 2")]


def test_rank_by_must_name_a_score(write_jsonl, run_convert):
    _, rows, rejects = run_convert(write_jsonl("scored.jsonl", [record("q", [1.0, 0.0], rank_by="missing")] * 2))
    assert rows == [] and reasons(rejects) == [(1, "wrong_type"), (2, "wrong_type")]
    assert "scores.missing" in rejects[0]["detail"]
    # A record ranked by another score than the file's is rejected, the others are paired.
    _, rows, rejects = run_convert(
        write_jsonl(
            "scored.jsonl", [record("a", [1.0, 0.0]), record("b", [1.0, 0.0], rank_by="other"), record("c", [0.0, 1.0])]
        )
    )
    assert len(rows) == 2 and reasons(rejects) == [(2, "invalid_score")]
