"""What ``prefkit audit`` finds: plant label flips in known pairs, audit, and count.

    python benchmarks/bench_audit.py [--flip 0.2] [--folds 3] [--skip-sample] [--dpo] [--real 300] [--hh 300]
        [--speed-pairs 128]

1. The bundled sample (verifiable): 20% of the 480 training pairs flipped (seeded). Audited with
   the sample's verifier (a sanity check: the flagged set must be the planted set), then with a
   cross-fitted reward model of the bundled model alone (``recipes/reward-quickstart.yaml``, K
   folds by prompt, each model trained on the other folds' noisy pairs); precision and recall of
   the flagged set against the planted flips, and each fold model's pairwise accuracy on the 120
   held-out pairs (clean labels).
2. Real data (``--real N``, ``--hh N``; 0 to skip): the first N of UltraFeedback's 1,200 pairs
   and of HH-RLHF harmless-base (``../shared/data``), flips planted at 10% and 20%, the same
   cross-fitted reward model (max_length 512); precision and recall, and the fold models' pairwise
   accuracy on their held-out fold against the original labels.
3. What cleaning is worth (``--dpo``, after part 1): DPO with the quickstart recipe (the bundled
   model, 45 steps) on the noisy file, on the file cleaned by each audit (``--action drop``: the
   verifier's and the cross-fitted reward model's at ``--margin 0.1``), on the verifier's
   ``--action flip`` and on the original labels; each run's 120 held-out prompts answered greedily
   (48 tokens) and checked by the verifier, with the paired difference against the noisy run over
   prompts, and implicit-reward accuracy on the held-out pairs.
4. Speed: reward-model scoring of ``--speed-pairs`` sample pairs, prefkit (batched, longest first)
   against the loop a user writes (two forward passes per pair, unbatched), the same model; pairs/s,
   the ratio and the largest score difference (target: 3x, equal to 1e-4). Three runs.

Prints the date and versions. CPU training is deterministic, so the audit figures repeat; the
speed figures are quoted as the range of the runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl
from harness import ROOT, header, results_table, spread
from rich.console import Console


def plant(pairs: Path, out: Path, share: float, seed: int = 0) -> set[str]:
    """``pairs`` with ``share`` of them (seeded) chosen and rejected swapped; the swapped ids."""
    frame = pl.read_ndjson(pairs)
    rng = np.random.default_rng(seed)
    flipped = np.zeros(frame.height, dtype=bool)
    flipped[rng.choice(frame.height, size=round(share * frame.height), replace=False)] = True
    from prefkit.lm.audit import swap_replies

    mark = pl.Series(flipped)
    swap_replies(frame, mark).write_ndjson(out)
    return set(frame.filter(mark)["id"].to_list())


def precision_recall(flagged: set[str], planted: set[str]) -> tuple[float, float]:
    found = len(flagged & planted)
    return (found / len(flagged) if flagged else float("nan")), found / len(planted)


def table_row(
    data: str, share: float, scorer: str, result, planted: set[str], accuracy: list[float], seconds: float
) -> list[str]:
    p, r = precision_recall(set(result.flagged_ids), planted)
    held = spread(accuracy, "{:.3f}") if accuracy else ""
    return [
        data,
        f"{share:.0%}",
        scorer,
        f"{result.flagged}/{len(planted)}",
        f"{p:.3f}",
        f"{r:.3f}",
        held,
        f"{seconds:.0f}",
    ]


def margin_curve(flagged_file: Path, planted: set[str], scorer: str, margins=(0.0, 0.05, 0.1, 0.2, 0.5)) -> str:
    """Precision and recall had the audit flagged only pairs whose rejected reply the scorer puts
    ahead by more than each margin (those are a subset of the pairs flagged at margin 0, so the
    flagged file holds all of them)."""
    flagged = [json.loads(line) for line in flagged_file.read_text().splitlines()]
    gaps = {f["id"]: f["scores"][scorer]["rejected"] - f["scores"][scorer]["chosen"] for f in flagged}
    parts = []
    for margin in margins:
        kept = {i for i, gap in gaps.items() if gap > margin}
        p, r = precision_recall(kept, planted)
        parts.append(f"margin {margin:g}: {len(kept)} flagged, precision {p:.3f}, recall {r:.3f}")
    return "; ".join(parts)


def fold_accuracy(result, heldout: Path) -> list[float]:
    """Each fold model's pairwise accuracy on a held-out file none of them trained on."""
    from prefkit import api

    return [api.evaluate(f.model, heldout).metrics.pairwise_accuracy.value for f in result.folds]


def own_fold_accuracy(result, clean: Path, folds: Path) -> list[float]:
    """Each fold model's pairwise accuracy on the fold it scored, against the labels before planting."""
    from prefkit import api

    every = pl.read_ndjson(clean)
    out = []
    for f in result.folds:
        trained = pl.read_ndjson(folds / f"fold-{f.fold}.train.jsonl")["id"]
        held = folds / f"fold-{f.fold}.clean-heldout.jsonl"
        every.filter(~pl.col("id").is_in(trained.implode())).write_ndjson(held)
        out.append(api.evaluate(f.model, held, max_length=512).metrics.pairwise_accuracy.value)
    return out


