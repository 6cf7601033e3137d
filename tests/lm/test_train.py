"""A few DPO steps on a tiny random Llama: adapters change, outputs appear, resume continues."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from prefkit.errors import ConfigError, UsageError, ValidationFailed
from prefkit.lm.train import DataSettings, TrainConfig, apply_overrides, config_from_mapping, train
from tests.conftest import RECIPES, write_canonical

PAIRS = [
    (
        [{"role": "user", "content": f"What is {a} + {b}?"}],
        [{"role": "assistant", "content": f"{a + b}."}],
        [{"role": "assistant", "content": f"{a + b + 1}."}],
    )
    for a, b in [(2, 3), (4, 5), (10, 7), (8, 8), (1, 9), (6, 2), (3, 3), (12, 5)]
]


@pytest.fixture
def data_file(tmp_path):
    from tests.conftest import write_canonical

    return write_canonical(tmp_path / "train.jsonl", PAIRS)


def tiny_config(model_dir, data_file, out, **dpo):
    settings = {
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-2,
        "max_length": 64,
        "save_steps": 1,
        "logging_steps": 1,
    }
    return TrainConfig(
        data=DataSettings(train=str(data_file)), output_dir=str(out), model=str(model_dir), dpo=settings | dpo
    )


def test_recipe_keys_removed_unknown_and_overrides():
    with pytest.raises(ConfigError, match="max_prompt_length: removed in TRL 1.x"):
        config_from_mapping({"data": {"train": "x"}, "output_dir": "o", "max_prompt_length": 128})
    with pytest.raises(ConfigError, match="evaluation_strategy: renamed to eval_strategy"):
        config_from_mapping({"data": {"train": "x"}, "output_dir": "o", "evaluation_strategy": "steps"})
    with pytest.raises(ConfigError, match="learing_rate: unknown key \\(did you mean 'learning_rate'\\?\\)"):
        config_from_mapping({"data": {"train": "x"}, "output_dir": "o", "learing_rate": 1e-4})
    with pytest.raises(ConfigError, match="lora.rank: unknown key \\(did you mean 'r'\\?\\)|lora.rank: unknown key"):
        config_from_mapping({"data": {"train": "x"}, "output_dir": "o", "lora": {"rank": 4}})
    data = apply_overrides(
        {"data": {"train": "x"}, "output_dir": "o", "beta": 0.1}, ["beta=0.3", "lora.r=4", "loss_type=ipo"]
    )
    config = config_from_mapping(data)
    assert (config.dpo, config.lora.r) == ({"beta": 0.3, "loss_type": "ipo"}, 4)


def test_a_few_steps_change_the_adapter_and_write_outputs(tiny_model_dir, data_file, tmp_path):
    result = train(tiny_config(tiny_model_dir, data_file, tmp_path / "run"))
    out = tmp_path / "run"
    assert result.steps == 2
    weights = load_file(out / "adapter_model.safetensors")
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(torch.count_nonzero(w) > 0 for w in lora_b)  # LoRA B starts at zero
    for name in ("metrics.json", "log_history.jsonl", "loss.png", "tokenizer_config.json", "adapter_config.json"):
        assert (out / name).exists(), name
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "loss" in h] == [1, 2]
    assert json.loads((out / "adapter_config.json").read_text())["target_modules"]


def test_last_layers_puts_adapters_on_the_top_layers_only(tiny_model_dir, data_file, tmp_path):
    config = tiny_config(tiny_model_dir, data_file, tmp_path / "run")
    config.lora.last_layers = 1
    train(config)
    weights = load_file(tmp_path / "run" / "adapter_model.safetensors")
    layers = {int(name.split("layers.")[1].split(".")[0]) for name in weights}
    assert layers == {1}  # the tiny model has layers 0 and 1
    assert json.loads((tmp_path / "run" / "adapter_config.json").read_text())["layers_to_transform"] == [1]


def test_resume_continues_the_step_count_and_refuses_changed_data(tiny_model_dir, data_file, tmp_path):
    from transformers import TrainerCallback

    class StopAtStep2(TrainerCallback):  # stands in for a run killed after its step-2 checkpoint
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                control.should_training_stop = True

    out = tmp_path / "run"
    first = train(tiny_config(tiny_model_dir, data_file, out, max_steps=4), callbacks=[StopAtStep2()])
    assert first.steps == 2
    with pytest.raises(UsageError, match="recipe or the data changed"):
        train(tiny_config(tiny_model_dir, data_file, out, max_steps=4, beta=0.5), resume="auto")
    resumed = train(tiny_config(tiny_model_dir, data_file, out, max_steps=4), resume="auto")
    assert resumed.resumed_from.endswith("checkpoint-2") and resumed.steps == 4
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3, 4]


def test_non_canonical_data_and_missing_chat_template(tiny_model_dir, data_file, tmp_path):
    import shutil

    raw = tmp_path / "raw.jsonl"
    raw.write_text('{"chosen": "a", "rejected": "b"}\n')
    with pytest.raises(ValidationFailed, match="not canonical"):
        train(TrainConfig(data=DataSettings(train=str(raw)), output_dir=str(tmp_path / "o"), model=str(tiny_model_dir)))
    plain = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink()
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="--style standard"):
        train(tiny_config(plain, data_file, tmp_path / "o2"))


def test_a_mix_folder_trains_on_train_and_evaluates_on_test(tiny_model_dir, data_file, tmp_path):
    import shutil

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(data_file, folder / "train.jsonl")
    # A test split unlike the train split (3 other pairs), so the run shows which one it evaluated.
    products = [
        (
            [{"role": "user", "content": f"{a} * {b}?"}],
            [{"role": "assistant", "content": str(a * b)}],
            [{"role": "assistant", "content": "0"}],
        )
        for a, b in [(2, 3), (4, 5), (6, 7)]
    ]
    write_canonical(folder / "test.jsonl", products)
    config = tiny_config(tiny_model_dir, folder, tmp_path / "run", max_steps=1)
    result = train(config)
    assert "eval_loss" in result.metrics and "eval_rewards/accuracies" in result.metrics
    report = json.loads((tmp_path / "run" / "token_report.json").read_text())
    assert (report["datasets"]["train"]["pairs"], report["datasets"]["eval"]["pairs"]) == (len(PAIRS), 3)
    assert result.tokens.read == len(PAIRS)


def test_quickstart_recipe_resolves():
    from prefkit.lm.quickstart import packaged_recipe
    from prefkit.lm.train import load_train_recipe

    assert (RECIPES / "quickstart.yaml").resolve() == packaged_recipe().resolve()
    config = load_train_recipe(RECIPES / "quickstart.yaml")
    assert config.model == "smollm2-135m-instruct" and config.lora.enabled
    assert config.data.train == "demo/pairs.jsonl" and config.output_dir == "runs/quickstart"
    assert config.training_arguments().loss_type == ["sigmoid", "sft"]
    # YAML reads 1e-3 (no dot) as text; a number field gets the number meant.
    assert load_train_recipe(RECIPES / "quickstart.yaml", ["learning_rate=1e-3"]).dpo["learning_rate"] == 0.001


def test_train_command(tiny_model_dir, data_file, tmp_path):
    from click.testing import CliRunner

    from prefkit.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"model: {tiny_model_dir}\ndata:\n  train: {data_file}\noutput_dir: {tmp_path / 'run'}\n"
        "max_steps: 1\nper_device_train_batch_size: 4\nmax_length: 64\n"
    )
    result = CliRunner().invoke(main, ["train", str(recipe), "--set", "beta=0.2"])
    assert result.exit_code == 0, result.output
    assert "1 steps" in result.output and (tmp_path / "run" / "adapter_model.safetensors").exists()
    bad = CliRunner().invoke(main, ["train", str(recipe), "--set", "max_prompt_length=64"])
    assert bad.exit_code == 2 and "max_prompt_length: removed in TRL 1.x" in bad.output


@pytest.mark.parametrize(
    "name", sorted(p.name for p in RECIPES.glob("*.yaml") if not p.name.startswith(("mix-", "loop-")))
)
def test_every_train_recipe_resolves(name):
    from prefkit.lm.train import load_train_recipe

    config = load_train_recipe(RECIPES / name)
    assert config.output_dir and config.data.train


def test_smollm3_recipe_runs_on_a_tiny_smollm3(bundled_tokenizer, data_file, tmp_path):
    """The hub-only recipe, unchanged but for the model (a tiny SmolLM3 built here), data and length."""
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    from prefkit.lm.train import load_train_recipe
    from tests.lm.conftest import tiny_dimensions

    torch.manual_seed(0)
    config = SmolLM3Config(**tiny_dimensions(bundled_tokenizer))
    model_dir = tmp_path / "tiny-smollm3"
    SmolLM3ForCausalLM(config).save_pretrained(model_dir)
    bundled_tokenizer.save_pretrained(model_dir)
    overrides = [
        f"model={model_dir}",
        f"data.train={data_file}",
        f"output_dir={tmp_path / 'run'}",
        "bf16=false",
        "max_steps=1",
        "per_device_train_batch_size=2",
        "gradient_accumulation_steps=1",
        "max_length=64",
    ]
    recipe = load_train_recipe(RECIPES / "smollm3-3b-hh-rlhf.yaml", overrides)
    assert recipe.dpo["gradient_checkpointing"] is True and recipe.data.eval_split == 0.1
    result = train(recipe)
    assert result.steps == 1 and "eval_loss" in result.metrics


def test_gpt2_recipe_runs_on_a_tiny_gpt2_with_standard_data(bundled_tokenizer, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from prefkit.lm.train import load_train_recipe
    from tests.conftest import canonical_row

    torch.manual_seed(0)
    model_dir = tmp_path / "tiny-gpt2"
    GPT2LMHeadModel(
        GPT2Config(vocab_size=len(bundled_tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=128)
    ).save_pretrained(model_dir)
    bundled_tokenizer.save_pretrained(model_dir)
    rows = [
        canonical_row(id=f"s{i}", prompt=f"Q: {i} + 1 =", chosen=f" {i + 1}", rejected=f" {i + 2}") for i in range(8)
    ]
    for name in ("uf-train.jsonl", "uf-test.jsonl"):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    overrides = [
        f"model={model_dir}",
        f"data.train={tmp_path / 'uf-train.jsonl'}",
        f"data.eval={tmp_path / 'uf-test.jsonl'}",
        f"output_dir={tmp_path / 'run'}",
        "max_steps=1",
        "max_length=32",
    ]
    result = train(load_train_recipe(RECIPES / "gpt2-lora-ultrafeedback.yaml", overrides))
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert result.steps == 1 and sorted(adapter["target_modules"]) == ["c_attn", "c_proj"] and adapter["r"] == 4


def test_reference_logps_are_keyed_by_model_tokens_and_max_length(tiny_model_dir, data_file, tmp_path, monkeypatch):
    """Runs sharing a cache_dir: another beta and loss_type (in another output folder) skip the
    reference pass; another max_length or another tokenizer does not. The cached values are the
    base model's log-probs, row for row, as one plain forward pass per reply gives them."""
    import datasets
    import numpy as np
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    import prefkit.lm.logprobs

    passes = []
    for owner, name in ((DPOTrainer, "compute_ref_log_probs"), (prefkit.lm.logprobs, "reply_logps")):
        original = getattr(owner, name)

        def counting(*args, _original=original, **kwargs):
            passes.append(1)
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counting)
    cache = tmp_path / "cache"

    def run(name, model_dir=tiny_model_dir, **dpo):
        # float32, so the cached values can be checked against a direct float32 computation below.
        config = tiny_config(model_dir, data_file, tmp_path / name, bf16=False, **dpo)
        config.cache_dir = str(cache)
        before = len(passes)
        assert train(config).steps == 2
        return len(passes) - before

    def folders(prefix):
        found = sorted(p for p in cache.iterdir() if p.name.startswith(prefix) and p.is_dir())
        # every tokens folder has the token audit it was made with beside it
        assert all(p.with_name(p.name + ".audit.json").is_file() for p in found if prefix == "tokens-")
        return found

    assert run("a", beta=0.1) > 0
    [first_tokens], [first_reference] = folders("tokens-"), folders("reference-")
    assert run("b", beta=0.3, loss_type=["ipo"]) == 0
    assert run("a", beta=0.5) == 0  # a rerun in the same folder too
    assert (len(folders("tokens-")), len(folders("reference-"))) == (1, 1)

    assert run("c", max_length=42) > 0  # prompts are 39 tokens: replies are cut
    assert (len(folders("tokens-")), len(folders("reference-"))) == (2, 2)

    # Same weights, another chat template: the tokens change, so nothing stale may be reused.
    other = tmp_path / "other-template"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).save_pretrained(other)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = tokenizer.chat_template.replace("<|im_start|>", "<|im_start|> ")
    tokenizer.save_pretrained(other)
    assert run("d", model_dir=other) > 0
    assert (len(folders("tokens-")), len(folders("reference-"))) == (3, 3)

    reference = datasets.load_from_disk(str(first_reference))
    tokens = datasets.load_from_disk(str(first_tokens))
    assert len(reference) == len(tokens) == len(PAIRS)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    for row, ref_chosen, ref_rejected in zip(
        tokens, reference["ref_chosen_logps"], reference["ref_rejected_logps"], strict=True
    ):
        for reply, cached in ((row["chosen_ids"], ref_chosen), (row["rejected_ids"], ref_rejected)):
            ids = torch.tensor([row["prompt_ids"] + reply])
            with torch.no_grad():
                logps = torch.log_softmax(model(ids).logits[0], -1)
            start = len(row["prompt_ids"])
            direct = sum(logps[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))
            np.testing.assert_allclose(cached, direct, atol=1e-4)


