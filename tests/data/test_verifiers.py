"""Verifiers against hand-written right and wrong answers of each kind, and how a verifier is named."""

from __future__ import annotations

import pytest

from prefkit.data.sample_data import GENERATORS, sample_pairs
from prefkit.data.verifiers import exact, last_number, load_verifier, number, numbers_in, sample_task, sample_task_kind
from prefkit.errors import UsageError

RIGHT_AND_WRONG = [
    # (prompt, right answers, wrong answers)
    (
        "What is 27 + 82?",
        ["27 + 82 = 109.", "109", "The sum is 109", "27 + 82 is 109."],
        ["27 + 82 = 108.", "27 + 82 is a classic arithmetic operation where we add", "109 is close, but it is 110", ""],
    ),
    (
        "Put 33, 16, 64 in increasing order.",
        ["16, 33, 64.", "In increasing order: 16, 33, 64", "16 < 33 < 64"],
        ["33, 16, 64.", "1, 2, 3, 4, 5, 6, 7, 8, 9", "16, 33", "16, 33, 64, 65", "64, 33, 16"],
    ),
    (
        "Convert 2.5 km to m.",
        ["2.5 km is 2500 m.", "2,500", "That is 2500.0 m"],
        ["2.5 km is 250 m.", "2.5 km is 25000 m.", "2.5 km", "one kilometre is 1000 m"],
    ),
    (
        "Convert 3 hours to minutes.",
        ["3 hours is 180 minutes."],
        ["3 hours is 18 minutes.", "3 hours is 1800 minutes."],
    ),
    (
        "Reply with only the number, no words: what is 2 + 40?",
        ["42", " 42 ", "42."],
        ["The answer is 42.", "43", "2 + 40 = 42", "forty-two"],
    ),
]


@pytest.mark.parametrize(("prompt", "right", "wrong"), RIGHT_AND_WRONG)
def test_sample_task_tells_right_from_wrong(prompt, right, wrong):
    assert [sample_task(prompt, answer) for answer in right] == [True] * len(right)
    assert [sample_task(prompt, answer) for answer in wrong] == [False] * len(wrong)


def test_sample_task_agrees_with_the_sample_labels_on_every_kind():
    pairs = sample_pairs(400, seed=3)
    assert {p.kind for p in pairs} == {"addition", "ordering", "conversion", "format"}
    assert all(sample_task(p.prompt, p.chosen) is True for p in pairs)
    assert all(sample_task(p.prompt, p.rejected) is False for p in pairs)
    assert [sample_task_kind(p.prompt) for p in pairs] == [p.kind for p in pairs]
    assert len(GENERATORS) == 4


def test_sample_task_does_not_guess_outside_its_prompts():
    assert sample_task("Write a haiku about rain.", "Rain falls.") is None
    assert sample_task("Convert 3 miles to km.", "4.8 km") is None


def test_numbers_and_the_generic_verifiers():
    assert numbers_in("from -3 to 1,250.5 and x2") == [-3.0, 1250.5]
    assert last_number("none") is None
    assert exact("q", "Paris\n", "Paris") is True
    assert exact("q", "paris", "Paris") is False
    assert exact("q", "Paris", None) is None
    assert number("q", "so it is 12.", "The answer: 12") is True
    assert number("q", "12 or 13", "12") is False
    assert number("q", "12", "no number") is None


def test_load_verifier_by_name_module_and_file(tmp_path):
    assert load_verifier("sample_task") is sample_task
    path = tmp_path / "checks.py"
    path.write_text("def shouts(prompt, completion, reference):\n    return completion.isupper()\n")
    shouts = load_verifier(f"{path}:shouts")
    assert shouts("q", "HEY", None) is True and shouts("q", "hey", None) is False
    for spec, message in [
        ("nonsense", "expected a built-in"),
        (f"{tmp_path}/missing.py:f", "no such file"),
        (f"{path}:absent", "has no function absent"),
        ("no_such_module_xyz:f", "cannot import"),
    ]:
        with pytest.raises(UsageError, match=message):
            load_verifier(spec)