def sample_part(work: Path, args, console: Console) -> list[list[str]]:
    from prefkit import api

    raw = api.sample(work / "demo")
    api.convert(raw.train, work / "train.jsonl")
    api.convert(
        raw.heldout,
        work / "heldout.jsonl",
        fields=["prompt=question", "chosen=answers.good", "rejected=answers.bad"],
    )
    planted = plant(work / "train.jsonl", work / "noisy.jsonl", args.flip)
    rows = []
    started = time.perf_counter()
    verified = api.audit(work / "noisy.jsonl", work / "verified.jsonl", ["verify:sample_task"])
    p, r = precision_recall(set(verified.flagged_ids), planted)
    rows.append(
        [
            "sample",
            f"{args.flip:.0%}",
            "verifier",
            f"{verified.flagged}/{len(planted)}",
            f"{p:.3f}",
            f"{r:.3f}",
            "",
            f"{time.perf_counter() - started:.0f}",
        ]
    )
    console.print(f"verifier: flagged set == planted set: {set(verified.flagged_ids) == planted}")
    started = time.perf_counter()
    crossed = api.audit(
        work / "noisy.jsonl",
        work / "crossed.jsonl",
        cross_fit=args.folds,
        recipe=str(ROOT / "recipes" / "reward-quickstart.yaml"),
        work_dir=str(work / "folds"),
    )
    seconds = time.perf_counter() - started
    accuracy = fold_accuracy(crossed, work / "heldout.jsonl")
    rows.append(
        table_row("sample", args.flip, f"cross-fit RM ({args.folds} folds)", crossed, planted, accuracy, seconds)
    )
    return rows


def dpo_part(work: Path, args, console: Console) -> list[list[str]]:
    """DPO on noisy, cleaned, flipped and original labels, judged by the model's own answers."""
    from prefkit import api
    from prefkit.data.verifiers import sample_task
    from prefkit.lm.answer_eval import score_change

    noisy_name = f"noisy ({args.flip:.0%} flipped)"
    files = {noisy_name: work / "noisy.jsonl", "original labels": work / "train.jsonl"}
    for name, spec, extra in (
        ("verifier", ["verify:sample_task"], {}),
        # The fold models are reused from part 1 (same recipe, same fold files).
        (
            "cross-fit RM",
            [],
            {"cross_fit": args.folds, "recipe": str(ROOT / "recipes" / "reward-quickstart.yaml"), "margin": 0.1},
        ),
    ):
        for action in ("drop", "flip") if name == "verifier" else ("drop",):
            out = work / f"{name.split()[0]}-{action}.jsonl"
            api.audit(work / "noisy.jsonl", out, spec, action=action, work_dir=str(work / "folds"), **extra)
            files[f"{name} --action {action}"] = out
    heldout = work / "heldout.jsonl"
    prompts = [json.loads(line)["prompt"][-1]["content"] for line in open(heldout, encoding="utf-8")]
    rows, correct = [], {}
    for name, data in files.items():
        run = work / "dpo" / data.stem
        started = time.perf_counter()
        api.train(api.packaged_recipe(), data=str(data), output_dir=str(run))
        result = api.evaluate(
            str(run), heldout, generate=True, scorers=["verify:sample_task"], max_new_tokens=48, progress=None
        )
        answers = [a[0].text for a in result.answers.after_answers]
        correct[name] = np.array([float(bool(sample_task(p, a))) for p, a in zip(prompts, answers, strict=True)])
        after = result.answers.scores[0].after
        ira = result.metrics.implicit_reward_accuracy
        rows.append(
            [
                name,
                f"{sum(1 for _ in open(data, encoding='utf-8'))}",
                f"{after.value:.3f} ({after.low:.3f}-{after.high:.3f})",
                "",
                f"{ira.value:.3f} ({ira.low:.3f}-{ira.high:.3f})",
                f"{time.perf_counter() - started:.0f}",
            ]
        )
    noisy = correct[noisy_name]
    for row, (name, right) in zip(rows, correct.items(), strict=True):
        if name != noisy_name:
            d = score_change("verify", noisy, right).difference
            row[3] = f"{d.value:+.3f} ({d.low:+.3f} to {d.high:+.3f})"
    columns = (
        "training file",
        "pairs",
        "held-out task accuracy",
        "minus noisy (paired)",
        "implicit-reward acc.",
        "seconds",
    )
    title = "DPO on the audited sample, judged by the model's own answers"
    console.print(results_table(title, columns, rows, left=("training file",)))
    return []


