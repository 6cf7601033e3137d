"""``prefkit score``: the direction of every scorer, and what the scored file says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prefkit.errors import UsageError
from prefkit.lm.score import ScoreConfig, score
from prefkit.lm.scorers import ModelScoring, parse_scorer, run_scorer


def generated(prompt: str, *texts: str, reference: str | None = None) -> dict:
    return {
        "id": prompt,
        "prompt": [{"role": "user", "content": prompt}],
        "reference": reference,
        "completions": [{"text": t, "finish_reason": "stop", "tokens": 1} for t in texts],
    }


def write(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_verifiers_score_every_completion_and_the_file_says_which_ranks(tmp_path):
    source = write(
        tmp_path / "answers.jsonl",
        [
            generated("What is 2 + 3?", "2 + 3 = 5.", "6", reference="5"),
            generated("Write a poem.", "Roses.", reference=None),
        ],
    )
    result = score(
        ScoreConfig(
            generated=source,
            output=str(tmp_path / "s.jsonl"),
            scorers=["verify:sample_task", "n=verify:number"],
            rank_by="n",
        )
    )
    scored = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [[c["scores"] for c in r["completions"]] for r in scored] == [
        [{"sample_task": 1.0, "n": 1.0}, {"sample_task": 0.0, "n": 0.0}],
        [{"sample_task": None, "n": None}],
    ]
    assert {r["rank_by"] for r in scored} == {"n"}
    summary = {s.name: (s.scored, s.unscored, s.mean) for s in result.scorers}
    assert summary == {"sample_task": (2, 1, 0.5), "n": (2, 1, 0.5)}
    report = json.loads((tmp_path / "s.report.json").read_text())
    assert report["rank_by"] == "n" and report["completions"] == 3


def test_scorer_specs_and_their_mistakes(tmp_path):
    assert parse_scorer("verify:checks.py:is_polite").name == "is_polite"
    assert parse_scorer("reward-model:org/rm").name == "reward_model"
    for bad, message in [
        ("nope:x", "expected KIND:TARGET"),
        ("verify:", "expected KIND:TARGET"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_scorer(bad)
    source = write(tmp_path / "a.jsonl", [generated("q", "a")])
    with pytest.raises(
        UsageError, match="judge:x: a pairwise judge votes on pairs, not completions; use prefkit audit"
    ):
        score(ScoreConfig(generated=source, output=str(tmp_path / "s.jsonl"), scorers=["judge:x"]))
    with pytest.raises(UsageError, match="both named number"):
        score(
            ScoreConfig(generated=source, output=str(tmp_path / "s.jsonl"), scorers=["verify:number", "verify:number"])
        )
    with pytest.raises(UsageError, match="--rank-by x: no scorer"):
        score(ScoreConfig(generated=source, output=str(tmp_path / "s.jsonl"), scorers=["verify:number"], rank_by="x"))


def test_a_broken_line_is_one_reject_and_the_rest_is_scored(tmp_path):
    good = [generated("What is 2 + 3?", "5", reference="5"), generated("What is 1 + 1?", "3", reference="2")]
    source = tmp_path / "a.jsonl"
    source.write_text(
        json.dumps(good[0])
        + "\n{oops\n"
        + json.dumps({"prompt": "q"})
        + "\n[1, 2]\n"
        + json.dumps(generated("q", "a") | {"completions": [{"txt": "a"}]})
        + "\n"
        + json.dumps(good[1])
        + "\n"
    )
    result = score(ScoreConfig(generated=str(source), output=str(tmp_path / "s.jsonl"), scorers=["verify:number"]))
    assert (result.read, result.prompts, result.rejected) == (6, 2, 4)
    assert result.reasons == {"invalid_json": 1, "missing_field": 2, "not_an_object": 1}
    scored = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["completions"][0]["scores"]["number"] for r in scored] == [1.0, 0.0]
    rejects = [json.loads(line) for line in (tmp_path / "s.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (2, "invalid_json"),
        (3, "missing_field"),
        (4, "not_an_object"),
        (5, "missing_field"),
    ]
    assert rejects[0]["record"] == "{oops"


@pytest.fixture(scope="module")
def reward_model_dir(tiny_model_dir, tmp_path_factory):
    """A one-layer reward model whose layers add nothing, so the score is the head read off the last
    token's (normalized) embedding; only the embedding of " yes" has a component along the head."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None  # plain text: the last token is the completion's own
    dims = json.loads((tiny_model_dir / "config.json").read_text())
    config = LlamaConfig(
        vocab_size=dims["vocab_size"],
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    (yes,) = tokenizer(" yes", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                param.zero_()
        model.model.embed_tokens.weight[:, 0] = 0.0
        model.model.embed_tokens.weight[yes, 0] = 5.0
        model.score.weight.zero_()
        model.score.weight[0, 0] = 1.0
    folder = tmp_path_factory.mktemp("reward-model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_reward_model_ranks_the_completion_its_head_rewards_first(reward_model_dir):
    records = [
        generated("Say something.", "well no", "well yes", "maybe"),
        generated("Another prompt, longer than the first one, so that batches hold padding.", "oh yes", "oh no"),
    ]
    spec = parse_scorer(f"reward-model:{reward_model_dir}")
    batched = run_scorer(spec, records, ModelScoring(batch_size=4)).values
    one_by_one = run_scorer(spec, records, ModelScoring(batch_size=1)).values
    assert np.allclose(np.array(batched[0] + batched[1]), np.array(one_by_one[0] + one_by_one[1]), atol=1e-5)
    assert int(np.argmax(batched[0])) == 1 and batched[1][0] > batched[1][1]
    assert batched[0][1] > 1.0 and abs(batched[0][0]) < 1e-4  # the feature, and nothing else


def test_an_implicit_scorer_prefers_what_its_adapter_was_trained_to_prefer(tiny_model_dir, tmp_path):
    from prefkit.lm.train import DataSettings, TrainConfig, train
    from tests.conftest import write_canonical

    user = lambda text: [{"role": "user", "content": text}]
    reply = lambda text: [{"role": "assistant", "content": text}]
    pairs = [(user(f"Question {i}?"), reply("Certainly, here it is."), reply("No way at all.")) for i in range(16)]
    data = write_canonical(tmp_path / "train.jsonl", pairs)
    dpo = {
        "max_steps": 12,
        "per_device_train_batch_size": 8,
        "learning_rate": 5e-2,
        "max_length": 64,
        "save_steps": 100,
        "beta": 0.5,
    }
    train(
        TrainConfig(
            data=DataSettings(train=str(data)), output_dir=str(tmp_path / "run"), model=str(tiny_model_dir), dpo=dpo
        )
    )
    records = [generated(f"New question {i}?", "No way at all.", "Certainly, here it is.") for i in range(4)]
    values = run_scorer(parse_scorer(f"implicit:{tmp_path / 'run'}"), records, ModelScoring()).values
    assert all(trained_for > against for against, trained_for in values)
    # The reference is the base: with the adapter as its own reference, every implicit reward is 0.
    same = run_scorer(parse_scorer(f"implicit:{tiny_model_dir}:{tiny_model_dir}"), records, ModelScoring()).values
    assert np.allclose(np.array(same), 0.0)


FLAKY_VERIFIER = """
import math

def flaky(prompt, completion, reference):
    if completion == "boom":
        raise ValueError("cannot read this answer\\nsecond line")
    if completion == "nan":
        return math.nan
    if completion == "text":
        return "yes"
    return completion == reference
"""


def test_a_verifier_failing_on_one_completion_leaves_it_unscored_with_the_reason(tmp_path):
    """A user's verifier that raises, returns NaN or returns text on some completions: those are
    unscored with the reason, every other completion is scored, and the run ends normally."""
    (tmp_path / "checks.py").write_text(FLAKY_VERIFIER)
    records = [generated("A?", "5", "boom", "nan", reference="5"), generated("B?", "text", "4", reference="4")]
    source = write(tmp_path / "answers.jsonl", records)
    spec = f"verify:{tmp_path / 'checks.py'}:flaky"
    result = score(ScoreConfig(generated=source, output=str(tmp_path / "s.jsonl"), scorers=[spec]))
    scored = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [[c["scores"]["flaky"] for c in r["completions"]] for r in scored] == [[1.0, None, None], [None, 1.0]]
    assert [[c.get("unscored", {}).get("flaky") for c in r["completions"]] for r in scored] == [
        [None, "scorer_error: ValueError: cannot read this answer", "invalid_score: the scorer returned nan"],
        ["invalid_score: returned str; expected a number or bool", None],
    ]
    (summary,) = result.scorers
    assert (summary.scored, summary.unscored, summary.mean) == (2, 3, 1.0)
    assert summary.reasons == {"scorer_error": 1, "invalid_score": 2}
    assert [(f.id, f.completion, f.reason) for f in summary.first_failures] == [
        ("A?", 1, "scorer_error"),
        ("B?", 0, "invalid_score"),
        ("A?", 2, "invalid_score"),
    ]
    report = json.loads((tmp_path / "s.report.json").read_text())
    assert report["scorers"][0]["reasons"] == {"scorer_error": 1, "invalid_score": 2}


def test_the_score_command_goes_on_past_a_failing_verifier_or_stops_when_asked(tmp_path):
    from click.testing import CliRunner

    from prefkit.cli import main

    (tmp_path / "checks.py").write_text(FLAKY_VERIFIER)
    source = write(tmp_path / "answers.jsonl", [generated("A?", "5", "boom", reference="5")])
    spec = f"verify:{tmp_path / 'checks.py'}:flaky"
    runner = CliRunner()
    done = runner.invoke(main, ["score", source, "-o", str(tmp_path / "s.jsonl"), "--scorer", spec, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["scorers"][0]["reasons"] == {"scorer_error": 1}
    out = tmp_path / "t.jsonl"
    stopped = runner.invoke(main, ["score", source, "-o", str(out), "--scorer", spec, "--fail-on-scorer-error"])
    assert stopped.exit_code == 1
    assert "scorer flaky: scorer_error on A? completion 1: ValueError: cannot read this answer" in stopped.output
    assert "bug in prefkit" not in stopped.output and not out.exists()
