"""The ``prefkit`` commands: parse options, call one library function, print with rich (or JSON).

Exit codes: 0 success; 1 the data failed a check (``validate``, a non-canonical input anywhere,
``convert --strict`` with rejects); 2 usage error (one line on stderr, nothing written); 70
internal error, a bug in prefkit (one line on stderr naming the command, the step and the file, and
where the traceback was written; ``prefkit -v`` prints it too).
"""

from __future__ import annotations

import os
import sys
import time
from functools import wraps

import click
from rich.markup import escape

from prefkit import __version__, api
from prefkit.cli import render
from prefkit.cli.options import given_on_command_line, json_option, only_set, option_from, options_from, set_option
from prefkit.cli.output import err_console, print_json, progress_bar
from prefkit.config import config_field
from prefkit.data.adapters.base import PAIRING_FIELDS
from prefkit.data.convert import ConvertConfig
from prefkit.data.dedupe import DedupeConfig
from prefkit.data.mix import MixConfig, MixSource
from prefkit.data.sample_data import SampleConfig
from prefkit.data.validate import FileValidation, ValidateConfig
from prefkit.errors import PrefkitError, UsageError, ValidationFailed
from prefkit.lm.audit import AuditConfig
from prefkit.lm.compare import CompareConfig
from prefkit.lm.evaluate import EvalConfig
from prefkit.lm.generate import GenerateConfig
from prefkit.lm.lint import LintConfig
from prefkit.lm.quickstart import QuickstartConfig
from prefkit.lm.score import ScoreConfig
from prefkit.lm.scorers import SERVER_SCORER_OPTIONS

TRAIN_EXTRA = ("torch", "transformers", "trl", "peft", "accelerate")


INTERNAL_ERROR = 70
"""Exit code of an unexpected exception (``EX_SOFTWARE`` in sysexits.h): a bug in prefkit, not the user's."""
INPUT_PARAMETERS = ("sources", "files", "source", "file", "inputs", "recipe", "data", "model")


def handle_errors(func):
    """Maps typed library errors to exit codes: usage errors exit 2 with one clear line, data errors 1.

    A non-canonical input shows validate's table of failing checks before its one line. Anything
    else is a bug: one line (command, step, input, the exception) and exit 70; the traceback goes to
    a file under prefkit's cache, and to the terminal with ``prefkit -v``.
    """

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as err:  # noqa: BLE001 (the last resort: no traceback reaches a user)
            if isinstance(err, PrefkitError):
                return _exit_on(err)
            _report_crash(err, kwargs)
            sys.exit(INTERNAL_ERROR)

    return wrapper


def _report_crash(err: Exception, params: dict) -> None:
    """One line for an unexpected exception; the traceback in a file (and on screen with -v)."""
    import traceback

    from prefkit.atomic_files import write_lines
    from prefkit.cli.output import last_stage
    from prefkit.lm.loading import cache_root

    context = click.get_current_context()
    command = f"prefkit {context.info_name}"
    text = "".join(traceback.format_exception(err))
    log = cache_root() / "crashes" / f"{context.info_name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        write_lines([f"{command} {' '.join(sys.argv[1:])}", text], log)
        where = f"the traceback is in {log}"
    except OSError:
        where = "the traceback could not be written; prefkit -v shows it"
    if context.find_root().params.get("verbose"):
        err_console.print(text, highlight=False, markup=False)
    inputs = [str(v) for k in INPUT_PARAMETERS for v in _as_list(params.get(k))][:3]
    step = last_stage() or (f"running on {', '.join(inputs)}" if inputs else "running")
    err_console.print(
        f"[bold red]error:[/] {escape(command)} hit an internal error while {escape(step)} "
        f"({escape(type(err).__name__)}: {escape(str(err))}); {escape(where)}. This is a bug in prefkit: please report it.",
        highlight=False,
        soft_wrap=True,
    )


def _as_list(value) -> list:
    return [] if value is None else list(value) if isinstance(value, list | tuple) else [value]


def _exit_on(err: PrefkitError) -> None:
    """A usage error exits 2 with its one line; a data error exits 1 (a non-canonical file's table first)."""
    if isinstance(err, ValidationFailed) and isinstance(err.report, FileValidation):
        render.file_validation(err.report, err_console)
    err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
    sys.exit(2 if isinstance(err, UsageError) else 1)


