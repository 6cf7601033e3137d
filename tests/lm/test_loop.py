"""``prefkit loop``: rounds of generate, score, pair, train and eval on a tiny random model.

The loop fixture runs two rounds through the CLI on the bundled sample's raw HH file (3 of its 11
lines broken, so the accounting has rejects), with a verifier of the test's own that passes an
answer of even length: a prompt's two answers then split into mixed, both right and both wrong,
each of which the pairing treats differently.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from prefkit.cli.commands import main

VERIFIER = """
def even(prompt, completion, reference):
    return len(completion) % 2 == 0
"""


def loop_recipe(folder: Path, model: Path, **loop_keys) -> Path:
    """A loop recipe on the sample's raw train file (prompts) and converted held-out pairs."""
    import prefkit

    raw = prefkit.sample(folder / "data", train=8, heldout=4)
    prefkit.convert(
        raw.heldout,
        folder / "data" / "heldout.jsonl",
        fields=["prompt=question", "chosen=answers.good", "rejected=answers.bad", "metadata.task=task"],
    )
    (folder / "verifiers.py").write_text(VERIFIER)
    loop = {
        "prompts": {"train": str(raw.train), "heldout": str(folder / "data" / "heldout.jsonl")},
        "scorers": [f"verify:{folder / 'verifiers.py'}:even"],
        "generate": {"n": 2, "temperature": 1.0, "max_new_tokens": 4, "batch_size": 4},
        "eval": {"max_new_tokens": 4, "by": "metadata.task"},
    } | loop_keys
    recipe = {
        "model": str(model),
        "max_steps": 4,
        "save_steps": 2,
        "learning_rate": 0.05,
        "per_device_train_batch_size": 4,
        "bf16": False,
        "loop": loop,
    }
    path = folder / "loop.yaml"
    path.write_text(json.dumps(recipe))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def looped(tiny_model_dir, tmp_path_factory):
    """Two rounds through ``prefkit loop --json``: ``(folder, recipe, the printed result)``."""
    folder = tmp_path_factory.mktemp("loop")
    recipe = loop_recipe(folder, tiny_model_dir)
    run = CliRunner().invoke(main, ["loop", str(recipe), "-o", str(folder / "run"), "--json"])
    assert run.exit_code == 0, run.output
    return folder, recipe, json.loads(run.stdout)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_prompt_and_answer_is_accounted_for_in_every_round(looped):
    folder, _, result = looped
    assert [r["round"] for r in result["rounds"]] == [1, 2] and result["stopped"] is None
    for r in result["rounds"]:
        c = r["counts"]
        # The raw sample file: 8 sound records and 3 broken lines, each a reject with its reason.
        assert (c["prompts_read"], c["answered"], c["duplicates"], c["rejected"]) == (11, 8, 0, 3)
        rejects = read_jsonl(Path(r["directory"]) / "answers.rejects.jsonl")
        assert len(rejects) == 3 and all(x["reason"] for x in rejects)
        assert c["samples"] == 16 == c["paired"] + c["unpaired"]
        # The same counts straight from the scored answers: two distinct answers per prompt; a mixed
        # prompt pairs both; two right ones tie (both unpaired); two wrong ones pair one against the
        # reference, the other is neither best nor worst.
        scored = read_jsonl(Path(r["directory"]) / "scored.jsonl")
        paired, unpaired = 0, {}
        for record in scored:
            texts = [x["text"] for x in record["completions"]]
            assert len(set(texts)) == 2, texts
            scores = sorted(x["scores"]["even"] for x in record["completions"])
            if scores == [0.0, 1.0]:
                paired += 2
            elif scores == [1.0, 1.0]:
                unpaired["tie"] = unpaired.get("tie", 0) + 2
            else:
                paired += 1
                unpaired["not_selected"] = unpaired.get("not_selected", 0) + 1
        assert c["paired"] == paired and c["unpaired_reasons"] == unpaired
        pairs = read_jsonl(Path(r["directory"]) / "pairs.jsonl")
        assert r["pairs"] == len(pairs) == 8 - unpaired.get("tie", 0) // 2
        assert r["trained_pairs"] == len(pairs)


