"""prefkit generate --engine openai against the loop a user writes with the openai SDK, on one local server.

    python benchmarks/bench_serve.py [--prompts 32] [--max-new-tokens 16] [--runs 3] [--no-continuous-batching]

Starts ``transformers serve`` (``transformers[serving]``) on 127.0.0.1 with the bundled model's
folder, offline, once for the whole run. The loop: the ``openai`` SDK's client, one
``chat.completions.create`` per prompt, one at a time (what most scripts do). prefkit:
:func:`prefkit.lm.generate.generate` with ``--engine openai`` (``--concurrency`` requests in flight,
no cache), then the same run again served from its response cache. Same prompts, greedy decoding,
the same ``max_tokens``; each side in its own process, ``--runs`` times, alternating. Prints
completions/s of each side, the ratios, the date and versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from harness import ROOT, header, run_script, spread
from rich.console import Console
from rich.table import Table

LOOP = """
import json, sys, time
from openai import OpenAI
prompts_file, url, model, tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
prompts = [json.loads(line)["prompt"] for line in open(prompts_file)]
client = OpenAI(base_url=url + "/v1", api_key="not-needed")
started = time.perf_counter()
texts = []
for prompt in prompts:
    answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                            max_tokens=tokens, temperature=0.0, seed=0)
    texts.append(answer.choices[0].message.content)
print(time.perf_counter() - started, len(texts))
"""

PREFKIT = """
import sys, time
from prefkit.lm.generate import GenerateConfig, generate
prompts_file, url, model, tokens, out, concurrency, cache = sys.argv[1:8]
config = GenerateConfig(sources=[prompts_file], output=out, model=model, engine="openai", base_url=url,
                        max_new_tokens=int(tokens), concurrency=int(concurrency),
                        cache=cache if cache != "-" else None, no_cache=cache == "-")
started = time.perf_counter()
result = generate(config)
print(time.perf_counter() - started, result.completions)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-continuous-batching", action="store_true")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from prefkit.data.sample_data import sample_pairs
    from prefkit.lm.loading import materialize
    from tests.lm.serving_fixtures import start_server

    console = Console()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    prompts = work / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p.prompt}) + "\n" for p in sample_pairs(args.prompts, seed=1)))
    model_dir = materialize()
    process, url = start_server(model_dir, work / "serve.log", batching=not args.no_continuous_batching)
    try:
        rows = {"loop": [], "prefkit": [], "cached": []}
        for run in range(args.runs):
            rows["loop"].append(run_script(LOOP, str(prompts), url, str(model_dir), str(args.max_new_tokens)))
            out, cache = work / f"p{run}.jsonl", work / f"p{run}.cache.sqlite"
            common = [str(prompts), url, str(model_dir), str(args.max_new_tokens)]
            rows["prefkit"].append(run_script(PREFKIT, *common, str(out), str(args.concurrency), str(cache)))
            again = work / f"c{run}.jsonl"
            rows["cached"].append(run_script(PREFKIT, *common, str(again), str(args.concurrency), str(cache)))
            if again.read_text() != out.read_text():
                raise SystemExit("the cached rerun wrote another file than the run it read from")
    finally:
        process.terminate()
        process.wait()

    rate = {side: [r["rows"] / r["work"] for r in runs] for side, runs in rows.items()}
    batching = "off" if args.no_continuous_batching else "on (--continuous-batching)"
    console.print(header(("transformers", "openai", "httpx")))
    console.print(
        f"{args.prompts} prompts, greedy, max_tokens {args.max_new_tokens}, transformers serve with the bundled "
        f"SmolLM2-135M on 127.0.0.1, continuous batching {batching}; prefkit --concurrency {args.concurrency}; "
        f"{args.runs} runs"
    )
    table = Table(title="completions per second (range over runs)", title_justify="left")
    for column in ("side", "completions/s", "seconds", "vs the loop"):
        table.add_column(column, justify="left" if column == "side" else "right")
    names = {
        "loop": "openai SDK, one request at a time",
        "prefkit": "prefkit --engine openai",
        "cached": "prefkit, rerun from its cache",
    }
    for side, runs in rows.items():
        ratios = [a / b for a, b in zip(rate[side], rate["loop"], strict=True)]
        seconds = [r["work"] for r in runs]
        table.add_row(names[side], spread(rate[side]), spread(seconds, "{:.2f}"), spread(ratios, "{:.1f}x"))
    console.print(table)


if __name__ == "__main__":
    main()
