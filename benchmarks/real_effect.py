"""Does DPO on data prefkit made move a model on real preference data? HH-RLHF harmless-base, CPU.

    python benchmarks/real_effect.py [--train 320] [--heldout 160] [--steps 40] [--data ../shared/data]

Converts the real HH-RLHF harmless-base rows in ../shared/data with prefkit, splits them by prompt
with prefkit's grouped split (no prompt on both sides), samples the pairs for each side (seeded),
trains the bundled SmolLM2-135M-Instruct with LoRA through ``prefkit train`` (the quickstart
recipe's settings but for the data, max_length 256 and the steps), and scores the held-out pairs
before and after with ``prefkit eval``: implicit-reward accuracy and log-prob accuracy, each with a
bootstrap 95% interval. Budget: under 45 minutes on 2 CPU cores. CPU training here is
deterministic, so a rerun gives the same figures; the wall time is what varies.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl
from harness import ROOT, header
from rich.console import Console
from rich.table import Table


def build_splits(data: Path, out: Path, n_train: int, n_heldout: int, seed: int) -> dict:
    from prefkit.data.convert import ConvertConfig, convert
    from prefkit.data.keys import prompt_key
    from prefkit.data.splits import grouped_test_mask
    from prefkit.data.writers import write_pairs

    converted = convert(
        ConvertConfig(sources=[str(data / "hh-rlhf-harmless-base-test.jsonl.gz")], output=str(out / "hh.jsonl"))
    )
    pairs = pl.read_ndjson(out / "hh.jsonl")
    test = grouped_test_mask(pairs.select(prompt_key()).to_series(), n_heldout / pairs.height * 1.5, seed)
    sides = {"train": pairs.filter(~test), "heldout": pairs.filter(test)}
    counts = {"read": converted.read, "written": converted.written, "rejected": converted.rejected}
    for name, n in (("train", n_train), ("heldout", n_heldout)):
        frame = sides[name].sample(n=min(n, sides[name].height), seed=seed)
        write_pairs(frame, out / f"{name}.jsonl")
        counts[name] = frame.height
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=320, help="training pairs")
    parser.add_argument("--heldout", type=int, default=160, help="held-out pairs")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps of 8 pairs")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    from prefkit.cli.quiet import quiet_third_parties

    quiet_third_parties(verbose=False)
    console = Console(width=120)
    console.print(header(("prefkit", "torch", "transformers", "trl", "peft")))

    from prefkit.lm.evaluate import EvalConfig, evaluate
    from prefkit.lm.quickstart import packaged_recipe
    from prefkit.lm.train import load_train_recipe, train

    with tempfile.TemporaryDirectory(prefix="prefkit-real-") as tmp:
        tmp = Path(tmp)
        counts = build_splits(args.data, tmp, args.train, args.heldout, args.seed)
        console.print(
            f"HH-RLHF harmless-base test: read {counts['read']:,}, canonical {counts['written']:,} "
            f"(rejected {counts['rejected']:,}); split by prompt: train {counts['train']}, held out {counts['heldout']}"
        )
        overrides = [
            f"data.train={tmp / 'train.jsonl'}",
            f"output_dir={tmp / 'run'}",
            f"max_steps={args.steps}",
            f"max_length={args.max_length}",
            "long_prompts=trim_turns",
            f"seed={args.seed}",
        ]
        config = load_train_recipe(packaged_recipe(), overrides)
        started = time.perf_counter()
        trained = train(config)
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result = evaluate(
            EvalConfig(model=str(tmp / "run"), data=str(tmp / "heldout.jsonl"), max_length=args.max_length)
        )
        eval_seconds = time.perf_counter() - started

    m = result.metrics
    table = Table(title=f"held-out pairs: {m.pairs} (beta {m.beta:g})", title_justify="left")
    for column in ("metric", "before", "95% CI", "after", "95% CI "):
        table.add_column(column, justify="right")

    def cells(e) -> list[str]:
        return [f"{e.value:.3f}", f"{e.low:.3f}–{e.high:.3f}"] if e else ["", ""]

    table.add_row("implicit-reward accuracy", "0.500", "(by definition)", *cells(m.implicit_reward_accuracy))
    table.add_row("log-prob accuracy", *cells(m.reference_logprob_accuracy), *cells(m.logprob_accuracy))
    table.add_row(
        "log-prob accuracy per token",
        *cells(m.reference_logprob_accuracy_per_token),
        *cells(m.logprob_accuracy_per_token),
    )
    console.print(table)
    console.print(
        f"mean reward margin {m.reward_margin.value:.3f} ({m.reward_margin.low:.3f}–{m.reward_margin.high:.3f}); "
        f"ties {m.ties}, truncated {m.truncated}, not scored {len(m.unscored)}; "
        f"trained {trained.tokens.trained} pairs ({trained.tokens.trimmed} prompts trimmed) in "
        f"{trained.steps} steps: train {train_seconds / 60:.1f} min, eval {eval_seconds / 60:.1f} min"
    )
    console.print(json.dumps({"train_seconds": round(train_seconds), "eval_seconds": round(eval_seconds)}))


if __name__ == "__main__":
    main()
