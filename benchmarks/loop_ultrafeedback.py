"""The loop on real data: ``prefkit loop`` on UltraFeedback prompts, judged by a reward model that
prefkit trains on held-apart UltraFeedback pairs. CPU, the bundled model.

    python benchmarks/loop_ultrafeedback.py [--judge-pairs 256] [--loop-prompts 96] [--eval-prompts 48]

Three parts of the UltraFeedback rows in ``../shared/data`` (prompts of at most 400 characters):

1. judge: up to ``--judge-pairs`` pairs of ``train_prefs`` whose replies have at most 800
   characters train a reward model (``method: reward``: the bundled model with a one-score head,
   LoRA, 320 tokens), one pass; its pairwise accuracy on the held-out test pairs says how far to
   trust it;
2. loop: ``--loop-prompts`` other prompts of ``train_prefs`` are the loop's training prompts:
   each round the policy answers each twice (temperature 0.8), the reward model scores the answers,
   the better of the two is chosen (best-worst; ties rejected), and DPO trains on those pairs;
3. eval: ``--eval-prompts`` prompts of ``test_prefs``: the policy's greedy answers each round,
   scored by the same reward model, beside implicit-reward accuracy on those test pairs.

The judge is a 135M model's reward head trained on a few hundred pairs whose replies it sees only
up to ``max_length`` tokens: it is not the truth. The loop can only show that the policy moves
towards what this judge prefers, and the judge's own held-out accuracy bounds what that is worth.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl
import yaml
from harness import ROOT, header
from rich.console import Console

JUDGE_RECIPE = {
    "method": "reward",
    "model": "smollm2-135m-instruct",
    "seed": 0,
    "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "last_layers": 20},
    "learning_rate": 1.0e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 3,
    "per_device_train_batch_size": 8,
    "max_length": 320,
    "gradient_checkpointing": False,
    "logging_steps": 5,
    "save_steps": 1000,
}
JUDGE_REPLY_CHARS = 800
"""Replies of at most this many characters (about 200 tokens): with the prompt, they fit 320 tokens."""
LOOP_RECIPE = {
    "model": "smollm2-135m-instruct",
    "seed": 0,
    "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "last_layers": 20},
    "loss_type": ["sigmoid", "sft"],
    "loss_weights": [1.0, 1.0],
    "beta": 0.1,
    "learning_rate": 5.0e-4,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 2,
    "per_device_train_batch_size": 8,
    "max_length": 256,
    "long_prompts": "trim_turns",
    "gradient_checkpointing": False,
    "logging_steps": 4,
    "save_steps": 1000,
}


def slices(data: Path, out: Path, judge: int, loop: int, heldout: int) -> dict[str, Path]:
    """The three parts as UltraFeedback-layout Parquet files, then canonical pairs through convert."""
    from prefkit import api

    short = pl.col("prompt").str.len_chars() <= 400
    train = pl.read_parquet(data / "ultrafeedback-binarized-train_prefs.parquet").filter(short)
    test = pl.read_parquet(data / "ultrafeedback-binarized-test_prefs.parquet").filter(short)
    # The judge learns from pairs whose replies fit its max_length whole (a reward model drops a
    # longer pair); the policy's answers it will judge are short too.
    reply = lambda side: pl.col(side).list.last().struct.field("content").str.len_chars()
    fits = (reply("chosen") <= JUDGE_REPLY_CHARS) & (reply("rejected") <= JUDGE_REPLY_CHARS)
    judged = train.filter(fits).head(judge)
    rest = train.join(judged.select("prompt_id"), on="prompt_id", how="anti")
    parts = {"judge": judged, "loop": rest.head(loop), "eval": test.head(heldout)}
    paths = {}
    for name, frame in parts.items():
        frame.write_parquet(out / f"{name}.uf.parquet")
        api.convert(out / f"{name}.uf.parquet", out / f"{name}.jsonl")
        paths[name] = out / f"{name}.jsonl"
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge-pairs", type=int, default=256)
    parser.add_argument("--loop-prompts", type=int, default=96)
    parser.add_argument("--eval-prompts", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12, help="DPO steps of 8 per round")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "loop-ultrafeedback")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    from prefkit.cli.quiet import quiet_third_parties

    quiet_third_parties(verbose=False)
    console = Console(width=120)
    console.print(header(("prefkit", "torch", "transformers", "trl", "peft")))
    from prefkit import api
    from prefkit.cli import render

    out = args.work
    out.mkdir(parents=True, exist_ok=True)
    paths = slices(args.data, out, args.judge_pairs, args.loop_prompts, args.eval_prompts)
    started = time.perf_counter()
    judge_recipe = out / "judge.yaml"
    judge_recipe.write_text(
        yaml.safe_dump(
            JUDGE_RECIPE
            | {"data": {"train": str(paths["judge"])}, "output_dir": str(out / "judge")}
            | {"max_steps": max(1, len(paths["judge"].read_text().splitlines()) // 8)}
        )
    )
    from prefkit.lm.train import load_train_recipe, run_state

    if run_state(load_train_recipe(judge_recipe)) != "finished":
        api.train(judge_recipe)
    judge_pairs = json.loads((out / "judge" / "token_report.json").read_text())["trained"]
    judged = api.evaluate(str(out / "judge"), paths["eval"], max_length=JUDGE_RECIPE["max_length"])
    judge_minutes = (time.perf_counter() - started) / 60
    loop = {
        "prompts": {"train": str(paths["loop"]), "heldout": str(paths["eval"])},
        "rounds": args.rounds,
        "generate": {"n": 2, "temperature": 0.8, "max_new_tokens": args.max_new_tokens},
        "scorers": [f"rm=reward-model:{out / 'judge'}"],
        "pairing": {"binarize": "best-worst", "pair_reference": False},
        "eval": {"max_new_tokens": args.max_new_tokens, "max_length": LOOP_RECIPE["max_length"]},
    }
    loop_recipe = out / "loop.yaml"
    loop_recipe.write_text(yaml.safe_dump(LOOP_RECIPE | {"max_steps": args.steps, "loop": loop}))
    result = api.loop(loop_recipe, out / "loop", resume=(out / "loop" / "loop.json").exists())
    accuracy = judged.metrics.pairwise_accuracy
    console.print(
        f"judge: a reward model on {judge_pairs} UltraFeedback pairs ({judge_minutes:.1f} min); its pairwise "
        f"accuracy on the {judged.metrics.pairs} held-out test pairs: {accuracy}"
    )
    render.looped(result)
    (out / "report.json").write_text(
        json.dumps({"judge": judged.metrics.pairwise_accuracy, "loop": result.to_dict()}, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