def test_each_round_records_the_policy_that_wrote_its_pairs(looped, tiny_model_dir):
    from prefkit.data.sources import file_sha256

    folder, _, result = looped
    run = folder / "run"
    round_1_adapter = "adapter:" + file_sha256(run / "round-1" / "run" / "adapter_model.safetensors")[:16]
    assert result["rounds"][0]["policy"] == f"model:{tiny_model_dir}"
    assert result["rounds"][0]["trained"] == round_1_adapter == result["rounds"][1]["policy"]
    ledger = json.loads((run / "loop.json").read_text())
    assert [r["policy"] for r in ledger["rounds"]] == [f"model:{tiny_model_dir}", round_1_adapter]
    assert ledger["rounds"][1]["init"] == str(run / "round-1" / "run") and ledger["rounds"][1]["reference"] == "base"
    assert set(ledger["rounds"][1]["stages"]) == {"generate", "score", "pair", "train", "eval"}
    for k, policy in ((1, f"model:{tiny_model_dir}"), (2, round_1_adapter)):
        for pair in read_jsonl(run / f"round-{k}" / "pairs.jsonl"):
            assert pair["metadata"]["round"] == str(k) and pair["metadata"]["policy"] == policy
    card = CliRunner().invoke(main, ["card", str(run / "round-2" / "pairs.jsonl"), "-o", str(folder / "card.md")])
    assert card.exit_code == 0, card.output
    text = (folder / "card.md").read_text()
    assert "## Lineage" in text and f"| 2 | {round_1_adapter} |" in text and "`../loop.json`" in text


def test_round_two_answers_come_from_round_one_adapter(looped, tmp_path):
    """Round 2's sampled answers are exactly what round 1's adapter writes with the round's seed; the
    adapter changes the model's greedy answers, so they are not the base model's."""
    import prefkit

    folder, recipe, _ = looped
    run = folder / "run"
    data = json.loads(recipe.read_text())
    settings = dict(data["loop"]["generate"], seed=2)  # the recipe's seed 0 + round 2
    again = prefkit.generate(
        data["loop"]["prompts"]["train"], tmp_path / "a.jsonl", model=str(run / "round-1" / "run"), **settings
    )
    texts = lambda records: [[c["text"] for c in r["completions"]] for r in records]
    assert texts(again.records) == texts(read_jsonl(run / "round-2" / "answers.jsonl"))
    greedy = {
        name: prefkit.generate(
            data["loop"]["prompts"]["train"], tmp_path / f"{name}.jsonl", model=model, max_new_tokens=4
        )
        for name, model in (("base", data["model"]), ("round-1", str(run / "round-1" / "run")))
    }
    assert texts(greedy["base"].records) != texts(greedy["round-1"].records)


def _reference_logps(cache: Path, reference_hash: str, args) -> dict[int, list[float]]:
    """The cached reference log-probs of the chosen replies keyed by the number of pairs, for every
    tokens folder whose reference was computed under ``reference_hash``."""
    import datasets

    from prefkit.lm.dpo_trainer import reference_key

    found = {}
    for tokens in cache.glob("tokens-*"):
        if tokens.is_dir():
            folder = cache / f"reference-{reference_key(tokens.name.removeprefix('tokens-'), reference_hash, args)}"
            if folder.is_dir():
                found[tokens.name] = datasets.load_from_disk(str(folder))["ref_chosen_logps"]
    return found


def _chosen_logps(model, cache: Path, tokens_name: str) -> list[float]:
    import datasets
    import torch

    from prefkit.lm.logprobs import reply_logps

    tokens = datasets.load_from_disk(str(cache / tokens_name))
    triples = list(zip(tokens["prompt_ids"], tokens["chosen_ids"], tokens["rejected_ids"], strict=True))
    with torch.no_grad():
        return reply_logps(model.eval(), triples, 8, 1 << 20).chosen.tolist()