def real_part(work: Path, args, console: Console) -> list[list[str]]:
    from prefkit import api

    recipe = work / "reward-real.yaml"
    recipe.write_text(
        (ROOT / "recipes" / "reward-quickstart.yaml").read_text().replace("max_length: 128", "max_length: 512")
        + "long_prompts: drop\n"
    )
    datasets = [
        ("UltraFeedback", "uf", "ultrafeedback-binarized-preferences-argilla.jsonl.gz", args.real),
        ("HH harmless-base", "hh", "hh-rlhf-harmless-base-test.jsonl.gz", args.hh),
    ]
    rows = []
    for title, short, name, n in datasets:
        if not n:
            continue
        api.convert(args.data / name, work / f"{short}-all.jsonl")
        pl.read_ndjson(work / f"{short}-all.jsonl").head(n).write_ndjson(work / f"{short}.jsonl")
        for share in (0.1, 0.2):
            noisy = work / f"{short}-noisy-{share}.jsonl"
            planted = plant(work / f"{short}.jsonl", noisy, share)
            folds = work / f"{short}-folds-{share}"
            started = time.perf_counter()
            crossed = api.audit(
                noisy,
                work / f"{short}-crossed-{share}.jsonl",
                cross_fit=args.folds,
                recipe=str(recipe),
                work_dir=str(folds),
                max_length=512,
            )
            seconds = time.perf_counter() - started
            accuracy = own_fold_accuracy(crossed, work / f"{short}.jsonl", folds)
            curve = margin_curve(Path(crossed.flagged_file), planted, "cross_fit")
            console.print(f"{title} {share:.0%}, by --margin: {curve}")
            scorer = f"cross-fit RM ({args.folds} folds)"
            rows.append(table_row(f"{title} ({n})", share, scorer, crossed, planted, accuracy, seconds))
            console.print(" | ".join(rows[-1]), highlight=False)  # a long run's figures as they come
    return rows


def speed_part(work: Path, args, console: Console) -> list[list[str]]:
    """prefkit's batched reward scoring against two unbatched forward passes per pair."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from prefkit import api
    from prefkit.lm.loading import resolve_model
    from prefkit.lm.reward import pair_rewards

    if not (work / "train.jsonl").exists():
        api.convert(api.sample(work / "demo").train, work / "train.jsonl")
    pairs = [json.loads(line) for line in open(work / "train.jsonl", encoding="utf-8")][: args.speed_pairs]
    path = resolve_model("smollm2-135m-instruct")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.config.pad_token_id = tokenizer.pad_token_id
    loop_rates, prefkit_rates, gaps = [], [], []
    for _ in range(3):
        started = time.perf_counter()
        loop = []
        with torch.inference_mode():
            for p in pairs:
                row = []
                for side in ("chosen", "rejected"):
                    text = tokenizer.apply_chat_template(p["prompt"] + p[side], tokenize=False)
                    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
                    row.append(float(model(**inputs).logits[0, 0]))
                loop.append(row)
        loop_rates.append(len(pairs) / (time.perf_counter() - started))
        started = time.perf_counter()
        chosen, rejected = pair_rewards(model, tokenizer, pairs, batch_size=16)
        prefkit_rates.append(len(pairs) / (time.perf_counter() - started))
        loop = np.array(loop)
        gaps.append(float(max(np.abs(loop[:, 0] - chosen).max(), np.abs(loop[:, 1] - rejected).max())))
    ratios = [b / a for a, b in zip(loop_rates, prefkit_rates, strict=True)]
    console.print(
        f"reward-model scoring, {len(pairs)} sample pairs: the loop {spread(loop_rates)} pairs/s, "
        f"prefkit {spread(prefkit_rates)} pairs/s, ratio {spread(ratios)}x; largest score difference {max(gaps):.2e}"
    )
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flip", type=float, default=0.2)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--skip-sample", action="store_true")
    parser.add_argument("--dpo", action="store_true", help="DPO on noisy, cleaned, flipped and original labels")
    parser.add_argument("--real", type=int, default=0, help="UltraFeedback pairs to audit (0: skip)")
    parser.add_argument("--hh", type=int, default=0, help="HH-RLHF harmless-base pairs to audit (0: skip)")
    parser.add_argument("--speed-pairs", type=int, default=128, help="pairs to score for speed (0: skip)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-audit")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    from prefkit.cli.quiet import quiet_third_parties

    quiet_third_parties(verbose=False)
    console = Console(width=140)
    console.print(header(("prefkit", "torch", "transformers", "trl", "peft")))
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    if args.speed_pairs:
        speed_part(args.work, args, console)
    if not args.skip_sample:
        rows += sample_part(args.work, args, console)
    if args.dpo:
        dpo_part(args.work, args, console)
    if args.real or args.hh:
        rows += real_part(args.work, args, console)
    if rows:
        columns = ("data", "flipped", "scorer", "flagged/planted", "precision", "recall", "RM held-out acc.", "seconds")
        title = "planted label flips found by prefkit audit"
        console.print(results_table(title, columns, rows, left=("data", "scorer")))


if __name__ == "__main__":
    main()
