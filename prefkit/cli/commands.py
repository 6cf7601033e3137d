"""The ``prefkit`` command line: parse options, call one library function, print with rich.

Exit codes: 0 success; 1 data failed (``validate`` found failures, ``convert --strict`` rejected
records); 2 usage error (one line on stderr, nothing written).
"""

from __future__ import annotations

import sys
from functools import wraps
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from prefkit import __version__
from prefkit.config import field_help as help_from
from prefkit.data.adapters import BY_NAME
from prefkit.data.adapters.ultrafeedback import BINARIZE
from prefkit.data.convert import ConvertConfig
from prefkit.data.dedupe import DedupeConfig
from prefkit.data.mix import MixConfig
from prefkit.data.schema import STYLES
from prefkit.errors import PrefkitError, UsageError
from prefkit.lm.evaluate import CompareConfig, EvalConfig

console = Console()
err_console = Console(stderr=True)


def handle_errors(func):
    """Maps typed library errors to exit codes: usage errors exit 2 with one clear line."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UsageError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except PrefkitError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prefkit")
def main() -> None:
    """Prepare preference data and run DPO: convert, validate, mix, train, eval."""


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help=help_from(ConvertConfig, "output"))
@click.option(
    "--format", "format_", type=click.Choice(sorted(BY_NAME)), default=None, help=help_from(ConvertConfig, "format")
)
@click.option("--field", "fields", multiple=True, metavar="KEY=PATH", help=help_from(ConvertConfig, "fields"))
@click.option(
    "--style",
    type=click.Choice(STYLES),
    default="conversational",
    show_default=True,
    help=help_from(ConvertConfig, "style"),
)
@click.option("--rejects", default=None, help=help_from(ConvertConfig, "rejects"))
@click.option("--report", default=None, help=help_from(ConvertConfig, "report"))
@click.option("--keep-ties", is_flag=True, help=help_from(ConvertConfig, "keep_ties"))
@click.option(
    "--binarize",
    type=click.Choice(BINARIZE),
    default="random-lower",
    show_default=True,
    help=help_from(ConvertConfig, "binarize"),
)
@click.option("--seed", type=int, default=0, show_default=True, help=help_from(ConvertConfig, "seed"))
@click.option("--strict", is_flag=True, help=help_from(ConvertConfig, "strict"))
@handle_errors
def convert(sources, output, format_, fields, style, rejects, report, keep_ties, binarize, seed, strict):
    """Normalize preference data into the canonical prompt/chosen/rejected schema."""
    from prefkit.data.convert import convert as run_convert

    config = ConvertConfig(
        sources=list(sources),
        output=output,
        format=format_,
        fields=list(fields),
        style=style,
        rejects=rejects,
        report=report,
        keep_ties=keep_ties,
        binarize=binarize,
        seed=seed,
        strict=strict,
    )
    with _progress() as progress:
        task = progress.add_task("converting", total=None)

        def on_progress(description: str, done: int, total: int) -> None:
            progress.update(task, description=description, completed=done, total=total)

        result = run_convert(config, progress=on_progress)

    table = Table(title="prefkit convert", title_justify="left")
    for column in ("source", "format", "read", "written", "rejected", "reasons"):
        table.add_column(column, justify="right" if column in ("read", "written", "rejected") else "left")
    for s in result.sources:
        reasons = "\n".join(f"{k} {v:,}" for k, v in sorted(s.reasons.items(), key=lambda kv: -kv[1]))
        table.add_row(Path(s.source).name, s.format, f"{s.read:,}", f"{s.written:,}", f"{s.rejected:,}", reasons or "-")
    if len(result.sources) > 1:
        table.add_row("[bold]total", "", f"{result.read:,}", f"{result.written:,}", f"{result.rejected:,}", "")
    console.print(table)
    console.print(f"wrote {result.output} ({result.style}), rejects {result.rejects}, report {result.report}")
    if strict and result.rejected:
        err_console.print(f"[bold red]strict:[/] {result.rejected:,} records rejected")
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--report", default=None, help="Write every failure as JSON to this path.")
@handle_errors
def validate(files, report):
    """Check that files conform to the canonical schema (exit 1 listing every failure)."""
    from prefkit.data.validate import validate_files
    from prefkit.data.writers import write_json

    results = validate_files(list(files))
    for result in results:
        if result.ok:
            console.print(f"[green]ok[/] {result.path}: {result.rows:,} rows, {result.style} style")
            continue
        table = Table(title=f"{result.path}: {result.rows:,} rows, {result.style} style", title_justify="left")
        for column in ("check", "column", "rows", "examples"):
            table.add_column(column)
        for f in result.failures:
            table.add_row(f.description, f.column, f"{f.rows:,}", _examples(f.examples))
        console.print(table)
    if report:
        write_json([r.to_dict() for r in results], Path(report))
    failed = [r for r in results if not r.ok]
    if failed:
        err_console.print(f"[bold red]{len(failed)} of {len(results)} files failed validation")
        sys.exit(1)


def _counts(counts: dict[str, int]) -> str:
    """``{"exact": 3, "near": 1200}`` gives ``"exact 3, near 1,200"``."""
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _parse_weights(text: str | None, n: int) -> list[float | None]:
    if text is None:
        return [None] * n
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError as err:
        raise UsageError(f"--weights {text}: expected comma-separated numbers, e.g. 0.7,0.3") from err
    if len(weights) != n:
        raise UsageError(f"--weights: {len(weights)} weights for {n} sources")
    return weights


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="RECIPE.yaml | SOURCE...")
@click.option("-o", "--output", "out_dir", required=True, help="Output directory (train, test, manifest, card).")
@click.option("--weights", default=None, help="Quick form: one weight per source, e.g. 0.7,0.3 (sum 1).")
@click.option("--total", type=click.IntRange(min=1), default=None, help=help_from(MixConfig, "total"))
@click.option("--seed", type=int, default=None, help="Seed (overrides the recipe's).")
@click.option(
    "--test-size", type=click.FloatRange(0, 1, max_open=True), default=None, help=help_from(MixConfig, "test_size")
)
@click.option("--near", is_flag=True, help="Quick form: also remove near-duplicate prompts.")
@click.option(
    "--decontaminate", "eval_files", multiple=True, help="Quick form: evaluation file to keep out (repeatable)."
)
@click.option("--parquet", is_flag=True, help=help_from(MixConfig, "parquet"))
@click.option("--style", type=click.Choice(STYLES), default=None, help=help_from(MixConfig, "style"))
@handle_errors
def mix(inputs, out_dir, weights, total, seed, test_size, near, eval_files, parquet, style):
    """Mix sources by weight, dedupe, decontaminate and split into train/test with lineage."""
    from prefkit.data.dedupe import DecontaminateConfig, DedupeConfig
    from prefkit.data.mix import MixSource, load_recipe
    from prefkit.data.mix import mix as run_mix

    quick = {
        "--weights": weights,
        "--total": total,
        "--test-size": test_size,
        "--near": near or None,
        "--decontaminate": eval_files or None,
        "--parquet": parquet or None,
        "--style": style,
    }
    if len(inputs) == 1 and inputs[0].endswith((".yaml", ".yml")):
        given = [flag for flag, value in quick.items() if value is not None]
        if given:
            raise UsageError(f"{given[0]}: set it in the recipe {inputs[0]}, not as a flag")
        config = load_recipe(inputs[0])
        if seed is not None:
            config.seed = seed
    else:
        sources = [
            MixSource(path=p, weight=w) for p, w in zip(inputs, _parse_weights(weights, len(inputs)), strict=True)
        ]
        config = MixConfig(
            sources=sources,
            total=total,
            seed=seed or 0,
            test_size=0.1 if test_size is None else test_size,
            dedupe=DedupeConfig(near=near),
            decontaminate=DecontaminateConfig(files=list(eval_files)),
            parquet=parquet,
            style=style or "conversational",
        )
    result = run_mix(config, out_dir)
    table = Table(title=f"prefkit mix -> {result.out_dir}", title_justify="left")
    columns = ("read", "rejected", "deduped", "decontaminated", "not_sampled", "repeated", "kept")
    table.add_column("source")
    for column in columns:
        table.add_column(column, justify="right")
    for c in result.sources:
        table.add_row(Path(c.source).name, *(f"{getattr(c, k):,}" for k in columns))
    console.print(table)
    console.print(f"train {result.train:,}, test {result.test:,}; removed: {_counts(result.removed)}")
    console.print(f"wrote {', '.join(result.files.values())}")


@main.command()
@click.argument("source")
@click.option("-o", "--output", required=True, help="Deduplicated output (.jsonl or .parquet).")
@click.option("--exact/--no-exact", default=True, show_default=True, help=help_from(DedupeConfig, "exact"))
@click.option(
    "--prompt-k", type=click.IntRange(min=1), default=None, help="Keep at most K pairs per normalized prompt."
)
@click.option("--near", is_flag=True, help=help_from(DedupeConfig, "near"))
@click.option(
    "--near-threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.7,
    show_default=True,
    help=help_from(DedupeConfig, "near_threshold"),
)
@click.option(
    "--near-fields",
    type=click.Choice(["prompt", "pair"]),
    default="prompt",
    show_default=True,
    help=help_from(DedupeConfig, "near_fields"),
)
@click.option(
    "--ngram", type=click.IntRange(min=1), default=2, show_default=True, help=help_from(DedupeConfig, "ngram")
)
@click.option(
    "--num-perm", type=click.IntRange(min=16), default=128, show_default=True, help=help_from(DedupeConfig, "num_perm")
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for seeded choices.")
@handle_errors
def dedupe(source, output, exact, prompt_k, near, near_threshold, near_fields, ngram, num_perm, seed):
    """Remove exact, per-prompt and near duplicates from one file."""
    from prefkit.data.mix import dedupe_file

    config = DedupeConfig(
        exact=exact,
        prompt=prompt_k is not None,
        prompt_k=prompt_k or 1,
        near=near,
        near_threshold=near_threshold,
        near_fields=near_fields,
        ngram=ngram,
        num_perm=num_perm,
    )
    result = dedupe_file(source, output, config, seed=seed)
    console.print(
        f"read {result.read:,}, rejected {result.rejected:,}, removed: {_counts(result.removed)}, wrote {result.written:,}"
    )
    console.print(f"wrote {result.output}, removals {result.removed_file}")


@main.command()
@click.argument("file")
@click.option("-o", "--output", required=True, help="Card path (README.md); lengths.png goes beside it.")
@handle_errors
def card(file, output):
    """Write a Hugging Face style dataset card for a canonical file."""
    from prefkit.data.card import card_for_file

    console.print(f"wrote {card_for_file(file, output)}")


@main.command()
@click.argument("recipe")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe key, e.g. --set beta=0.2 --set lora.r=8.",
)
@click.option(
    "--resume", default=None, metavar="auto|PATH", help="Continue from the last checkpoint (auto) or a given one."
)
@handle_errors
def train(recipe, overrides, resume):
    """Train with DPO (TRL + LoRA) from a YAML recipe."""
    from transformers import TrainerCallback

    from prefkit.lm.train import load_train_recipe
    from prefkit.lm.train import train as run_train

    config = load_train_recipe(recipe, list(overrides))
    config.dpo.setdefault("disable_tqdm", True)  # rich shows progress instead

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("training", total=None)

        class RichProgress(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    progress.update(task, description=f"training  loss {logs['loss']:.3f}")

            def on_step_end(self, args, state, control, **kwargs):
                progress.update(task, completed=state.global_step, total=state.max_steps)

        result = run_train(config, resume=resume, callbacks=[RichProgress()])
    table = Table(title=f"prefkit train -> {result.output_dir} ({result.steps} steps)", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(result.metrics.items()):
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


@main.command(name="eval")
@click.option("--model", required=True, help=help_from(EvalConfig, "model"))
@click.option("--data", required=True, help=help_from(EvalConfig, "data"))
@click.option("--ref", default=None, help=help_from(EvalConfig, "ref"))
@click.option(
    "--beta",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=help_from(EvalConfig, "beta"),
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help=help_from(EvalConfig, "batch_size")
)
@click.option(
    "--max-length",
    type=click.IntRange(min=8),
    default=1024,
    show_default=True,
    help=help_from(EvalConfig, "max_length"),
)
@click.option("--report", default=None, help="Write the metrics as JSON to this path.")
@click.option("--per-pair", default=None, help="Write every pair's four log-probs as JSON Lines to this path.")
@click.option("--trust-remote-code", is_flag=True, help=help_from(EvalConfig, "trust_remote_code"))
@handle_errors
def evaluate_command(model, data, ref, beta, batch_size, max_length, report, per_pair, trust_remote_code):
    """Preference accuracy of a model on held-out pairs, with bootstrap 95% intervals."""
    import dataclasses
    import json

    from prefkit.data.writers import line_sink, write_json
    from prefkit.lm.evaluate import evaluate, per_pair_records

    config = EvalConfig(model, data, ref, beta, batch_size, max_length, trust_remote_code=trust_remote_code)
    result = evaluate(config)
    m = result.metrics
    title = f"prefkit eval: {m.pairs:,} pairs, reference: {result.reference_kind}"
    table = Table(title=title + (f", beta {m.beta:g}" if m.beta else ""), title_justify="left")
    columns = ["metric", "value", "95% CI"]
    if m.reference_logprob_accuracy is not None:
        columns += ["reference", "95% CI "]
    for column in columns:
        table.add_column(column, justify="left" if column == "metric" else "right", no_wrap=True)

    def cells(estimate) -> list[str]:
        return [f"{estimate.value:.3f}", f"{estimate.low:.3f}–{estimate.high:.3f}"] if estimate else ["", ""]

    rows = [
        ("implicit-reward accuracy", m.implicit_reward_accuracy, None),
        ("mean reward margin", m.reward_margin, None),
        ("log-prob accuracy", m.logprob_accuracy, m.reference_logprob_accuracy),
        ("log-prob accuracy per token", m.logprob_accuracy_per_token, m.reference_logprob_accuracy_per_token),
    ]
    for name, estimate, before in rows:
        if estimate is not None:
            table.add_row(name, *cells(estimate), *(cells(before) if len(columns) > 3 else []))
    console.print(table)
    for note in m.notes:
        console.print(f"note: {note}")
    if report:
        write_json(
            dataclasses.asdict(m) | {"model": model, "data": data, "reference": result.reference_kind}, Path(report)
        )
    if per_pair:
        with line_sink(Path(per_pair)) as write:
            write(json.dumps(r) for r in per_pair_records(result))


@main.command()
@click.option("--model", required=True, help=help_from(CompareConfig, "model"))
@click.option("--ref", default=None, help=help_from(CompareConfig, "ref"))
@click.option(
    "--prompts", "prompts_file", default=None, help="File of prompts: .txt (one per line) or a preference file."
)
@click.option("--prompt", "prompt_texts", multiple=True, help="A prompt (repeatable).")
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help=help_from(CompareConfig, "max_new_tokens"),
)
@click.option("--sample", is_flag=True, help=help_from(CompareConfig, "sample"))
@click.option(
    "--temperature",
    type=click.FloatRange(min=0, min_open=True),
    default=0.7,
    show_default=True,
    help=help_from(CompareConfig, "temperature"),
)
@click.option("--seed", type=int, default=0, show_default=True, help=help_from(CompareConfig, "seed"))
@handle_errors
def compare(model, ref, prompts_file, prompt_texts, max_new_tokens, sample, temperature, seed):
    """Side-by-side answers of the base and the trained model."""
    from prefkit.lm.evaluate import compare as run_compare
    from prefkit.lm.evaluate import read_prompts

    if bool(prompts_file) == bool(prompt_texts):
        raise UsageError("give --prompts FILE or --prompt TEXT (one of the two)")
    prompts = read_prompts(prompts_file) if prompts_file else list(prompt_texts)
    config = CompareConfig(model, prompts, ref, max_new_tokens, sample, temperature, seed)
    table = Table(title=f"prefkit compare: {model}", title_justify="left", show_lines=True)
    for column in ("prompt", "base", "trained"):
        table.add_column(column, ratio=1)
    for row in run_compare(config):
        table.add_row(row["prompt"], row["base"], row["trained"])
    console.print(table)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--train", "n_train", type=click.IntRange(min=1), default=480, show_default=True, help="Training pairs.")
@click.option(
    "--heldout", "n_heldout", type=click.IntRange(min=1), default=120, show_default=True, help="Held-out pairs."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generator.")
@handle_errors
def sample(directory, n_train, n_heldout, seed):
    """Write prefkit's bundled verifiable sample data (raw HH and custom layouts) into DIRECTORY."""
    from prefkit.data.sample_data import write_sample

    paths = write_sample(Path(directory), n_train=n_train, n_heldout=n_heldout, seed=seed)
    for name, path in paths.items():
        console.print(f"wrote {name}: {path}")


def _examples(examples: list[dict]) -> str:
    """Row failures show their line numbers; schema-level failures show the offending value."""
    lines = [str(e["line"]) for e in examples if e["line"] is not None]
    if lines:
        return "line " + ", ".join(lines)
    return "; ".join(str(e["value"])[:60] for e in examples)


if __name__ == "__main__":
    main()