@pytest.mark.slow  # a loop of its own, or a round retrained: the fast tier keeps its 5 minutes
def test_reference_base_keeps_the_base_log_probs_and_previous_uses_the_last_policy(looped, tiny_model_dir):
    """With ``reference: base`` both rounds' reference log-probs are the base model's, keyed by its
    weights; rerunning the loop with ``reference: previous`` keeps round 1 and round 2's answers,
    scores and pairs (their keys did not change) and retrains round 2 against round 1's policy."""
    from peft import PeftModel

    from prefkit.lm.dpo_trainer import digest, weights_digest
    from prefkit.lm.loading import adapter_digest, load_causal_lm
    from prefkit.lm.loop_recipe import load_loop_recipe

    folder, recipe, _ = looped
    run, cache = folder / "run", folder / "run" / "cache"
    args = load_loop_recipe(recipe).train.training_arguments()
    base = load_causal_lm(str(tiny_model_dir))
    base_hash = weights_digest(base)
    under_base = _reference_logps(cache, base_hash, args)
    assert len(under_base) == 2  # round 1's pairs and round 2's, both against the base
    for name, cached in under_base.items():
        assert cached == pytest.approx(_chosen_logps(base, cache, name), abs=1e-4)

    again = CliRunner().invoke(
        main, ["loop", str(recipe), "-o", str(run), "--resume", "--set", "loop.reference=previous", "--json"]
    )
    assert again.exit_code == 0, again.output
    rounds = json.loads(again.stdout)["rounds"]
    assert rounds[0]["reused"] == ["generate", "score", "pair", "train", "eval"]
    assert rounds[1]["reused"] == ["generate", "score", "pair"]
    previous = digest({"base": base_hash, "adapter": adapter_digest(run / "round-1" / "run")})
    ((name, cached),) = _reference_logps(cache, previous, args).items()
    policy = PeftModel.from_pretrained(load_causal_lm(str(tiny_model_dir)), str(run / "round-1" / "run"))
    assert cached == pytest.approx(_chosen_logps(policy, cache, name), abs=1e-4)
    assert cached != pytest.approx(_chosen_logps(base, cache, name), abs=1e-4)


@pytest.mark.slow  # a loop of its own, or a round retrained: the fast tier keeps its 5 minutes
def test_the_stopping_rule_stops_after_a_round_that_gains_too_little(tiny_model_dir, tmp_path):
    recipe = loop_recipe(tmp_path, tiny_model_dir, rounds=3, stop={"min_gain": 1.0})
    run = CliRunner().invoke(main, ["loop", str(recipe), "-o", str(tmp_path / "run")])
    assert run.exit_code == 0, run.output
    assert re.search(r"stopped: round 1 gained [+-]\d\.\d{3} over round 0, less than min_gain 1\n", run.output)
    assert not (tmp_path / "run" / "round-2").exists()
    ledger = json.loads((tmp_path / "run" / "loop.json").read_text())
    assert len(ledger["rounds"]) == 1 and ledger["stopped"].startswith("round 1 gained")
    assert (tmp_path / "run" / "rounds.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("loop_keys", "named"),
    [
        ({"rouns": 2}, "loop.rouns: unknown key (did you mean 'rounds'?)"),
        ({"generate": {"temperture": 0.5}}, "loop.generate.temperture: unknown key (did you mean 'temperature'?)"),
        ({"scorers": ["verify:no_such_verifier"]}, "loop.scorers: verify:no_such_verifier"),
        ({"scorers": ["reward-model:/no/such/folder"]}, "loop.scorers: model '/no/such/folder': no such folder"),
        ({"eval": {"scorers": ["judge:x.py:f"]}}, "loop.eval.scorers: --scorer judge:x.py:f: a pairwise judge"),
        ({"rank_by": "other"}, "loop.rank_by: other is not one of the scorers"),
        ({"generate": {"engine": "openai"}}, "loop.generate.engine: expected one of transformers, vllm"),
        ({"init": "base", "reference": "previous"}, "reference: previous with init: base"),
    ],
)
def test_a_recipe_mistake_exits_2_naming_the_key_before_any_model_loads(tmp_path, loop_keys, named):
    recipe = tmp_path / "loop.yaml"
    loop = {"prompts": {"train": "t.jsonl", "heldout": "h.jsonl"}, "scorers": ["verify:sample_task"]} | loop_keys
    recipe.write_text(json.dumps({"model": str(tmp_path / "never-loaded"), "loop": loop}))
    run = CliRunner().invoke(main, ["loop", str(recipe), "-o", str(tmp_path / "run")])
    assert run.exit_code == 2, run.output
    assert named in " ".join(run.output.split()), run.output
    assert not (tmp_path / "run").exists()