@pytest.mark.slow  # two processes, 12 s: the fast tier stays under 5 minutes
def test_two_processes_train_one_model_together(tiny_model_dir, data_file, tmp_path):
    """What ``accelerate launch`` does on several GPUs (torchrun, one process each), here on the
    CPU with gloo: both processes share the batches, the caches and the outputs are written once."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    prefkit = shutil.which("prefkit", path=str(Path(sys.executable).parent))
    if torchrun is None or prefkit is None:
        pytest.skip("torchrun or the prefkit script is not installed beside this Python")
    out = tmp_path / "run"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"model: {tiny_model_dir}\ndata:\n  train: {data_file}\noutput_dir: {out}\n"
        "max_steps: 2\nper_device_train_batch_size: 2\nmax_length: 64\nlogging_steps: 1\nsave_steps: 2\n"
    )
    env = os.environ | {"ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    command = [torchrun, "--nproc_per_node", "2", "--master_port", "29517", prefkit, "train", str(recipe)]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    # 2 steps x 2 pairs x 2 processes = the 8 pairs once: one epoch (a single process reaches 0.5).
    assert [(h["step"], h["epoch"]) for h in history if "loss" in h] == [(1, 0.5), (2, 1.0)]
    # one folder of each kind, and one token audit: the main process alone wrote them
    assert [p.name.split("-")[0] for p in sorted((out / "cache").iterdir()) if p.is_dir()] == [
        "pairs",
        "reference",
        "tokens",
    ]
    assert len(list((out / "cache").glob("tokens-*.audit.json"))) == 1
    assert json.loads((out / "token_report.json").read_text())["read"] == 8
    assert (out / "adapter_model.safetensors").exists()


def twelve_pairs_three_too_long(path):
    def user(text):
        return [{"role": "user", "content": text}]

    def reply(text):
        return [{"role": "assistant", "content": text}]

    pairs = [
        (user(("a long question " * 30) if i in (2, 5, 9) else f"Question {i}?"), reply("Yes."), reply("No."))
        for i in range(12)
    ]
    return write_canonical(path, pairs)


def test_train_accounts_for_every_pair_it_does_not_train_on(tiny_model_dir, tmp_path):
    """12 pairs, 3 whose prompt fills max_length 64: TRL drops them silently; prefkit says so."""
    data = twelve_pairs_three_too_long(tmp_path / "pairs.jsonl")
    result = train(tiny_config(tiny_model_dir, data, tmp_path / "run", max_steps=1))
    tokens = result.tokens
    # trained is counted on the trainer's own dataset, read and dropped come from the audit: three
    # independent counts that must add up.
    assert (tokens.read, tokens.trained, tokens.dropped) == (12, 9, 3)
    assert tokens.dropped_reasons == {"prompt_fills_max_length": 3}
    dropped = [json.loads(line) for line in (tmp_path / "run" / "dropped.jsonl").read_text().splitlines()]
    assert [(d["dataset"], d["line"], d["id"], d["reason"]) for d in dropped] == [
        ("train", 3, "p2", "prompt_fills_max_length"),
        ("train", 6, "p5", "prompt_fills_max_length"),
        ("train", 10, "p9", "prompt_fills_max_length"),
    ]
    report = json.loads((tmp_path / "run" / "token_report.json").read_text())
    assert report["datasets"]["train"]["pairs"] == 12 and report["trained"] == 9
    # the trainer really saw 9 pairs: 9 rows of ids in the tokens it trained on
    tokens_folder = next(
        p for p in (tmp_path / "run" / "cache").iterdir() if p.name.startswith("tokens-") and p.is_dir()
    )
    import datasets

    assert len(datasets.load_from_disk(str(tokens_folder))) == 9


def test_on_token_errors_fail_stops_before_training_and_trim_turns_keeps_pairs(tiny_model_dir, tmp_path):
    from prefkit.errors import DataError

    history = [
        {"role": "user", "content": "tell me a long story " * 20},
        {"role": "assistant", "content": "once upon a time " * 20},
    ]
    pairs = [
        (
            [*history, {"role": "user", "content": f"and then {i}?"}],
            [{"role": "assistant", "content": "The end."}],
            [{"role": "assistant", "content": "More."}],
        )
        for i in range(4)
    ]
    data = write_canonical(tmp_path / "multi.jsonl", pairs)
    with pytest.raises(DataError, match="none of the 4 pairs is left to train on \\(prompt_fills_max_length 4\\)"):
        train(tiny_config(tiny_model_dir, data, tmp_path / "none-left", max_steps=1))
    mixed = write_canonical(tmp_path / "mixed.jsonl", [*pairs, ([{"role": "user", "content": "Hi"}],) + pairs[0][1:]])
    failing = tiny_config(tiny_model_dir, mixed, tmp_path / "fail", max_steps=1)
    failing.on_token_errors = "fail"
    with pytest.raises(DataError, match="4 of 5 pairs have token errors \\(prompt_fills_max_length 4\\)"):
        train(failing)
    assert not (tmp_path / "fail" / "adapter_model.safetensors").exists()
    trimming = tiny_config(tiny_model_dir, data, tmp_path / "trim", max_steps=1)
    trimming.long_prompts = "trim_turns"
    result = train(trimming)
    assert (result.tokens.read, result.tokens.trained, result.tokens.trimmed) == (4, 4, 4)


@pytest.mark.slow
def test_the_quickstart_recipe_killed_after_a_checkpoint_resumes_to_the_same_adapter(bundled_model_dir, tmp_path):
    """The real model and the packaged recipe (4 steps of 4 pairs, a checkpoint every 2, 24 sample pairs):
    a run killed with SIGKILL after its first checkpoint and resumed with --resume auto ends with
    the adapter weights and step losses of an uninterrupted run, and its run record says it resumed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from prefkit.api import convert, packaged_recipe, sample

    data = convert(sample(tmp_path / "data", train=24).train, tmp_path / "data" / "train.jsonl").output
    env = os.environ | {"PREFKIT_CACHE": str(bundled_model_dir.parents[1])}

    def command(out, *extra):
        sets = [f"data.train={data}", f"output_dir={out}", "max_steps=4", "save_steps=2", "logging_steps=1"]
        sets.append("per_device_train_batch_size=4")
        prefkit = Path(sys.executable).parent / "prefkit"
        return [str(prefkit), "train", str(packaged_recipe()), *(a for s in sets for a in ("--set", s)), *extra]

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(command(whole), env=env, check=True, capture_output=True)
    running = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (killed / "checkpoint-2" / "trainer_state.json").exists():
        assert running.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.2)
    running.send_signal(signal.SIGKILL)
    running.wait()
    assert not (killed / "adapter_model.safetensors").exists()
    subprocess.run(command(killed, "--resume", "auto"), env=env, check=True, capture_output=True)

    a, b = load_file(whole / "adapter_model.safetensors"), load_file(killed / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed adapter differs from the uninterrupted one"

    def losses(folder):
        return {
            h["step"]: h["loss"]
            for h in map(json.loads, (folder / "log_history.jsonl").read_text().splitlines())
            if "loss" in h
        }

    assert losses(whole) == losses(killed) and sorted(losses(whole)) == [1, 2, 3, 4]
    record = json.loads((killed / "prefkit_run.json").read_text())
    assert record["resumed_from"].endswith("checkpoint-2")
    assert json.loads((whole / "prefkit_run.json").read_text())["resumed_from"] is None


def test_a_users_mistake_on_the_model_side_is_exit_1_or_2_with_one_line_never_a_bug(tiny_model_dir, tmp_path):
    """Empty training data exits 1 naming the file; a folder or file that is no model exits 2 naming
    what is missing; neither writes a crash report nor says 'bug'."""
    from click.testing import CliRunner

    from prefkit.cli import main

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(f"model: {tiny_model_dir}\nmax_steps: 1\nbf16: false\n")
    runner = CliRunner()
    done = runner.invoke(
        main, ["train", str(recipe), "--set", f"data.train={empty}", "--set", f"output_dir={tmp_path / 'run'}"]
    )
    assert done.exit_code == 1, done.output
    assert f"error: {empty}: no pairs to train on (the file holds no records)" in done.output
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a model")
    data = write_canonical(tmp_path / "d.jsonl", [("Q", "a", "b")])
    for model, message in [
        (folder, "holds no config.json or adapter_config.json, so it is neither a model nor an adapter"),
        (data, "a file, not a model folder"),
    ]:
        done = runner.invoke(main, ["eval", "--model", str(model), "--data", str(data)])
        assert done.exit_code == 2 and message in done.output, done.output
        assert "bug in prefkit" not in done.output and len(done.output.strip().splitlines()) == 1
