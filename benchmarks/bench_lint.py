"""prefkit lint against TRL's own tokenization of the same pairs, on an HH-RLHF-sized input.

    python benchmarks/bench_lint.py [--copies 70] [--runs 3] [--data ../shared/data]

Builds about 160k pairs at run time as ``bench_convert.py`` does (the real HH-RLHF rows, each copy
with a unique change) and converts them with prefkit. Then, each in its own process so wall time
and peak memory are its own, with the bundled model's tokenizer and ``max_length`` 1024 (TRL's
default):

- TRL: ``datasets.load_dataset("json")`` and the dataset preparation ``DPOTrainer`` runs
  (``DPOTrainer._prepare_dataset``: chat template, tokenization, the fully-truncated filter), a
  fresh datasets cache each run;
- prefkit: ``prefkit lint``'s library call (reads and validates the file, tokenizes, audits every
  pair, statistics; it keeps each pair's lengths and verdict, not its ids).

TRL writes the token ids of every 100th pair it keeps, prefkit the indices of the pairs it keeps
among those; this script tokenizes those with prefkit's tokenization and checks the ids are identical. Prints the
range over the runs, the ratio, the date and the library versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_convert import build_input
from harness import ROOT, header, run_script, spread

EVERY = 100

TRL = """
import json, sys, time, types
t0 = time.perf_counter()
import datasets
from trl import DPOConfig, DPOTrainer
from prefkit.lm.loading import load_tokenizer
tokenizer = load_tokenizer("smollm2-135m-instruct")
t1 = time.perf_counter()
ds = datasets.load_dataset("json", data_files=sys.argv[1], split="train", cache_dir=sys.argv[3])
ds = ds.select_columns(["prompt", "chosen", "rejected"]).add_column("idx", list(range(len(ds))))
args = DPOConfig(output_dir=sys.argv[3], max_length=1024, bf16=False, report_to=[])
out = DPOTrainer._prepare_dataset(types.SimpleNamespace(_tokenizer=tokenizer), ds, tokenizer, args, "train")
work = time.perf_counter() - t1
sample = {str(r["idx"]): [r["prompt_ids"], r["chosen_ids"], r["rejected_ids"]] for r in out if r["idx"] % EVERY == 0}
json.dump(sample, open(sys.argv[2], "w"))
print(work, len(ds))
""".replace("EVERY", str(EVERY))

PREFKIT = """
import json, sys, time
from prefkit.lm.lint import LintConfig, lint
from prefkit.lm.loading import load_tokenizer
load_tokenizer("smollm2-135m-instruct")  # materialized and loaded outside the timing, as for TRL
t1 = time.perf_counter()
result = lint(LintConfig([sys.argv[1]], max_length=1024)).audit
work = time.perf_counter() - t1
# lint keeps verdicts and lengths, not ids: the bench process tokenizes the sampled kept pairs with
# the same function afterwards, outside this process's time and memory.
sample = [i for i in result.kept if i % EVERY == 0]
json.dump(sample, open(sys.argv[2], "w"))
print(work, result.pairs)
""".replace("EVERY", str(EVERY))


def sampled_ids(source: Path, kept: list[int]) -> dict[str, list]:
    """The token ids of the pairs lint kept at the sampled indices, from prefkit's tokenization."""
    import polars as pl

    from prefkit.lm.loading import load_tokenizer
    from prefkit.lm.pair_tokens import tokenize_pairs

    rows = pl.read_ndjson(source).select("prompt", "chosen", "rejected")[kept]
    t = tokenize_pairs(load_tokenizer("smollm2-135m-instruct"), *(rows[c].to_list() for c in rows.columns))
    return {str(i): [t.prompt_ids[k], t.chosen_ids[k], t.rejected_ids[k]] for k, i in enumerate(kept)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=70, help="copies of the 2,312 real rows (70 gives 161,840 pairs)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    print(header(("prefkit", "trl", "transformers", "tokenizers", "datasets", "polars")))
    with tempfile.TemporaryDirectory(prefix="prefkit-bench-lint-") as tmp:
        tmp = Path(tmp)
        raw = tmp / "hh-sized.raw.jsonl"
        build_input(args.data, args.copies, raw)
        from prefkit.data.convert import ConvertConfig, convert

        source = tmp / "hh-sized.jsonl"
        n = convert(ConvertConfig(sources=[str(raw)], output=str(source))).written
        print(f"input: {n:,} canonical pairs ({source.stat().st_size / 2**20:,.0f} MiB)")
        results = {"trl": [], "prefkit": []}
        for k in range(args.runs):
            trl = run_script(TRL, str(source), str(tmp / f"trl-{k}.json"), str(tmp / f"hf-cache-{k}"))
            ours = run_script(PREFKIT, str(source), str(tmp / f"prefkit-{k}.json"))
            results["trl"].append(trl)
            results["prefkit"].append(ours)
        # The ids are checked after every measured run: reading the file here grows this process, and a
        # child forked from it afterwards reports that size as its own peak (Linux keeps ru_maxrss
        # across fork and exec), which made the second run's two peaks equal this process's.
        for k, (trl, ours) in enumerate(zip(results["trl"], results["prefkit"], strict=True)):
            theirs = json.loads((tmp / f"trl-{k}.json").read_text())
            mine = sampled_ids(source, json.loads((tmp / f"prefkit-{k}.json").read_text()))
            same = sum(theirs[i] == mine.get(i) for i in theirs)
            print(
                f"run {k + 1}: TRL {trl['work']:.1f} s ({n / trl['work']:,.0f} pairs/s, {trl['rss_mib']:,.0f} MiB), "
                f"prefkit {ours['work']:.1f} s ({n / ours['work']:,.0f} pairs/s, {ours['rss_mib']:,.0f} MiB), "
                f"ratio {trl['work'] / ours['work']:.1f}x; ids identical on {same:,} of {len(theirs):,} sampled pairs"
            )
    ratios = [t["work"] / p["work"] for t, p in zip(results["trl"], results["prefkit"], strict=True)]
    trl_rate = spread([n / r["work"] for r in results["trl"]], "{:,.0f}")
    our_rate = spread([n / r["work"] for r in results["prefkit"]], "{:,.0f}")
    print(f"TRL {trl_rate} pairs/s, prefkit lint {our_rate} pairs/s: {spread(ratios)}x over {args.runs} runs")


if __name__ == "__main__":
    main()