def test_a_folder_that_holds_a_loop_needs_resume(looped):
    folder, recipe, _ = looped
    run = CliRunner().invoke(main, ["loop", str(recipe), "-o", str(folder / "run")])
    assert run.exit_code == 2
    assert "holds a loop: add --resume to continue it" in " ".join(run.output.split())
    inside = CliRunner().invoke(main, ["loop", str(recipe), "-o", str(folder / "data")])
    assert inside.exit_code == 2 and "holds the loop's input" in " ".join(inside.output.split())


KILLER = """
import os, signal, sys
import prefkit
from transformers import TrainerCallback

recipe, out, where = sys.argv[1:4]
line = [""]

def progress(stage, done, total):
    line[0] = stage
    if where == "generate" and stage.startswith("round 2 · generate · generating") and done > 0:
        os.kill(os.getpid(), signal.SIGKILL)  # after the first batch of round 2's answers is kept

class KillAtStep3(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if where == "train" and line[0].startswith("round 2 · train") and state.global_step == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # after checkpoint-2, before the end

prefkit.loop(recipe, out, progress=progress, train_callbacks=[KillAtStep3()])
"""


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory):
    """The same two rounds, never stopped: what a killed and resumed loop must write."""
    import prefkit

    folder = tmp_path_factory.mktemp("uninterrupted")
    recipe = loop_recipe(folder, tiny_model_dir)
    prefkit.loop(recipe, folder / "run")
    return folder


def _same_outputs(ours: Path, theirs: Path) -> None:
    """Every file a round writes is the same (the adapter's weights to float tolerance); loop.json
    too, but for the stages' seconds and keys."""
    import torch
    from safetensors.torch import load_file

    for k in (1, 2):
        for name in ("answers.jsonl", "scored.jsonl", "pairs.jsonl", "eval.json", "eval.answers.jsonl"):
            # The files name the loop's own folder (the policy's path, the held-out file's).
            texts = [(run / f"round-{k}" / name).read_text().replace(str(run.parent), "HERE") for run in (ours, theirs)]
            assert texts[0] == texts[1], name
        weights = [load_file(str(run / f"round-{k}" / "run" / "adapter_model.safetensors")) for run in (ours, theirs)]
        assert weights[0].keys() == weights[1].keys()
        for key in weights[0]:
            torch.testing.assert_close(weights[0][key], weights[1][key], atol=1e-6, rtol=1e-5)

    def without_times(path: Path) -> dict:
        ledger = json.loads(path.read_text())
        for r in ledger["rounds"]:
            for stage in r["stages"].values():
                stage.pop("seconds"), stage.pop("key")  # keys hash the recipe, which names its folder
        return ledger["rounds"]

    ours_rounds, theirs_rounds = without_times(ours / "loop.json"), without_times(theirs / "loop.json")
    assert json.dumps(ours_rounds).replace(str(ours.parent), "HERE") == json.dumps(theirs_rounds).replace(
        str(theirs.parent), "HERE"
    )


def _kill_and_resume(folder: Path, model: Path, where: str) -> Path:
    import subprocess
    import sys

    recipe = loop_recipe(folder, model)
    script = folder / "killer.py"
    script.write_text(KILLER)
    command = [sys.executable, str(script), str(recipe), str(folder / "run"), where]
    killed = subprocess.run(command, cwd=folder, check=False)
    assert killed.returncode == -9
    return recipe


