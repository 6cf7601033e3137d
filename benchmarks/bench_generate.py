"""prefkit generate against the loop a user writes today, on the bundled model and the sample's prompts.

    python benchmarks/bench_generate.py [--prompts 32] [--n 4] [--max-new-tokens 32] [--runs 3]

The loop: for each prompt, ``apply_chat_template`` and one ``model.generate`` call with
``num_return_sequences=N``. prefkit: :func:`prefkit.lm.generate.generate` (prompts sorted by
length, ``batch_size`` prompts left-padded into one ``generate`` call, each answered N times). Same
model, prompts, N and ``max_new_tokens``; each side in its own process (its own wall time and
memory), ``--runs`` times, alternating. Two modes: greedy (N = 1; the two sides' answers are
compared, and any that differ are listed: padding can move float rounding) and sampled
(temperature 0.8, N = ``--n``). Prints completions/s of each side, the ratio, the date and versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from harness import header, run_script, spread
from rich.console import Console
from rich.table import Table

LOOP = """
import json, sys, time, torch
from prefkit.lm.loading import load_causal_lm, load_tokenizer
prompts_file, out, n, temperature, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
prompts = [json.loads(line)["prompt"] for line in open(prompts_file)]
model, tokenizer = load_causal_lm("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")
started = time.perf_counter()
answers = []
for prompt in prompts:
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    torch.manual_seed(0)
    options = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=tokens, num_return_sequences=n, **options)
    answers.append([tokenizer.decode(row[inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip() for row in output])
seconds = time.perf_counter() - started
json.dump(answers, open(out, "w"))
print(seconds, len(prompts) * n)
"""

PREFKIT = """
import json, sys, time
from prefkit.lm.generate import GenerateConfig, generate, load_generator
prompts_file, out, n, temperature, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
config = GenerateConfig(sources=[prompts_file], output=out + ".jsonl", model="smollm2-135m-instruct", n=n,
                        temperature=temperature, max_new_tokens=tokens)
load_generator(config)  # the loop's model load is outside its timer too; this warms the same files
started = time.perf_counter()
result = generate(config)
seconds = time.perf_counter() - started
json.dump([[c["text"] for c in r["completions"]] for r in result.records], open(out, "w"))
print(seconds, result.completions)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    console = Console(width=140)
    console.print(header(("prefkit", "torch", "transformers")))
    from prefkit.data.sample_data import sample_pairs

    folder = Path(tempfile.mkdtemp())
    prompts = folder / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p.prompt}) + "\n" for p in sample_pairs(args.prompts, seed=1)))
    table = Table(
        title=f"{args.prompts} sample prompts, at most {args.max_new_tokens} new tokens", title_justify="left"
    )
    for column in ("mode", "loop completions/s", "prefkit completions/s", "ratio", "answers that differ"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, n, temperature in (("greedy", 1, 0.0), (f"sampled, n={args.n}, T=0.8", args.n, 0.8)):
        rates: dict[str, list[float]] = {"loop": [], "prefkit": []}
        differ = []
        for run in range(args.runs):
            outputs = {}
            for side, script in (("loop", LOOP), ("prefkit", PREFKIT)):
                out = folder / f"{side}-{run}.json"
                measured = run_script(
                    script, str(prompts), str(out), str(n), str(temperature), str(args.max_new_tokens)
                )
                rates[side].append(measured["rows"] / measured["work"])
                outputs[side] = json.loads(out.read_text())
                (folder / f"{side}-{run}.json.jsonl").unlink(missing_ok=True)
            if n == 1:
                differ = [
                    (i, a[0], b[0])
                    for i, (a, b) in enumerate(zip(outputs["loop"], outputs["prefkit"], strict=True))
                    if a != b
                ]
            print(
                f"{mode} run {run + 1}: loop {rates['loop'][-1]:.2f}/s, prefkit {rates['prefkit'][-1]:.2f}/s",
                file=sys.stderr,
            )
        ratios = [p / q for p, q in zip(rates["prefkit"], rates["loop"], strict=True)]
        shown = f"{len(differ)} of {args.prompts}" if n == 1 else "(sampled: not compared)"
        table.add_row(
            mode, spread(rates["loop"], "{:.2f}"), spread(rates["prefkit"], "{:.2f}"), spread(ratios, "{:.1f}x"), shown
        )
        for i, a, b in differ:
            console.print(f"greedy answer {i} differs:\n  loop:    {a!r}\n  prefkit: {b!r}")
    console.print(table)


if __name__ == "__main__":
    main()