card_model_option = click.option(
    "--model",
    "card_model",
    default=None,
    help="Count the card's token lengths and length bias with this model's tokenizer and chat template "
    "(needs prefkit[train]); default: words and punctuation.",
)


def require_train_extra(command: str) -> None:
    """The model commands need ``prefkit[train]``; without it, one line naming the install command."""
    import importlib.util

    from prefkit.errors import ExtraMissing

    missing = [name for name in TRAIN_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise ExtraMissing(
            f"prefkit {command} needs the training extra ({', '.join(missing)} missing): pip install 'prefkit[train]'"
        )


class GroupedCommands(click.Group):
    """The group's help lists its commands once, grouped by extra in its docstring, not again in
    click's own alphabetical ``Commands:`` section."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        pass


@click.group(cls=GroupedCommands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="prefkit")
@click.option(
    "-v", "--verbose", is_flag=True, help="Show the third-party warnings, progress bars and logs prefkit hides."
)
def main(verbose: bool) -> None:
    """Prepare preference data and run DPO.

    \b
    Data (pip install prefkit):
      convert     raw or TRL preference data -> the canonical schema, rejects with reasons
      validate    schema check, dry-run convert, CI gates (overlap, duplicates)
      mix         weighted mix of sources, deduped, decontaminated, split, with lineage
      dedupe      exact, per-prompt and near-duplicate removal for one file
      card        a dataset card for a canonical file
      sample      bundled verifiable sample data
    Model (pip install 'prefkit[train]'):
      lint        token-level audit: what the template and truncation do to each pair
      generate    the model's own answers to prompts, every prompt accounted for
      score       score answers: verifiers, reward models, implicit rewards
      audit       pairs whose label the scorers agree is wrong: flagged, dropped or flipped
      train       DPO (or a reward model, or KTO) with TRL and LoRA from a YAML recipe
      eval        the model's answers scored before and after; preference accuracy
      compare     base and trained model's answers side by side
      quickstart  the whole loop on the bundled sample: data, own answers, DPO, before/after
      loop        iterative on-policy DPO, round after round, resumable, with its lineage

    \b
    Example:
      prefkit quickstart
      prefkit sample demo && prefkit convert demo/train.hh.jsonl -o demo/train.jsonl
      prefkit validate demo/train.jsonl
    """
    from prefkit.cli.quiet import quiet_third_parties

    quiet_third_parties(verbose)


# ---------------------------------------------------------------- data commands


@main.command()
@click.argument("sources", nargs=-1, required=True)
@options_from(
    ConvertConfig,
    "output",
    "format",
    "fields",
    "style",
    "to",
    "rejects",
    "report",
    "keep_ties",
    *PAIRING_FIELDS,
    "seed",
    "strict",
    "max_line_bytes",
    output={"required": True},
)
@json_option
@handle_errors
def convert(sources, as_json, **options):
    """Normalize preference data into the canonical prompt/chosen/rejected schema.

    Every record ends in the output or in the rejects file with a reason; the report has
    candidates == written + rejected per source (candidates == read, except where ranked or rated
    sources give several pairs per record or one pair per group of records).

    \b
    Example:
      prefkit convert hh-rlhf/harmless-base/train.jsonl.gz -o hh.jsonl
      prefkit convert hf:HuggingFaceH4/ultrafeedback_binarized:train_prefs -o uf.parquet
      prefkit convert mine.jsonl --field prompt=question --field chosen=answers.good \\
          --field rejected=answers.bad -o mine.jsonl
      prefkit convert nectar.jsonl --binarize all-pairs --max-pairs-per-prompt 3 -o nectar.jsonl
      prefkit convert pku.parquet --axis both -o pku.jsonl
      prefkit convert pairs.jsonl --to unpaired -o feedback.jsonl
      prefkit convert thumbs.jsonl --field prompt=q --field completion=a \\
          --field label=thumbs --to unpaired -o feedback.jsonl
    """
    from prefkit.errors import RejectsFound

    config = ConvertConfig(sources=list(sources), **only_set(options))
    failed = None
    with progress_bar("converting") as update:
        try:
            result = api.convert(config, progress=update)
        except RejectsFound as err:
            result, failed = err.report, err
    print_json(result.to_dict()) if as_json else render.converted(result)
    if failed:
        err_console.print(f"[bold red]error:[/] {escape(str(failed))}", highlight=False)
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True)
@options_from(
    ValidateConfig,
    "format",
    "fields",
    "keep_ties",
    *PAIRING_FIELDS,
    "no_overlap",
    "overlap_threshold",
    "max_duplicate_share",
    "fail_on",
    "max_line_bytes",
    "report",
)
@click.option(
    "--model",
    default=None,
    help="Also audit the tokens under this model's tokenizer and chat template, as prefkit lint does "
    "(needs prefkit[train]).",
)
@options_from(LintConfig, "max_length", "truncation_mode", "long_prompts")
@click.option(
    "--github",
    is_flag=True,
    help="GitHub Actions: print ::error annotations, append a summary to $GITHUB_STEP_SUMMARY, "
    "write ok and failing to $GITHUB_OUTPUT.",
)
@click.option(
    "--max-annotations",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="With --github: annotate at most this many failing records.",
)
@json_option
@click.pass_context
@handle_errors
def validate(ctx, files, model, github, max_annotations, as_json, **options):
    """Check files against the canonical schema, or dry-run their conversion; exit 1 on failures.

    Without --format, every failing check is listed with example lines. With --format, nothing is
    written: every record convert would reject is counted by reason with example lines. The gates
    --no-overlap and --max-duplicate-share fail the run too.

    \b
    Example:
      prefkit validate train.jsonl test.jsonl
      prefkit validate --format hh-rlhf raw/train.jsonl.gz --fail-on 0.01
      prefkit validate train.jsonl --no-overlap test.jsonl --max-duplicate-share 0.01 --json
      prefkit validate train.jsonl --model smollm2-135m-instruct --max-length 512
    """
    if model is not None:
        require_train_extra("validate --model")
    # Token settings go to the library only when given (it refuses them without --model).
    token_settings = {"max_length", "truncation_mode", "long_prompts"}
    for name in token_settings - given_on_command_line(ctx, token_settings):
        options.pop(name)
    report = api.validate(list(files), model=model, **only_set(options))
    print_json(report.to_dict()) if as_json else render.validation(report)
    if github:
        from prefkit.cli.github import annotations, write_github_files

        for line in annotations(report, max_annotations):
            click.echo(line)
        write_github_files(report, os.environ.get("GITHUB_STEP_SUMMARY"), os.environ.get("GITHUB_OUTPUT"))
    if not report.ok:
        sys.exit(1)


def _parse_weights(text: str | None, n: int) -> list[float] | None:
    """``--weights 0.7,0.3`` as numbers, one per source."""
    if text is None:
        return None
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
@options_from(MixConfig, "total", "seed", "test_size")
@option_from(DedupeConfig, "near")
@click.option(
    "--decontaminate", "eval_files", multiple=True, help="Quick form: evaluation file to keep out (repeatable)."
)
@options_from(MixConfig, "parquet", "style")
@options_from(MixSource, *PAIRING_FIELDS)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS",
    help="Read the files and sign near-duplicate batches on Ray: auto, local, or a cluster address "
    "(the output folder must be on storage every node sees). The output is the same.",
)
@card_model_option
@json_option
@click.pass_context
@handle_errors
def mix(ctx, inputs, out_dir, card_model, ray_address, as_json, **options):
    """Mix sources by weight, dedupe, decontaminate and split into train/test with lineage.

    With a recipe, only --seed may override it; without one, the sources are read as they are and
    the flags form the recipe.

    \b
    Example:
      prefkit mix recipes/mix-hh-ultrafeedback.yaml -o data/mix
      prefkit mix hh.jsonl uf.jsonl --weights 0.5,0.5 --total 10000 --near --decontaminate test.jsonl -o data/mix
    """
    given = given_on_command_line(ctx, options)
    seed = options.pop("seed") if "seed" in given else None
    weights, eval_files = options.pop("weights"), options.pop("eval_files")
    quick = {name: options[name] for name in given & set(options)}
    if weights is not None:
        quick["weights"] = _parse_weights(weights, len(inputs))
    if eval_files:
        quick["decontaminate"] = list(eval_files)
    is_recipe = len(inputs) == 1 and inputs[0].endswith((".yaml", ".yml"))
    sources = inputs[0] if is_recipe else list(inputs)
    if card_model is not None:
        require_train_extra("mix --model")
    with progress_bar("mixing") as update:
        result = api.mix(sources, out_dir, model=card_model, progress=update, seed=seed, ray=ray_address, **quick)
    print_json(result.to_dict()) if as_json else render.mixed(result)


@main.command()
@click.argument("source")
@click.option("-o", "--output", required=True, help="Deduplicated output (.jsonl or .parquet).")
@options_from(DedupeConfig, "exact", "prompt", "prompt_k", "near", "near_threshold", "near_fields", "ngram", "num_perm")
@options_from(ConvertConfig, "seed", "style")
@json_option
@handle_errors
def dedupe(source, output, seed, style, as_json, **options):
    """Remove exact, per-prompt and near duplicates from one file (any format convert reads).

    Writes the kept pairs, NAME.removed.jsonl (each removal with the pair it duplicates) and
    NAME.rejects.jsonl beside the output.

    \b
    Example:
      prefkit dedupe train.jsonl -o train.dedup.jsonl --near --near-threshold 0.8
      prefkit dedupe hh-rlhf/train.jsonl.gz -o hh.jsonl --prompt --prompt-k 2 --json
    """
    with progress_bar("deduplicating") as update:
        result = api.dedupe(source, output, progress=update, seed=seed, style=style, **options)
    print_json(result.to_dict()) if as_json else render.deduped(result)


@main.command()
@click.argument("file")
@click.option("-o", "--output", required=True, help="Card path (README.md); lengths.png goes beside it.")
@card_model_option
@handle_errors
def card(file, output, card_model):
    """Write a Hugging Face style dataset card for a canonical file.

    \b
    Example:
      prefkit card data/train.jsonl -o data/README.md
      prefkit card data/train.jsonl -o data/README.md --model smollm2-135m-instruct
    """
    if card_model is not None:
        require_train_extra("card --model")
    render.carded(api.card(file, output, model=card_model))


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@options_from(SampleConfig, "train", "heldout", "seed")
@handle_errors
def sample(directory, **options):
    """Write prefkit's bundled verifiable sample data (raw HH and custom layouts) into DIRECTORY.

    \b
    Example:
      prefkit sample demo --train 480 --heldout 120
    """
    render.sampled(api.sample(directory, **options))


# ---------------------------------------------------------------- model commands (prefkit[train])


@main.command()
@click.argument("files", nargs=-1, required=True)
@options_from(
    LintConfig, "model", "max_length", "truncation_mode", "long_prompts", "report", "rejects", "trust_remote_code"
)
@json_option
@handle_errors
def lint(files, as_json, **options):
    """Audit canonical files at the token level, exactly as training will tokenize and truncate them.

    Lists each pair training would drop or train wrongly (a prompt filling max_length, replies
    identical after truncation, a prompt the template renders differently, a doubled BOS or EOS, a
    missing end-of-turn), with token length statistics and the length bias per source. Exit 1 when
    any pair has an error.

    \b
    Example:
      prefkit lint train.jsonl --model smollm2-135m-instruct --max-length 256
      prefkit lint train.jsonl --max-length 256 --long-prompts trim_turns --rejects token_rejects.jsonl --json
    """
    require_train_extra("lint")
    result = api.lint(LintConfig(files=list(files), **only_set(options)))
    print_json(result.to_dict()) if as_json else render.linted(result)
    if result.errors:
        sys.exit(1)


@main.command()
@click.argument("recipe")
@set_option
@click.option(
    "--resume", default=None, metavar="auto|PATH", help="Continue from the last checkpoint (auto) or a given one."
)
@handle_errors
def train(recipe, overrides, resume):
    """Train with DPO (TRL + LoRA) from a YAML recipe.

    \b
    Example:
      prefkit train recipes/quickstart.yaml
      prefkit train recipes/quickstart.yaml --set beta=0.2 --set output_dir=runs/beta02
    """
    require_train_extra("train")
    from prefkit.cli.training_display import training_display

    with training_display() as (progress, show_steps):
        result = api.train(recipe, resume=resume, callbacks=[show_steps], progress=progress, overrides=list(overrides))
    render.trained(result)


@main.command(name="eval")
@options_from(
    EvalConfig,
    "model",
    "data",
    "ref",
    "beta",
    "batch_size",
    "max_length",
    "seed",
    "trust_remote_code",
    "by",
    "report",
    "per_pair",
    "generate",
    "scorers",
    "n",
    "temperature",
    "max_new_tokens",
    "answers",
    "fail_on_scorer_error",
    *SERVER_SCORER_OPTIONS,
)
@json_option
@handle_errors
def evaluate_command(as_json, **options):
    """Preference accuracy of a model on held-out pairs, with bootstrap 95% intervals.

    For an adapter the reference is its base with adapters disabled, so one run shows the model
    before and after training.

    \b
    Example:
      prefkit eval --model runs/quickstart --data demo/heldout.jsonl
      prefkit eval --model runs/quickstart --data test.jsonl --per-pair pairs.jsonl --json
      prefkit eval --model runs/quickstart --data reward-bench.jsonl --by metadata.subset
      prefkit eval --model runs/quickstart --data demo/heldout.jsonl --generate --scorer verify:sample_task
    """
    require_train_extra("eval")
    with progress_bar("evaluating") as progress:
        result = api.evaluate(progress=progress, **only_set(options))
    print_json(result.to_dict()) if as_json else render.evaluation(result)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@options_from(
    GenerateConfig,
    "output",
    "model",
    "adapter",
    "n",
    "temperature",
    "top_p",
    "max_new_tokens",
    "seed",
    "engine",
    "batch_size",
    "resume",
    "ray",
    "ray_workers",
    "rejects",
    "report",
    "trust_remote_code",
    "base_url",
    "api_key_env",
    "concurrency",
    "max_retries",
    "timeout",
    "cache",
    "no_cache",
    "price",
)
@json_option
@handle_errors
def generate(sources, as_json, **options):
    """The model's own answers to prompts: every prompt answered N times, or rejected with a reason.

    SOURCES are prompt files (prompt as text or messages, optional reference) or preference data in
    any format convert reads (its prompts, deduplicated, the chosen reply kept as reference).

    \b
    Example:
      prefkit generate demo/train.jsonl -o answers.jsonl --model smollm2-135m-instruct --n 4 --temperature 0.8
      prefkit generate prompts.jsonl -o answers.jsonl --model runs/quickstart --max-new-tokens 64
      prefkit generate prompts.jsonl -o answers.jsonl --model runs/quickstart --resume
      prefkit generate prompts.jsonl -o answers.jsonl --model org/model --engine vllm --ray auto --ray-workers 8
      prefkit generate prompts.jsonl -o answers.jsonl --engine openai --base-url http://127.0.0.1:8000 \\
          --model Qwen/Qwen2.5-7B-Instruct --n 4 --temperature 0.8 --concurrency 32 --price 0.15,0.6
    """
    if options.get("engine") != "openai":
        require_train_extra("generate")
    with progress_bar("generating") as progress:
        result = api.generate(list(sources), progress=progress, **only_set(options))
    print_json(result.to_dict()) if as_json else render.generated(result)


@main.command()
@click.argument("generated")
@options_from(
    ScoreConfig,
    "output",
    "scorers",
    "rank_by",
    "batch_size",
    "max_length",
    "rejects",
    "report",
    "trust_remote_code",
    "fail_on_scorer_error",
    *SERVER_SCORER_OPTIONS,
)
@json_option
@handle_errors
def score(generated, as_json, **options):
    """Score every completion of a generated file: verifiers, reward models, implicit rewards.

    The scored file is a ranked source: prefkit convert binarizes it (--binarize, --min-margin,
    --pair-reference).

    \b
    Example:
      prefkit score answers.jsonl -o scored.jsonl --scorer verify:sample_task
      prefkit score answers.jsonl -o scored.jsonl --scorer rm=reward-model:runs/rm --scorer verify:number --rank-by rm
      prefkit convert scored.jsonl -o pairs.jsonl --binarize best-worst --pair-reference
      prefkit score answers.jsonl -o scored.jsonl --scorer rate:gpt-4o-mini@https://api.openai.com/v1
    """
    require_train_extra("score")
    options = only_set(options)
    with progress_bar("scoring") as progress:
        result = api.score(generated, options.pop("output"), options.pop("scorers"), progress=progress, **options)
    print_json(result.to_dict()) if as_json else render.scored(result)


@main.command()
@click.argument("file")
@options_from(
    AuditConfig,
    "output",
    "scorers",
    "action",
    "min_agree",
    "margin",
    "cross_fit",
    "recipe",
    "work_dir",
    "batch_size",
    "max_length",
    "seed",
    "trust_remote_code",
    "fail_on_scorer_error",
    *SERVER_SCORER_OPTIONS,
)
@json_option
@handle_errors
def audit(file, as_json, **options):
    """Find the pairs whose label is wrong: the scorers agree the rejected reply is better.

    Every pair's two replies are scored by every --scorer (and, with --cross-fit K, by reward models
    trained on the other folds, so none judges a prompt it trained on); a pair is flagged when
    --min-agree of them prefer the rejected reply. --action drop removes flagged pairs (each
    recorded in the rejects file), flip swaps their replies, flag marks them in metadata.audit.

    \b
    Example:
      prefkit audit pairs.jsonl -o audited.jsonl --scorer verify:sample_task
      prefkit audit pairs.jsonl -o clean.jsonl --scorer reward-model:runs/rm --scorer implicit:runs/dpo --action drop
      prefkit audit pairs.jsonl -o clean.jsonl --cross-fit 3 --recipe recipes/reward-quickstart.yaml --action drop
      prefkit audit pairs.jsonl -o audited.jsonl --scorer judge:openai:Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000
    """
    require_train_extra("audit")
    options = only_set(options)
    with progress_bar("auditing") as progress:
        result = api.audit(file, options.pop("output"), options.pop("scorers", []), progress=progress, **options)
    print_json(result.to_dict()) if as_json else render.audited(result)


@main.command()
@options_from(CompareConfig, "model", "ref")
@click.option(
    "--prompts", "prompts_file", default=None, help="File of prompts: .txt (one per line) or a preference file."
)
@click.option("--prompt", "prompt_texts", multiple=True, help="A prompt (repeatable).")
@options_from(CompareConfig, "max_new_tokens", "sample", "temperature", "seed", "trust_remote_code")
@json_option
@handle_errors
def compare(prompts_file, prompt_texts, as_json, **options):
    """Side-by-side answers of the base and the trained model.

    \b
    Example:
      prefkit compare --model runs/quickstart --prompt "What is 17 + 25?"
      prefkit compare --model runs/quickstart --prompts demo/heldout.jsonl --sample --seed 1 --json
    """
    require_train_extra("compare")
    options = only_set(options)
    result = api.compare(options.pop("model"), list(prompt_texts), prompts_file=prompts_file, **options)
    print_json(result.to_dict()) if as_json else render.compared(result)


@main.command()
@click.argument("directory", required=False, default=config_field(QuickstartConfig, "directory").default)
@options_from(QuickstartConfig, "recipe", "max_new_tokens")
@handle_errors
def quickstart(directory, **options):
    """The whole loop on prefkit's bundled sample, in one command: write the sample in two raw
    layouts, convert and validate it, let the bundled model answer the training prompts, score its
    answers with the sample's verifier and pair its wrong answers against the references, lint,
    train DPO with LoRA, then judge the trained model by its own answers to held-out prompts before
    and after (beside implicit-reward accuracy).

    \b
    Example:
      prefkit quickstart
      prefkit quickstart runs/qs --recipe my-quickstart.yaml
    """
    require_train_extra("quickstart")
    from prefkit.cli.training_display import training_display

    with training_display() as (progress, show_steps):
        result = api.quickstart(directory, train_callbacks=[show_steps], progress=progress, **only_set(options))
    render.quickstart(result)


@main.command(name="loop")
@click.argument("recipe")
@click.option(
    "-o", "--output", "directory", required=True, help="The loop's folder: round-K/ folders, loop.json, rounds.png."
)
@click.option("--resume", is_flag=True, help="Continue a stopped loop from its last finished stage.")
@set_option
@json_option
@handle_errors
def loop_command(recipe, directory, resume, overrides, as_json):
    """Iterative on-policy DPO: round after round, the policy answers the training prompts, its
    answers are scored and paired, it trains on them, and it answers the held-out prompts.

    The recipe is a train recipe with a loop: section (docs/training.md). Every round's files go
    into DIR/round-K/, the lineage (which policy made which pairs) into DIR/loop.json.

    \b
    Example:
      prefkit loop recipes/loop-quickstart.yaml -o runs/loop
      prefkit loop recipes/loop-quickstart.yaml -o runs/loop --resume
      prefkit loop recipes/loop-quickstart.yaml -o runs/loop4 --set loop.rounds=4 --set 'loop.generate.n=[1,4]'
      prefkit card runs/loop/round-2/pairs.jsonl -o card.md
    """
    require_train_extra("loop")
    from prefkit.cli.training_display import loop_display

    with loop_display() as (progress, show_steps):
        result = api.loop(
            recipe, directory, resume=resume, overrides=list(overrides), progress=progress, train_callbacks=[show_steps]
        )
    print_json(result.to_dict()) if as_json else render.looped(result)


if __name__ == "__main__":
    main()