@pytest.mark.slow
def test_a_loop_killed_in_round_two_generation_resumes_and_writes_the_same(uninterrupted, tiny_model_dir, tmp_path):
    import prefkit

    recipe = _kill_and_resume(tmp_path, tiny_model_dir, "generate")
    run = tmp_path / "run"
    assert [p.name for p in (run / "round-2" / "answers.jsonl.resume").glob("batch-*.json")] == ["batch-000000.json"]
    assert not (run / "round-2" / "answers.jsonl").exists()
    result = prefkit.loop(recipe, run, resume=True)
    assert result.rounds[0].reused == ["generate", "score", "pair", "train", "eval"] and result.rounds[1].reused == []
    report = json.loads((run / "round-2" / "answers.report.json").read_text())
    assert report["resumed_batches"] == 1
    _same_outputs(run, uninterrupted / "run")


@pytest.mark.slow
def test_a_loop_killed_in_round_two_training_resumes_from_its_checkpoint(uninterrupted, tiny_model_dir, tmp_path):
    import prefkit

    recipe = _kill_and_resume(tmp_path, tiny_model_dir, "train")
    run = tmp_path / "run"
    assert (run / "round-2" / "run" / "checkpoint-2").is_dir() and not (
        run / "round-2" / "run" / "checkpoint-4"
    ).exists()
    references = {p: p.stat().st_mtime_ns for p in (run / "cache").glob("reference-*")}
    assert len(references) == 2  # round 1's pairs and round 2's, both computed before the kill
    result = prefkit.loop(recipe, run, resume=True)
    assert result.rounds[1].reused == ["generate", "score", "pair"]
    record = json.loads((run / "round-2" / "run" / "prefkit_run.json").read_text())
    assert record["resumed_from"].endswith("checkpoint-2") and record["finished"]
    # The reference log-probs were read from the cache, not computed again.
    assert {p: p.stat().st_mtime_ns for p in (run / "cache").glob("reference-*")} == references
    _same_outputs(run, uninterrupted / "run")


def test_the_packaged_loop_recipe_trains_each_round_as_the_quickstart_trains():
    """recipes/loop-quickstart.yaml is the quickstart's recipe with a loop: section; a change to one
    that is not made to the other fails here."""
    from prefkit.lm.loop_recipe import load_loop_recipe
    from prefkit.lm.quickstart import packaged_recipe
    from prefkit.lm.train import load_train_recipe

    looping = load_loop_recipe(packaged_recipe().with_name("loop-quickstart.yaml"))
    once = load_train_recipe(packaged_recipe())
    assert (Path(__file__).parents[2] / "recipes" / "loop-quickstart.yaml").resolve() == packaged_recipe().with_name(
        "loop-quickstart.yaml"
    )
    assert looping.train.dpo == once.dpo and looping.train.lora == once.lora and looping.train.model == once.model
    loop = looping.loop
    assert (loop.rounds, loop.reference, loop.init, loop.generate.n, loop.generate.max_new_tokens) == (
        3,
        "previous",
        "previous",
        1,
        16,
    )
    assert loop.scorers == ["verify:sample_task"] and loop.pairing.pair_reference and loop.eval.max_new_tokens == 48


@pytest.mark.slow  # a loop of its own, or a round retrained: the fast tier keeps its 5 minutes
def test_a_loop_folder_moved_elsewhere_keeps_its_finished_rounds(looped, tmp_path):
    """Stage keys name the loop's own files relative to its folder: a copy (a variant that shares
    round 1, say) resumes without running round 1 again."""
    import shutil

    folder, recipe, _ = looped
    shutil.copytree(folder / "run", tmp_path / "copy")
    again = CliRunner().invoke(main, ["loop", str(recipe), "-o", str(tmp_path / "copy"), "--resume", "--json"])
    assert again.exit_code == 0, again.output
    first = json.loads(again.stdout)["rounds"][0]
    assert first["reused"] == ["generate", "score", "pair", "train", "eval"]
    assert first["directory"] == str(tmp_path / "copy" / "round-1")
