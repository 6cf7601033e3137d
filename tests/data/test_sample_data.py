import re

import pytest

from prefkit.data.sample_data import BROKEN_HH_LINES, UNITS, SampleConfig, sample_pairs, write_sample
from tests.conftest import read_jsonl


def test_chosen_is_verifiably_right_and_rejected_wrong():
    checked = {}
    for pair in sample_pairs(200, seed=3):
        numbers = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", pair.prompt)]
        if pair.kind == "addition":
            truth = f"= {int(sum(numbers))}."
            assert pair.chosen.endswith(truth) and not pair.rejected.endswith(truth)
        elif pair.kind == "ordering":
            replied = [[int(x) for x in re.findall(r"\d+", reply)] for reply in (pair.chosen, pair.rejected)]
            assert replied[0] == sorted(numbers) and replied[1] != sorted(replied[1])
            assert sorted(replied[1]) == replied[0]  # the same numbers, two of them swapped
        elif pair.kind == "conversion":
            value, big, small = re.fullmatch(r"Convert ([\d.]+) (\w+) to (\w+)\.", pair.prompt).groups()
            factor = next(f for b, s, f in UNITS if (b, s) == (big, small))
            right, wrong = (float(re.search(r" is ([^ ]+) ", reply).group(1)) for reply in (pair.chosen, pair.rejected))
            assert right == pytest.approx(float(value) * factor)
            assert wrong in (pytest.approx(right / 10), pytest.approx(right * 10))
        elif pair.kind == "format":
            assert pair.chosen.isdigit() and not pair.rejected.isdigit()
        checked[pair.kind] = checked.get(pair.kind, 0) + 1
    assert checked == {"addition": 50, "ordering": 50, "conversion": 50, "format": 50}


def test_heldout_prompts_never_appear_in_training(tmp_path):
    paths = write_sample(tmp_path, SampleConfig(train=100, heldout=40, seed=0))
    heldout = {r["question"] for r in read_jsonl(paths["heldout"])}
    train_text = paths["train"].read_text()
    assert len(heldout) == 40 and not any(f"Human: {q}\\n" in train_text for q in heldout)


def test_sample_converts_with_exactly_the_planted_rejects(tmp_path, run_convert):
    paths = write_sample(tmp_path, SampleConfig(train=40, heldout=8, seed=0))
    result, rows, rejects = run_convert(paths["train"])
    assert (result.read, result.written) == (40 + len(BROKEN_HH_LINES), 40)
    assert sorted(r["reason"] for r in rejects) == ["empty_response", "invalid_json", "non_alternating_turns"]
