"""The loop on real data: does DPO on the model's own answers, scored by a judge, beat DPO on
UltraFeedback's own (off-policy) pairs, judged by what the model answers? CPU, bundled model.

    python benchmarks/loop_ultrafeedback.py [--judge-pairs 256] [--loop-prompts 256] [--eval-prompts 100]

There is no reward model offline, so the judge is the implicit reward of a DPO adapter trained on
a held-apart part of UltraFeedback's pairs (``implicit:JUDGE``), a 135M model's view of what
UltraFeedback prefers. Three parts of ``train_prefs``, by row, prompts of at most 600 characters:

1. judge: ``--judge-pairs`` pairs train the judge (DPO, 1 pass);
2. loop: ``--loop-prompts`` prompts are answered twice by the bundled model (``prefkit generate``,
   T 0.8), scored by the judge (``prefkit score``), binarized best-worst (``prefkit convert``; ties
   rejected), and the policy trains on those pairs (on-policy); the same prompts' UltraFeedback
   pairs train a second policy the usual way (off-policy), same recipe and steps;
3. eval: ``--eval-prompts`` prompts of ``test_prefs``: each policy and the model before answer
   greedily (``prefkit eval --generate``), the judge scores the answers; beside it, each policy's
   implicit-reward accuracy on the test pairs.

The judge scores the answers of the policies it did not train; a judge is not the truth (a 135M
model's implicit reward sees length and style more than correctness), so the figures say what the
judge prefers, which the report states beside them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl
from harness import ROOT, header
from rich.console import Console
from rich.table import Table

RECIPE = {
    "model": "smollm2-135m-instruct",
    "seed": 0,
    "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "last_layers": 20},
    "beta": 0.1,
    "learning_rate": 5.0e-4,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 3,
    "per_device_train_batch_size": 8,
    "max_length": 384,
    "long_prompts": "trim_turns",
    "gradient_checkpointing": False,
    "logging_steps": 5,
    "save_steps": 1000,
}


def slices(data: Path, out: Path, judge: int, loop: int, heldout: int) -> dict[str, Path]:
    """The three parts as UltraFeedback-layout Parquet files, then canonical pairs through convert."""
    from prefkit import api

    short = pl.col("prompt").str.len_chars() <= 600
    train = pl.read_parquet(data / "ultrafeedback-binarized-train_prefs.parquet").filter(short)
    test = pl.read_parquet(data / "ultrafeedback-binarized-test_prefs.parquet").filter(short)
    parts = {"judge": train.head(judge), "loop": train.slice(judge, loop), "eval": test.head(heldout)}
    paths = {}
    for name, frame in parts.items():
        frame.write_parquet(out / f"{name}.uf.parquet")
        api.convert(out / f"{name}.uf.parquet", out / f"{name}.jsonl")
        paths[name] = out / f"{name}.jsonl"
    return paths


def train(out: Path, name: str, pairs: Path, steps: int, extra: dict | None = None) -> Path:
    import yaml

    from prefkit import api

    recipe = RECIPE | {"data": {"train": str(pairs)}, "output_dir": str(out / name), "max_steps": steps} | (extra or {})
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    api.train(api.load_recipe(path))
    return out / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge-pairs", type=int, default=256)
    parser.add_argument("--loop-prompts", type=int, default=256)
    parser.add_argument("--eval-prompts", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "loop-ultrafeedback")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    from prefkit.cli.quiet import quiet_third_parties

    quiet_third_parties(verbose=False)
    console = Console(width=120)
    console.print(header(("prefkit", "torch", "transformers", "trl", "peft")))
    from prefkit import api

    out = args.work
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    def timed(stage, call):
        started = time.perf_counter()
        value = call()
        seconds[stage] = round(time.perf_counter() - started)
        console.print(f"{stage}: {seconds[stage]} s")
        return value

    paths = slices(args.data, out, args.judge_pairs, args.loop_prompts, args.eval_prompts)
    judge = timed("train judge", lambda: train(out, "judge", paths["judge"], args.judge_pairs // 8))
    generated = timed(
        "generate",
        lambda: api.generate(
            [paths["loop"]],
            output=str(out / "answers.jsonl"),
            model="smollm2-135m-instruct",
            n=2,
            temperature=0.8,
            max_new_tokens=args.max_new_tokens,
            resume=(out / "answers.jsonl.resume").exists(),
        ),
    )
    timed("score", lambda: api.score(out / "answers.jsonl", out / "scored.jsonl", [f"judge=implicit:{judge}"]))
    pairs = api.convert(out / "scored.jsonl", out / "onpolicy.jsonl", binarize="best-worst")
    steps = max(1, pairs.written // 8)
    policies = {
        "on-policy (own answers, judged)": timed(
            "train on-policy", lambda: train(out, "onpolicy", out / "onpolicy.jsonl", steps)
        ),
        "off-policy (UltraFeedback's pairs)": timed(
            "train off-policy", lambda: train(out, "offpolicy", paths["loop"], steps)
        ),
    }
    results = {}
    for label, run in policies.items():
        results[label] = timed(
            f"eval {run.name}",
            lambda run=run: api.evaluate(
                str(run),
                paths["eval"],
                generate=True,
                scorers=[f"judge=implicit:{judge}"],
                max_new_tokens=args.max_new_tokens,
                max_length=RECIPE["max_length"],
            ),
        )

    table = Table(
        title=f"UltraFeedback test prompts: {args.eval_prompts}, greedy, {args.max_new_tokens} tokens; "
        f"judge = implicit reward of a DPO adapter on {args.judge_pairs} other pairs",
        title_justify="left",
    )
    for column in (
        "policy (trained pairs)",
        "judge before",
        "judge after",
        "after - before",
        "impl.-reward acc.",
        "length",
    ):
        table.add_column(column, justify="right")
    report = {"seconds": seconds, "generated": generated.completions, "pairs": pairs.written, "policies": {}}
    for label, result in results.items():
        scores = next(s for s in result.answers.scores if s.scorer == "judge")
        acc = result.metrics.implicit_reward_accuracy
        table.add_row(
            f"{label} ({pairs.written})",
            f"{scores.before.value:.3f} ({scores.before.low:.3f}–{scores.before.high:.3f})",
            f"{scores.after.value:.3f} ({scores.after.low:.3f}–{scores.after.high:.3f})",
            f"{scores.difference.value:.3f} ({scores.difference.low:.3f}–{scores.difference.high:.3f})",
            f"{acc.value:.3f} ({acc.low:.3f}–{acc.high:.3f})",
            f"{result.answers.mean_tokens_before:.0f} → {result.answers.mean_tokens_after:.0f}",
        )
        report["policies"][label] = result.to_dict()
    console.print(table)
    console.print(
        f"generated {generated.completions} answers to {generated.prompts} prompts; judged pairs {pairs.written} "
        f"(rejected {pairs.rejected}: ties); times {json.dumps(seconds)}"
    )
    (out / "loop-report.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
