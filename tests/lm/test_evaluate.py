"""Eval scores checked against direct computations with plain transformers, on a tiny random Llama."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from prefkit.errors import UsageError
from prefkit.lm.evaluate import EvalConfig, evaluate, preference_metrics
from prefkit.lm.logprobs import PairLogps, reply_logps
from prefkit.lm.pair_tokens import tokenize_pair
from tests.conftest import canonical_row, write_canonical

PAIRS = [
    (
        [{"role": "user", "content": "What is 2 + 2?"}],
        [{"role": "assistant", "content": "4."}],
        [{"role": "assistant", "content": "5, surely."}],
    ),
    (
        [{"role": "user", "content": "Name a colour, please, and keep it short."}],
        [{"role": "assistant", "content": "Blue."}],
        [{"role": "assistant", "content": "No."}],
    ),
    (
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        [{"role": "assistant", "content": "Hello!"}],
        [{"role": "assistant", "content": "Go away, I am busy today."}],
    ),
]


def direct_logp(model, prompt_ids, reply_ids) -> float:
    ids = torch.tensor([prompt_ids + reply_ids])
    with torch.no_grad():
        logps = torch.log_softmax(model(ids).logits[0].float(), -1)
    return sum(logps[t - 1, ids[0, t]].item() for t in range(len(prompt_ids), ids.shape[1]))


def test_tokenization_matches_trl(bundled_tokenizer):
    from trl.data_utils import _tokenize, common_prefix_length

    for prompt, chosen, rejected in PAIRS:
        p = _tokenize(bundled_tokenizer, prompt, add_generation_prompt=True)["input_ids"]
        pc, pr = (
            _tokenize(bundled_tokenizer, prompt + chosen)["input_ids"],
            _tokenize(bundled_tokenizer, prompt + rejected)["input_ids"],
        )
        n = min(common_prefix_length(p, pc), common_prefix_length(p, pr))
        assert tokenize_pair(bundled_tokenizer, prompt, chosen, rejected) == (p[:n], pc[n:], pr[n:])


def test_standard_style_appends_eos(bundled_tokenizer):
    _, chosen, _ = tokenize_pair(bundled_tokenizer, "Q: 2+2?\nA:", " 4", " 5")
    assert chosen[-1] == bundled_tokenizer.eos_token_id


def test_conversational_data_needs_a_chat_template(bundled_tokenizer):
    import copy

    plain = copy.deepcopy(bundled_tokenizer)
    plain.chat_template = None
    with pytest.raises(UsageError, match="--style standard"):
        tokenize_pair(plain, *PAIRS[0])


def test_batched_scores_equal_direct_computation(bundled_tokenizer, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenized = [tokenize_pair(bundled_tokenizer, *p) for p in PAIRS]
    # Pairs of different lengths share a padded batch; the shared-prompt path (the default) and the
    # plain one must both equal one unbatched pass per reply.
    for share_prompt in (True, False):
        scores = reply_logps(model, tokenized, batch_size=2, share_prompt=share_prompt)
        for i, (prompt_ids, chosen_ids, rejected_ids) in enumerate(tokenized):
            assert scores.chosen[i] == pytest.approx(direct_logp(model, prompt_ids, chosen_ids), abs=1e-4)
            assert scores.rejected[i] == pytest.approx(direct_logp(model, prompt_ids, rejected_ids), abs=1e-4)
            assert (scores.chosen_tokens[i], scores.rejected_tokens[i]) == (len(chosen_ids), len(rejected_ids))
    # Cut to max_length from the start, as training cuts: two reply tokens of the longest prompt remain.
    limit = max(len(p) for p, _, _ in tokenized) + 2
    cut = reply_logps(model, tokenized, batch_size=3, max_length=limit)
    for i, (prompt_ids, chosen_ids, _) in enumerate(tokenized):
        kept = chosen_ids[: limit - len(prompt_ids)]
        assert cut.chosen_tokens[i] == len(kept)
        assert cut.chosen[i] == pytest.approx(direct_logp(model, prompt_ids, kept), abs=1e-4)


def test_metrics_from_known_logps():
    policy = PairLogps(
        np.array([-1.0, -5.0, -2.0, -3.0]),
        np.array([-2.0, -4.0, -6.0, -1.0]),
        np.array([1, 1, 4, 1]),
        np.array([1, 1, 1, 1]),
    )
    reference = PairLogps(
        np.array([-1.0, -5.0, -3.0, -2.0]), np.array([-1.0, -5.0, -3.0, -2.0]), np.array([1] * 4), np.array([1] * 4)
    )
    m = preference_metrics(policy, reference, beta=0.5)
    rewards = 0.5 * np.array([1.0, -1.0, 4.0, -2.0])
    assert m.implicit_reward_accuracy.value == 0.5 and m.reward_margin.value == pytest.approx(rewards.mean())
    assert m.logprob_accuracy.value == 0.5  # -1 > -2, -2 > -6
    assert m.logprob_accuracy_per_token.value == 0.5  # -0.5 > -6 and -1 > -2
    assert m.reward_margin.low <= m.reward_margin.value <= m.reward_margin.high


def test_adapter_reference_is_its_base_with_adapters_disabled(
    tiny_model_dir, tiny_adapter_dir, bundled_tokenizer, tmp_path
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data = write_canonical(tmp_path / "pairs.jsonl", PAIRS)
    result = evaluate(EvalConfig(model=str(tiny_adapter_dir), data=str(data), beta=0.2))
    assert result.reference_kind == "base model (adapters disabled)"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    policy = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tiny_adapter_dir)
    rewards = []
    for prompt, chosen, rejected in PAIRS:
        p, c, r = tokenize_pair(bundled_tokenizer, prompt, chosen, rejected)
        margin_policy = direct_logp(policy, p, c) - direct_logp(policy, p, r)
        margin_ref = direct_logp(base, p, c) - direct_logp(base, p, r)
        rewards.append(0.2 * (margin_policy - margin_ref))
    assert result.metrics.reward_margin.value == pytest.approx(np.mean(rewards), abs=1e-4)
    assert result.metrics.implicit_reward_accuracy.value == pytest.approx(np.mean(np.array(rewards) > 0))
    assert not np.allclose(result.policy.chosen, result.reference.chosen)
    base_margins = [direct_logp(base, *tokenize_pair(bundled_tokenizer, p, c, r)[:2]) for p, c, r in PAIRS]
    base_margins = np.array(base_margins) - [
        direct_logp(base, *tokenize_pair(bundled_tokenizer, p, c, r)[::2]) for p, c, r in PAIRS
    ]
    assert result.metrics.reference_logprob_accuracy.value == pytest.approx(np.mean(base_margins > 0))


def test_beta_defaults_to_the_one_the_run_trained_with(tiny_adapter_dir, tmp_path):
    import shutil

    data = write_canonical(tmp_path / "pairs.jsonl", PAIRS)
    run = tmp_path / "run"
    shutil.copytree(tiny_adapter_dir, run)
    plain = evaluate(EvalConfig(model=str(run), data=str(data)))
    (run / "prefkit_run.json").write_text(json.dumps({"recipe": {"dpo": {"beta": 0.5}}}))
    trained = evaluate(EvalConfig(model=str(run), data=str(data)))
    assert (plain.metrics.beta, trained.metrics.beta) == (0.1, 0.5)
    assert trained.metrics.reward_margin.value == pytest.approx(5 * plain.metrics.reward_margin.value)


def test_eval_command(tiny_adapter_dir, tmp_path):
    from prefkit.cli import main

    data = write_canonical(tmp_path / "pairs.jsonl", PAIRS)
    args = [
        "eval",
        "--model",
        str(tiny_adapter_dir),
        "--data",
        str(data),
        "--report",
        str(tmp_path / "r.json"),
        "--per-pair",
        str(tmp_path / "pp.jsonl"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "implicit-reward accuracy" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "pp.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["p0", "p1", "p2"] and all(r["reference_chosen_logp"] is not None for r in rows)
    # The reported accuracy is the share of pairs whose implicit reward margin is positive (beta 0.1:
    # the adapter has no prefkit run record), recomputed here from the per-pair log-probs.
    margins = [
        0.1
        * (
            (r["policy_chosen_logp"] - r["policy_rejected_logp"])
            - (r["reference_chosen_logp"] - r["reference_rejected_logp"])
        )
        for r in rows
    ]
    assert report["pairs"] == 3 and report["beta"] == 0.1
    assert report["implicit_reward_accuracy"]["value"] == pytest.approx(sum(m > 0 for m in margins) / 3)
    assert report["reward_margin"]["value"] == pytest.approx(sum(margins) / 3, abs=1e-5)
    as_json = CliRunner().invoke(main, ["eval", "--model", str(tiny_adapter_dir), "--data", str(data), "--json"])
    assert json.loads(as_json.stdout)["implicit_reward_accuracy"] == report["implicit_reward_accuracy"]
    (tmp_path / "raw.jsonl").write_text('{"chosen": "a", "rejected": "b"}\n')
    bad = CliRunner().invoke(main, ["eval", "--model", str(tiny_adapter_dir), "--data", str(tmp_path / "raw.jsonl")])
    assert bad.exit_code == 1 and "column is present" in bad.output and "not canonical" in bad.output
    missing = CliRunner().invoke(main, ["eval", "--model", str(tmp_path / "no-such-run"), "--data", str(data)])
    assert missing.exit_code == 2 and "no such folder" in missing.output


def test_compare_adapter_against_its_base(tiny_adapter_dir, tmp_path):
    from prefkit.cli import main
    from prefkit.lm.compare import CompareConfig, compare

    result = compare(CompareConfig(model=str(tiny_adapter_dir), prompts=["Hi", "What is 2 + 2?"], max_new_tokens=6))
    rows = result.answers
    assert result.reference == "base model (adapters disabled)"
    assert [r.prompt for r in rows] == ["Hi", "What is 2 + 2?"]
    assert any(r.base != r.trained for r in rows)  # the adapter changes greedy answers
    again = compare(CompareConfig(model=str(tiny_adapter_dir), prompts=["Hi", "What is 2 + 2?"], max_new_tokens=6))
    assert again.answers == rows  # greedy is deterministic
    (tmp_path / "p.txt").write_text("Hi\n\nHello there\n")
    result = CliRunner().invoke(
        main,
        ["compare", "--model", str(tiny_adapter_dir), "--prompts", str(tmp_path / "p.txt"), "--max-new-tokens", "4"],
    )
    assert result.exit_code == 0, result.output
    assert "Hello there" in result.output
    as_json = CliRunner().invoke(
        main, ["compare", "--model", str(tiny_adapter_dir), "--prompt", "Hi", "--max-new-tokens", "6", "--json"]
    )
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["answers"] == [{"prompt": "Hi", "base": rows[0].base, "trained": rows[0].trained}]
    neither = CliRunner().invoke(main, ["compare", "--model", str(tiny_adapter_dir)])
    assert neither.exit_code == 2 and "give prompts or a prompts file (one of the two)" in neither.output


def test_eval_reports_unscorable_pairs_truncation_and_ties(tiny_adapter_dir, tmp_path):
    """A pair whose prompt fills max_length is listed, not silently scored; identical-after-truncation
    replies tie and count half."""
    words = "one two three four five six seven eight nine ten "
    pairs = [
        *PAIRS,
        (
            [{"role": "user", "content": "a long question " * 40}],
            [{"role": "assistant", "content": "Yes."}],
            [{"role": "assistant", "content": "No."}],
        ),
        (
            [{"role": "user", "content": "Count."}],
            [{"role": "assistant", "content": words * 6 + "eleven"}],
            [{"role": "assistant", "content": words * 6 + "twelve"}],
        ),
    ]
    data = write_canonical(tmp_path / "pairs.jsonl", pairs)
    result = evaluate(EvalConfig(model=str(tiny_adapter_dir), data=str(data), max_length=64))
    m = result.metrics
    assert [(u.id, u.line, u.reason) for u in m.unscored] == [("p3", 4, "prompt_fills_max_length")]
    assert m.pairs == 4 and result.ids == ["p0", "p1", "p2", "p4"]
    assert m.truncated == 1 and m.ties == 1  # p4 is scored truncated; p3, not scored, is not counted
    rewards = 0.1 * (
        (result.policy.chosen - result.policy.rejected) - (result.reference.chosen - result.reference.rejected)
    )
    assert rewards[3] == 0.0
    expected = (sum(r > 0 for r in rewards) + 0.5 * sum(r == 0 for r in rewards)) / 4
    assert m.implicit_reward_accuracy.value == pytest.approx(expected)


SUBSET_PAIRS = [
    ("alpacaeval-easy", PAIRS[0]),
    ("alpacaeval-easy", PAIRS[1]),
    ("mt-bench-easy", PAIRS[2]),
    ("refusals-dangerous", PAIRS[1]),
    ("refusals-dangerous", PAIRS[2]),
    ("hep-go", PAIRS[0]),
]


def test_eval_by_subset_matches_a_direct_per_group_computation(tiny_adapter_dir, tmp_path):
    from prefkit.lm.reward_bench_sections import EXAMPLE_COUNTS

    rows = [
        canonical_row(id=f"p{i}", prompt=p, chosen=c, rejected=r, metadata={"subset": subset, "id": str(i)})
        for i, (subset, (p, c, r)) in enumerate(SUBSET_PAIRS)
    ]
    data = tmp_path / "rb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = evaluate(EvalConfig(model=str(tiny_adapter_dir), data=str(data), by="metadata.subset"))
    policy, ref = result.policy, result.reference
    rewards = 0.1 * ((policy.chosen - policy.rejected) - (ref.chosen - ref.rejected))
    subsets = np.array([s for s, _ in SUBSET_PAIRS])
    groups = {g.group: g.metrics for g in result.groups}
    assert sorted(groups) == sorted(set(subsets))
    for name, metrics in groups.items():
        mask = subsets == name
        assert metrics.pairs == mask.sum()
        expected = np.mean((rewards[mask] > 0) + 0.5 * (rewards[mask] == 0))
        assert metrics.implicit_reward_accuracy.value == pytest.approx(expected)
    # RewardBench's rule: strictly higher implicit reward, then sections weighted by its counts.
    right = {s: float(np.mean(rewards[subsets == s] > 0)) for s in set(subsets)}
    chat = (right["alpacaeval-easy"] * 100 + right["mt-bench-easy"] * 28) / 128
    sections = result.reward_bench.sections
    assert sections["Chat"] == pytest.approx(chat)
    assert sections["Safety"] == pytest.approx(right["refusals-dangerous"])
    assert sections["Reasoning"] == pytest.approx(right["hep-go"]) and "Chat Hard" not in sections
    assert EXAMPLE_COUNTS["math-prm"] == 984  # RewardBench up-weights math to equal the code subsets


def test_eval_by_names_a_missing_field_before_loading_a_model(tmp_path):
    from prefkit.errors import ConfigError

    data = write_canonical(tmp_path / "pairs.jsonl", PAIRS)
    with pytest.raises(
        ConfigError, match=r"--by metadata.subset: the data has no such field \(it has: source, no metadata\)"
    ):
        evaluate(EvalConfig(model=str(tmp_path / "never-loaded"), data=str(data), by="metadata.subset"))
    with pytest.raises(ConfigError, match="by: expected source or metadata.FIELD"):
        EvalConfig(model="m", data=str(data), by="subset")


def test_trl_dpo_trainer_reads_a_file_with_margin_and_metadata(tiny_model_dir, tmp_path):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    rows = [
        canonical_row(id=f"p{i}", prompt=p, chosen=c, rejected=r, margin=float(i + 1), metadata={"subset": "s"})
        for i, (p, c, r) in enumerate(PAIRS)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = datasets.load_dataset("json", data_files=str(data), split="train")
    assert dataset[0]["margin"] == 1.0 and dataset[0]["metadata"] == {"subset": "s"}
    args = DPOConfig(
        output_dir=str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=3, report_to=[], use_cpu=True
    )
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=args,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
    )
    out = trainer.train()
    assert out.global_step == 1 and np.isfinite(out.training_loss)


def test_eval_by_command_prints_groups_and_sections(tiny_adapter_dir, tmp_path):
    from prefkit.cli import main

    rows = [
        canonical_row(id=f"p{i}", prompt=p, chosen=c, rejected=r, metadata={"subset": subset})
        for i, (subset, (p, c, r)) in enumerate(SUBSET_PAIRS)
    ]
    data = tmp_path / "rb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["eval", "--model", str(tiny_adapter_dir), "--data", str(data), "--by", "metadata.subset"]
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code == 0, shown.output
    assert "by metadata.subset" in shown.output and "RewardBench sections" in shown.output
    report = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
    assert [g["group"] for g in report["groups"]] == sorted({s for s, _ in SUBSET_PAIRS})
    assert sum(g["pairs"] for g in report["groups"]) == report["pairs"] == 6
    assert set(report["reward_bench"]["sections"]) == {"Chat", "Safety", "Reasoning"}
