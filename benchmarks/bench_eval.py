"""prefkit eval's scoring against the naive loop, on the bundled model and the sample's held-out pairs.

    python benchmarks/bench_eval.py [--pairs 120] [--batch-size 8] [--runs 3] [--float64]

Naive: two unbatched forward passes per pair (prompt + chosen, prompt + rejected), summing
``log_softmax`` over the reply tokens. prefkit: ``reply_logps``, each pair tokenized once and
``batch-size`` pairs per batch, each prompt run once per pair and the shared prefix once in all,
from the key/value cache. Both score the same tokenization; the script prints pairs/s, the ratio
and how far apart the numbers are (with ``--float64``, how far each is from a float64
computation: float32 sums over a 30-layer model are not exact to 1e-4 themselves). Each side runs
``--runs`` times, alternating; the date, the library versions and the ranges are printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from harness import header, spread
from rich.console import Console

from prefkit.data.sample_data import sample_pairs
from prefkit.lm.loading import materialize
from prefkit.lm.logprobs import reply_logps
from prefkit.lm.pair_tokens import tokenize_pair


def naive(model, tokenized) -> tuple[np.ndarray, np.ndarray]:
    chosen, rejected = [], []
    with torch.no_grad():
        for prompt_ids, chosen_ids, rejected_ids in tokenized:
            for reply, out in ((chosen_ids, chosen), (rejected_ids, rejected)):
                ids = torch.tensor([prompt_ids + reply])
                logps = torch.log_softmax(model(ids).logits[0], -1)
                positions = torch.arange(len(prompt_ids), ids.shape[1])
                out.append(logps[positions - 1, ids[0, positions]].sum().item())
    return np.array(chosen), np.array(rejected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--float64", action="store_true", help="also compare both with a float64 computation")
    args = parser.parse_args()
    console = Console(width=120)
    console.print(header(("prefkit", "torch", "transformers")))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = materialize()
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with tempfile.TemporaryDirectory():
        pairs = sample_pairs(args.pairs, seed=1)
    tokenized = [
        tokenize_pair(
            tokenizer,
            [{"role": "user", "content": p.prompt}],
            [{"role": "assistant", "content": p.chosen}],
            [{"role": "assistant", "content": p.rejected}],
        )
        for p in pairs
    ]
    base, took = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        base_chosen, base_rejected = naive(model, tokenized)
        base.append(time.perf_counter() - start)
        start = time.perf_counter()
        ours = reply_logps(model, tokenized, batch_size=args.batch_size)
        took.append(time.perf_counter() - start)
    n = args.pairs
    console.print(f"model {Path(folder).name}, {n} pairs, {torch.get_num_threads()} threads, {args.runs} runs")
    console.print(
        f"naive loop (2 unbatched passes per pair): {spread(base)} s, {spread([n / t for t in base])} pairs/s"
    )
    console.print(
        f"prefkit reply_logps (batch {args.batch_size}): {spread(took)} s, {spread([n / t for t in took])} pairs/s"
    )
    naive_values = np.concatenate([base_chosen, base_rejected])
    ours_values = np.concatenate([ours.chosen, ours.rejected])
    diff = np.abs(ours_values - naive_values)
    same_preference = np.array_equal(ours.chosen > ours.rejected, base_chosen > base_rejected)
    console.print(
        f"ratio {spread([b / t for b, t in zip(base, took, strict=True)], '{:.2f}')}x; prefkit - naive: largest {diff.max():.2e}, mean {diff.mean():.2e}, "
        f"largest relative {(diff / np.abs(naive_values)).max():.1e}; "
        f"same preferred reply in every pair: {same_preference}"
    )
    if args.float64:
        # How far float32 itself is from the exact values: the floor under any agreement figure.
        exact = np.concatenate(naive(model.to(torch.float64), tokenized))
        for name, values in (("naive", naive_values), ("prefkit", ours_values)):
            error = np.abs(values - exact)
            console.print(f"{name} - float64 computation: largest {error.max():.2e}, mean {error.mean():.2e}")


if __name__ == "__main__":
    main()
