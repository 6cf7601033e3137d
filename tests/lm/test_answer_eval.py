"""Judging training by the model's own answers: figures checked against a direct computation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prefkit.lm.answer_eval import answer_metrics, prompt_means, score_change
from prefkit.lm.estimates import bootstrap
from prefkit.lm.sampling import Completion, SamplingSettings


def completions(*finish: tuple[str, int]) -> list[Completion]:
    return [Completion("text", reason, tokens) for reason, tokens in finish]


def test_answer_metrics_match_a_direct_computation():
    rng = np.random.default_rng(0)
    before = (rng.random(40) < 0.2).astype(float)
    after = (rng.random(40) < 0.6).astype(float)
    labels = np.array(["a", "b"] * 20)
    as_rows = lambda values: [[v] for v in values.tolist()]
    before_answers = [completions(("length", 48))] * 30 + [completions(("stop", 10))] * 10
    after_answers = [completions(("stop", 8))] * 40
    metrics = answer_metrics(
        ["ok"],
        {"ok": as_rows(before)},
        {"ok": as_rows(after)},
        before_answers,
        after_answers,
        SamplingSettings(max_new_tokens=48),
        "base",
        labels,
    )
    (change,) = metrics.scores
    assert change.before.value == pytest.approx(before.mean()) and change.after.value == pytest.approx(after.mean())
    assert change.difference.value == pytest.approx((after - before).mean())
    assert change.difference == bootstrap(after - before)  # the paired difference, prompt by prompt
    assert (metrics.mean_tokens_before, metrics.mean_tokens_after) == (38.5, 8.0)
    assert (metrics.cut_at_max_before, metrics.cut_at_max_after) == (30, 0)
    assert [g.group for g in metrics.groups] == ["a", "b"]
    for group in metrics.groups:
        mask = labels == group.group
        assert group.prompts == 20
        assert group.scores[0].after.value == pytest.approx(after[mask].mean())
    assert metrics.decoding == "greedy"


def test_unscored_prompts_are_left_out_of_both_sides():
    assert prompt_means([[1.0, None], [None, None], [0.0, 1.0]]).tolist()[0] == 1.0
    change = score_change("ok", np.array([1.0, np.nan, 0.0]), np.array([1.0, 1.0, np.nan]))
    assert change.prompts == 1 and change.before.value == change.after.value == 1.0


def test_eval_generate_answers_before_and_after(tiny_model_dir, tiny_adapter_dir, tmp_path):
    from prefkit.lm.evaluate import EvalConfig, evaluate
    from tests.conftest import write_canonical

    user = lambda text: [{"role": "user", "content": text}]
    reply = lambda text: [{"role": "assistant", "content": text}]
    pairs = [(user(f"What is {i} + {i}?"), reply(f"{i} + {i} = {2 * i}."), reply("no")) for i in range(5)]
    pairs.append(pairs[0])  # a second pair of one prompt: that prompt is answered once
    data = write_canonical(tmp_path / "heldout.jsonl", pairs)
    adapter = tmp_path / "adapter"
    import shutil

    shutil.copytree(tiny_adapter_dir, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": str(tiny_model_dir)}))
    result = evaluate(
        EvalConfig(
            model=str(adapter),
            data=str(data),
            generate=True,
            scorers=["verify:sample_task", "verify:number"],
            max_new_tokens=4,
            report=str(tmp_path / "eval.json"),
        )
    )
    answers = result.answers
    assert answers.prompts == 5 and [s.scorer for s in answers.scores] == ["sample_task", "number"]
    # A random tiny model answers no sum right, before or after.
    assert all(s.before.value == s.after.value == 0.0 and s.prompts == 5 for s in answers.scores)
    assert answers.cut_at_max_before == answers.cut_at_max_after == 5 and answers.mean_tokens_after == 4
    assert answers.before_model == "base model (adapters disabled)"
    # The adapter changes the model, so some answers change.
    assert [a[0].text for a in answers.before_answers] != [a[0].text for a in answers.after_answers]
    assert result.to_dict()["answers"]["scores"][0]["scorer"] == "sample_task"
    # Every answer scored is written beside the report, with each scorer's verdict on it.
    written = [json.loads(line) for line in (tmp_path / "eval.answers.jsonl").read_text().splitlines()]
    assert [w["model"] for w in written] == ["before"] * 5 + ["after"] * 5
    assert [w["id"] for w in written[:5]] == [w["id"] for w in written[5:]] and len({w["id"] for w in written}) == 5
    assert [w["text"] for w in written[5:]] == [a[0].text for a in answers.after_answers]
    assert all(w["scores"] == {"sample_task": 0.0, "number": 0.0} for w in written)
