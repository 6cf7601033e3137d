"""``prefkit generate``: every prompt answered or rejected, seeded, resumable after SIGKILL."""

from __future__ import annotations

import json

import pytest

from prefkit.errors import ExtraMissing, UsageError
from prefkit.lm.generate import GenerateConfig, generate, resume_folder
from prefkit.lm.pair_tokens import prompt_token_ids, tokenize_pairs
from prefkit.lm.sampling import batch_seed, batches


@pytest.fixture
def prompts_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    lines = [json.dumps({"prompt": f"What is {i} + {i}?", "reference": str(2 * i)}) for i in range(6)]
    lines += [
        json.dumps({"prompt": "What is 1 + 1?"}),  # duplicate
        json.dumps({"prompt": ""}),  # empty_prompt
        json.dumps({"prompt": "word " * 600}),  # prompt_too_long for a 512-position model
        "{broken",  # invalid_json
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(prompts_file, tiny_model_dir, out, **options):
    config = {"n": 2, "temperature": 1.0, "max_new_tokens": 6, "batch_size": 8} | options
    return generate(GenerateConfig(sources=[str(prompts_file)], output=str(out), model=str(tiny_model_dir), **config))


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_prompt_and_sample_is_accounted_for(prompts_file, tiny_model_dir, tmp_path):
    out = tmp_path / "answers.jsonl"
    result = run(prompts_file, tiny_model_dir, out)
    assert (result.read, result.prompts, result.duplicates, result.rejected) == (10, 6, 1, 3)
    assert result.reasons == {"empty_prompt": 1, "invalid_json": 1, "prompt_too_long": 1}
    rejects = records(tmp_path / "answers.rejects.jsonl")
    assert sorted((r["line"], r["reason"]) for r in rejects) == [
        (8, "empty_prompt"),
        (9, "prompt_too_long"),
        (10, "invalid_json"),
    ]
    assert "the model's context of 512" in next(r["detail"] for r in rejects if r["reason"] == "prompt_too_long")
    written = records(out)
    assert [r["reference"] for r in written] == ["0", "2", "4", "6", "8", "10"]
    assert all(len(r["completions"]) == 2 for r in written) and result.completions == 12
    assert all(c["finish_reason"] == "length" and c["tokens"] == 6 for r in written for c in r["completions"])
    assert written[0]["generation"] | {"model": None, "policy": None} == {
        "model": None,
        "policy": None,
        "adapter": None,
        "engine": "transformers",
        "n": 2,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": 6,
        "seed": 0,
    }
    assert written[0]["generation"]["policy"] == f"model:{tiny_model_dir}"  # no round: not a loop's answers
    report = json.loads((tmp_path / "answers.report.json").read_text())
    assert report["prompts"] == 6 and report["completions"] == 12
    assert not resume_folder(out).exists()


def test_the_same_seed_gives_the_same_completions(prompts_file, tiny_model_dir, tmp_path):
    first = run(prompts_file, tiny_model_dir, tmp_path / "a.jsonl")
    again = run(prompts_file, tiny_model_dir, tmp_path / "b.jsonl")
    other = run(prompts_file, tiny_model_dir, tmp_path / "c.jsonl", seed=1)
    texts = lambda result: [[c["text"] for c in r["completions"]] for r in result.records]
    assert texts(first) == texts(again)
    assert texts(first) != texts(other)
    # Two samples of one prompt differ from each other (sampling, not n copies of one draw).
    assert all(a != b for a, b in texts(first))


@pytest.mark.slow  # a Ray instance, 14 s: the fast tier stays under 5 minutes
def test_ray_data_on_a_local_instance_gives_the_single_process_output(prompts_file, tiny_model_dir, tmp_path):
    pytest.importorskip("ray.data")
    import ray

    run(prompts_file, tiny_model_dir, tmp_path / "a.jsonl", batch_size=4)
    try:
        spread = run(prompts_file, tiny_model_dir, tmp_path / "b.jsonl", batch_size=4, ray="local", ray_workers=2)
    finally:
        ray.shutdown()
    # Three batches of two prompts, answered by two actors in whatever order they finish.
    assert (spread.prompts, spread.completions, spread.rejected) == (6, 12, 3)
    assert (tmp_path / "b.jsonl").read_text() == (tmp_path / "a.jsonl").read_text()
    assert not resume_folder(tmp_path / "b.jsonl").exists()


def test_batches_are_sorted_longest_first_and_seeded_by_index():
    assert batches([1, 5, 3, 5], 3) == [[1, 3, 2], [0]]
    assert len({batch_seed(0, i) for i in range(100)}) == 100


def test_prompts_are_rendered_as_training_renders_them(tiny_model_dir):
    from prefkit.lm.loading import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    prompts = [
        [{"role": "user", "content": "What is 2 + 2?"}],
        [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
    ]
    reply = [[{"role": "assistant", "content": "4"}]] * 2
    assert prompt_token_ids(tokenizer, prompts) == tokenize_pairs(tokenizer, prompts, reply, reply).prompt_ids


def test_usage_errors(prompts_file, tiny_model_dir, tmp_path):
    with pytest.raises(UsageError, match="identical greedy answers"):
        GenerateConfig(sources=["x"], output="o.jsonl", model="m", n=2, temperature=0)
    with pytest.raises(UsageError, match="must end in .jsonl"):
        run(prompts_file, tiny_model_dir, tmp_path / "answers.parquet")
    with pytest.raises(UsageError, match="is an input"):
        run(prompts_file, tiny_model_dir, prompts_file)
    out = tmp_path / "answers.jsonl"
    resume_folder(out).mkdir()
    with pytest.raises(UsageError, match="add --resume"):
        run(prompts_file, tiny_model_dir, out)
    (resume_folder(out) / "run.json").write_text('{"key": "another run"}')
    with pytest.raises(UsageError, match="other prompts, model or settings"):
        run(prompts_file, tiny_model_dir, out, resume=True)
    assert not out.exists()


def test_vllm_engine_needs_vllm(prompts_file, tiny_model_dir, tmp_path):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here; its engine is checked on a GPU machine")
    with pytest.raises(ExtraMissing, match="pip install vllm"):
        run(prompts_file, tiny_model_dir, tmp_path / "answers.jsonl", engine="vllm")


def test_ray_needs_ray_and_says_so_before_loading_anything(prompts_file, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    # No model is loaded first: a model name that does not exist is never reached.
    with pytest.raises(ExtraMissing, match=r"pip install 'prefkit\[ray\]'"):
        run(prompts_file, "no-such-model-folder", tmp_path / "answers.jsonl", ray="auto")
    assert not (tmp_path / "answers.jsonl").exists()


def test_a_run_killed_mid_way_resumes_to_the_uninterrupted_output(tiny_model_dir, tmp_path):
    """SIGKILL in a subprocess after some batches are kept; --resume finishes with the same file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Tell me about the number {i}."}) + "\n" for i in range(24)))
    options = {"n": 2, "temperature": 1.0, "max_new_tokens": 8, "batch_size": 2}
    whole = run(prompts, tiny_model_dir, tmp_path / "whole.jsonl", **options)
    out = tmp_path / "killed.jsonl"
    script = (
        "import sys; from prefkit.lm.generate import GenerateConfig, generate; "
        f"generate(GenerateConfig(sources=[{str(prompts)!r}], output={str(out)!r}, model={str(tiny_model_dir)!r}, **{options!r}))"
    )
    running = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    folder = resume_folder(out)
    deadline = time.monotonic() + 120
    while len(list(folder.glob("batch-*.json"))) < 3 and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    running.send_signal(signal.SIGKILL)
    running.wait()
    kept = len(list(folder.glob("batch-*.json")))
    assert 3 <= kept < 24, "the run was not killed mid-way"
    assert not out.exists()
    resumed = run(prompts, tiny_model_dir, out, resume=True, **options)
    assert resumed.resumed_batches == kept
    assert out.read_text() == (tmp_path / "whole.jsonl").read_text()
    assert resumed.completions == whole.completions == 48
    assert not folder.exists()


def test_the_commands_chain_generate_score_convert(tiny_model_dir, tmp_path):
    from click.testing import CliRunner

    from prefkit.cli import main

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"prompt": f"What is {i} + 1?", "reference": f"{i + 1}"}) + "\n" for i in range(4))
    )
    answers, scored, pairs = tmp_path / "answers.jsonl", tmp_path / "scored.jsonl", tmp_path / "pairs.jsonl"
    runner = CliRunner()
    made = runner.invoke(
        main,
        [
            "generate",
            str(prompts),
            "-o",
            str(answers),
            "--model",
            str(tiny_model_dir),
            "--n",
            "2",
            "--temperature",
            "1",
            "--max-new-tokens",
            "3",
        ],
    )
    assert made.exit_code == 0, made.output
    assert "read 4: prompts 4, duplicates 0, rejected 0" in made.output and "completions 8" in made.output
    judged = runner.invoke(main, ["score", str(answers), "-o", str(scored), "--scorer", "verify:sample_task", "--json"])
    assert judged.exit_code == 0, judged.output
    report = json.loads(judged.output)
    assert report["completions"] == 8 and report["scorers"][0]["mean"] == 0.0
    # Every answer of a random model is wrong: each prompt is paired as reference vs its own answer.
    paired = runner.invoke(
        main, ["convert", str(scored), "-o", str(pairs), "--pair-reference", "--binarize", "best-worst"]
    )
    assert paired.exit_code == 0, paired.output
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert [r["chosen"][0]["content"] for r in rows] == ["1", "2", "3", "4"]
    assert {r["metadata"]["chosen_origin"] for r in rows} == {"reference"}
    usage = runner.invoke(main, ["generate", str(prompts), "-o", str(answers), "--model", "m", "--n", "2"])
    assert usage.exit_code == 2 and "identical greedy answers" in usage.output
    bad = runner.invoke(main, ["score", str(answers), "-o", str(scored), "--scorer", "nope:x"])
    assert bad.exit_code == 2 and "expected KIND:TARGET" in bad.output and "Traceback" not in bad.output
    judge = runner.invoke(main, ["score", str(answers), "-o", str(scored), "--scorer", "judge:x"])
    assert judge.exit_code == 2 and "--scorer judge:x: a pairwise judge votes on pairs" in judge.output
