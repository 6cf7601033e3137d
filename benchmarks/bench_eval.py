"""prefkit eval's scoring against the naive loop, on the bundled model and the sample's held-out pairs.

    python benchmarks/bench_eval.py [--pairs 120] [--batch-size 8]

Naive: two unbatched forward passes per pair (prompt + chosen, prompt + rejected), summing
``log_softmax`` over the reply tokens. prefkit: ``reply_logps``, each pair tokenized once and
``batch-size`` pairs per padded forward pass. Both score the same tokenization; the script checks
the numbers agree to 1e-4 and prints pairs/s and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from prefkit.bundled_model import materialize
from prefkit.evaluate import reply_logps, tokenize_pair
from prefkit.sample_data import generate


def naive(model, tokenized) -> tuple[np.ndarray, np.ndarray]:
    chosen, rejected = [], []
    with torch.no_grad():
        for prompt_ids, chosen_ids, rejected_ids in tokenized:
            for reply, out in ((chosen_ids, chosen), (rejected_ids, rejected)):
                ids = torch.tensor([prompt_ids + reply])
                logps = torch.log_softmax(model(ids).logits[0].float(), -1)
                positions = torch.arange(len(prompt_ids), ids.shape[1])
                out.append(logps[positions - 1, ids[0, positions]].sum().item())
    return np.array(chosen), np.array(rejected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = materialize()
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with tempfile.TemporaryDirectory():
        pairs = generate(args.pairs, seed=1)
    tokenized = [
        tokenize_pair(
            tokenizer,
            [{"role": "user", "content": p.prompt}],
            [{"role": "assistant", "content": p.chosen}],
            [{"role": "assistant", "content": p.rejected}],
        )
        for p in pairs
    ]
    start = time.perf_counter()
    base_chosen, base_rejected = naive(model, tokenized)
    base = time.perf_counter() - start
    start = time.perf_counter()
    ours = reply_logps(model, tokenized, batch_size=args.batch_size)
    took = time.perf_counter() - start
    diff = max(np.abs(ours.chosen - base_chosen).max(), np.abs(ours.rejected - base_rejected).max())
    console = Console(width=120)
    console.print(f"model {Path(folder).name}, {args.pairs} pairs, {torch.get_num_threads()} threads")
    console.print(f"naive loop (2 unbatched passes per pair): {base:.1f} s, {args.pairs / base:.1f} pairs/s")
    console.print(f"prefkit reply_logps (batch {args.batch_size}): {took:.1f} s, {args.pairs / took:.1f} pairs/s")
    console.print(
        f"ratio {base / took:.2f}x; largest difference {diff:.2e} ({'equal to 1e-4' if diff < 1e-4 else 'NOT equal'})"
    )


if __name__ == "__main__":
    main()
