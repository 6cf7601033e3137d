import re

from prefkit.sample_data import BROKEN_HH_LINES, generate, write_sample
from tests.conftest import read_jsonl


def test_chosen_is_verifiably_right_and_rejected_wrong():
    checked = 0
    for pair in generate(200, seed=3):
        if pair.kind in ("addition", "multiplication"):
            a, b = map(int, re.findall(r"\d+", pair.prompt))
            truth = a + b if pair.kind == "addition" else a * b
            assert pair.chosen.endswith(f"= {truth}.") and not pair.rejected.endswith(f"= {truth}.")
            checked += 1
        elif pair.kind == "format":
            assert pair.chosen.isdigit() and not pair.rejected.isdigit()
    assert checked == 100


def test_heldout_prompts_never_appear_in_training(tmp_path):
    paths = write_sample(tmp_path, n_train=100, n_heldout=40, seed=0)
    heldout = {r["question"] for r in read_jsonl(paths["heldout"])}
    train_text = paths["train"].read_text()
    assert len(heldout) == 40 and not any(f"Human: {q}\\n" in train_text for q in heldout)


def test_sample_converts_with_exactly_the_planted_rejects(tmp_path, run_convert):
    paths = write_sample(tmp_path, n_train=40, n_heldout=8, seed=0)
    result, rows, rejects = run_convert(paths["train"])
    assert (result.read, result.written) == (40 + len(BROKEN_HH_LINES), 40)
    assert sorted(r["reason"] for r in rejects) == ["empty_response", "invalid_json", "non_alternating_turns"]
