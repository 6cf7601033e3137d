"""prefkit train against a plain TRL DPOTrainer script: tokens/s and peak memory, side by side.

    python benchmarks/bench_train.py [--pairs 48] [--batch-size 4] [--max-length 256] [--runs 3]

Same model (the bundled SmolLM2-135M-Instruct), same pairs (real HH-RLHF from ../shared/data when
present, else prefkit's sample), same settings (LoRA r=16 on q/k/v/o, one epoch, batch 4,
max_length 256, lr 5e-6); each run in its own process, timed from loading the model to the end of
training, peak memory from the process's maximum resident set:

1. ``trl``: the script a user writes today (``load_dataset`` + ``DPOTrainer`` with defaults,
   so the reference model runs inside every step);
2. ``prefkit``: ``prefkit train`` with its defaults (one reference pass before training, saved);
3. ``prefkit, reference cached``: another run (another beta) that finds the saved reference
   log-probs;
4. ``+ length-grouped``: the same with ``train_sampling_strategy: group_by_length``, so a batch
   holds pairs of similar length and little padding.

Tokens are the non-padding tokens of every prompt + reply sequence trained on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import header, spread
from rich.console import Console
from rich.table import Table

SHARED_HH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def settings(args) -> dict:
    return {
        "per_device_train_batch_size": args.batch_size,
        "num_train_epochs": 1,
        "max_length": args.max_length,
        "learning_rate": 5e-6,
        "beta": 0.1,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "seed": 0,
        "dataloader_pin_memory": False,
    }


def prepare_data(work: Path, pairs: int) -> Path:
    """A canonical file of ``pairs`` pairs: real HH-RLHF when it is there, else the bundled sample."""
    from prefkit.data.convert import ConvertConfig, convert
    from prefkit.data.sample_data import SampleConfig, write_sample

    source = SHARED_HH
    if not source.exists():
        source = write_sample(work / "sample", SampleConfig(train=pairs, heldout=4))["train"]
    full = work / "all.jsonl"
    convert(ConvertConfig(sources=[str(source)], output=str(full)))
    lines = full.read_text(encoding="utf-8").splitlines()[:pairs]
    data = work / "train.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data


def count_tokens(data: Path, max_length: int) -> int:
    """Non-padding tokens of both sequences of every pair, cut to ``max_length`` as training cuts."""
    from prefkit.data.validate import load_canonical
    from prefkit.lm.loading import load_tokenizer
    from prefkit.lm.pair_tokens import tokenize_pair

    tokenizer = load_tokenizer("smollm2-135m-instruct")
    total = 0
    for row in load_canonical(data).select("prompt", "chosen", "rejected").iter_rows():
        prompt, chosen, rejected = tokenize_pair(tokenizer, *row)
        total += min(len(prompt) + len(chosen), max_length) + min(len(prompt) + len(rejected), max_length)
    return total


def run_trl(data: Path, work: Path, args) -> None:
    """The plain script: what TRL's documentation shows, on the same model and settings."""
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from prefkit.lm.loading import materialize

    folder = materialize()
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    dataset = load_dataset("json", data_files=str(data), split="train").select_columns(["prompt", "chosen", "rejected"])
    peft_config = LoraConfig(
        r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], target_modules=LORA["target_modules"]
    )
    config = DPOConfig(output_dir=str(work / "trl"), bf16=False, **settings(args))
    DPOTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    ).train()


def run_prefkit(data: Path, work: Path, args, beta: float, grouped: bool) -> None:
    from prefkit.lm.train import DataSettings, LoraSettings, TrainConfig, train

    dpo = {key: value for key, value in settings(args).items() if key != "seed"} | {"beta": beta}
    if grouped:
        dpo["train_sampling_strategy"] = "group_by_length"
    train(
        TrainConfig(
            data=DataSettings(train=str(data)),
            output_dir=str(work / f"prefkit-{beta}-{grouped}"),
            cache_dir=str(work / "cache"),
            seed=settings(args)["seed"],
            lora=LoraSettings(**LORA),
            dpo=dpo,
        )
    )


RUNS = {
    "trl": ("plain TRL script (defaults)", lambda d, w, a: run_trl(d, w, a)),
    "prefkit": ("prefkit train (defaults)", lambda d, w, a: run_prefkit(d, w, a, 0.1, False)),
    "cached": ("prefkit, reference cached (beta 0.2)", lambda d, w, a: run_prefkit(d, w, a, 0.2, False)),
    "grouped": ("+ length-grouped batches (beta 0.3)", lambda d, w, a: run_prefkit(d, w, a, 0.3, True)),
}


def child(name: str, data: Path, work: Path, args) -> None:
    start = time.perf_counter()
    RUNS[name][1](data, work, args)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def measure(name: str, data: Path, work: Path, args) -> dict:
    """Runs one configuration in a fresh process; its time and peak resident memory."""
    command = [sys.executable, __file__, "--child", name, "--data", str(data), "--work", str(work)]
    command += ["--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]
    env = os.environ | {"TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = work / f"{name}.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{name} failed (status {status}): {log.read_text()[-3000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    return result | {"peak_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=sorted(RUNS))
    parser.add_argument("--data", type=Path)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.work, args)
        return

    console = Console(width=120)
    console.print(header(("prefkit", "torch", "transformers", "trl", "peft")))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = prepare_data(root, args.pairs)
        tokens = count_tokens(data, args.max_length)
        console.print(
            f"{args.pairs} pairs from {'HH-RLHF harmless-base test' if SHARED_HH.exists() else 'the bundled sample'}, "
            f"{tokens} tokens per epoch, batch {args.batch_size}, max_length {args.max_length}, {args.runs} runs"
        )
        results: dict[str, list[dict]] = {name: [] for name in RUNS}
        for run in range(args.runs):
            # Each repetition starts from an empty cache: "cached" reuses only this repetition's pass.
            work = root / f"run-{run}"
            work.mkdir()
            for name, (label, _) in RUNS.items():
                results[name].append(measure(name, data, work, args))
                console.print(f"run {run + 1}, {label}: {results[name][-1]['seconds']:.1f} s")
    table = Table("run", "seconds", "tokens/s", "peak memory (MiB)", "vs TRL")
    baseline = results["trl"]
    for name, (label, _) in RUNS.items():
        seconds = [r["seconds"] for r in results[name]]
        table.add_row(
            label,
            spread(seconds),
            spread([tokens / x for x in seconds], "{:.0f}"),
            spread([r["peak_mib"] for r in results[name]], "{:.0f}"),
            spread([b["seconds"] / x for b, x in zip(baseline, seconds, strict=True)], "{:.2f}") + "x",
        )
    console.print(table)


if __name__ == "__main__":
    main()
