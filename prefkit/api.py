"""prefkit from Python: one function per command, each taking paths (or a config) and returning a typed result.

Every function here is what its command calls: ``prefkit convert`` parses its options, calls
:func:`convert` and renders the :class:`~prefkit.data.convert.ConvertResult`; a script calls the
same function and reads the same result. Keyword options are the fields of the command's config
dataclass, with the defaults and checks stated there once; a config built beforehand can be passed
instead of the paths. Results are dataclasses with ``to_dict()`` (what ``--json`` prints). Errors
are typed (:mod:`prefkit.errors`): a usage mistake raises :class:`~prefkit.errors.UsageError`
before anything is written, failing data :class:`~prefkit.errors.DataError`.

The model side (lint, train, evaluate, compare, quickstart) needs ``prefkit[train]`` and is
imported only when one of those functions is called, so ``import prefkit`` stays light.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefkit.data.card import CardResult
from prefkit.data.convert import ConvertConfig, ConvertResult
from prefkit.data.dedupe import DedupeConfig, DedupeResult
from prefkit.data.mix import MixConfig, MixResult
from prefkit.data.sample_data import SampleConfig, SampleResult
from prefkit.data.validate import ValidateConfig, ValidationReport
from prefkit.harmless_warnings import silenced
from prefkit.progress import ReportProgress

if TYPE_CHECKING:
    from prefkit.lm.audit import AuditResult
    from prefkit.lm.compare import CompareResult
    from prefkit.lm.evaluate import EvalResult
    from prefkit.lm.generate import GenerateResult
    from prefkit.lm.lint import LintConfig, LintResult
    from prefkit.lm.loop import LoopResult
    from prefkit.lm.loop_recipe import LoopRecipe
    from prefkit.lm.quickstart import QuickstartResult
    from prefkit.lm.score import ScoreResult
    from prefkit.lm.train import TrainConfig, TrainResult

PathLike = str | Path


def _quiet(function):
    """Runs a command's function with the known-harmless third-party warnings silenced (and only
    while it runs: :func:`prefkit.harmless_warnings.silenced`), as the CLI does."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with silenced():
            return function(*args, **kwargs)

    return wrapper


def _paths(value: PathLike | list[PathLike]) -> list[str]:
    """One path or several, as the list of strings a config holds.

    >>> _paths("a.jsonl"), _paths([Path("a.jsonl"), "b.jsonl"])
    (['a.jsonl'], ['a.jsonl', 'b.jsonl'])
    """
    return [str(p) for p in value] if isinstance(value, list | tuple) else [str(value)]


@_quiet
def convert(
    sources: PathLike | list[PathLike] | ConvertConfig,
    output: PathLike | None = None,
    progress: ReportProgress | None = None,
    **options: Any,
) -> ConvertResult:
    """Normalizes preference data into the canonical schema; every record is written or rejected with a reason.

    ``options`` are :class:`~prefkit.data.convert.ConvertConfig` fields (``format``, ``fields``,
    ``style``, ``binarize``, ``min_margin``, ``strict``, ...). Writes ``output``, its rejects file
    and its report (``NAME.rejects.jsonl`` and ``NAME.report.json`` beside it unless named).

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> raw = sample(folder)
    >>> result = convert(raw.train, folder / "train.jsonl")
    >>> result.sources[0].format, result.written, result.rejected, result.candidates == result.written + result.rejected
    ('hh-rlhf', 480, 3, True)
    >>> result.reasons
    {'empty_response': 1, 'invalid_json': 1, 'non_alternating_turns': 1}
    """
    from prefkit.data.convert import convert as run

    config = sources if isinstance(sources, ConvertConfig) else ConvertConfig(_paths(sources), _str(output), **options)
    return run(config, progress=progress)


@_quiet
def validate(
    files: PathLike | list[PathLike] | ValidateConfig,
    model: str | None = None,
    tokens: LintConfig | None = None,
    **options: Any,
) -> ValidationReport:
    """Checks files against the canonical schema (or, with ``format=``, dry-runs their conversion)
    and the CI gates; with ``model``, also audits the tokens as ``prefkit lint`` does.

    ``options`` are :class:`~prefkit.data.validate.ValidateConfig` fields (``format``,
    ``no_overlap``, ``max_duplicate_share``, ``fail_on``, ``report``, ...) and, with ``model``,
    :class:`~prefkit.lm.lint.LintConfig` fields (``max_length``, ``truncation_mode``,
    ``long_prompts``); ``tokens`` is a ready LintConfig instead. One report, computed once: ``ok``
    covers the schema, the gates and the tokens, and the report file says the same.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> raw = sample(folder)
    >>> report = validate(raw.train, format="hh-rlhf")
    >>> report.ok, report.records, report.failing
    (False, 483, 3)
    >>> _ = convert(raw.train, folder / "train.jsonl")
    >>> validate(folder / "train.jsonl").ok
    True
    """
    lint_fields = {"max_length", "truncation_mode", "long_prompts", "trust_remote_code"}
    token_options = {k: options.pop(k) for k in list(options) if k in lint_fields}
    config = files if isinstance(files, ValidateConfig) else ValidateConfig(_paths(files), **options)
    if tokens is None and model is not None:
        from prefkit.lm.lint import LintConfig

        tokens = LintConfig(files=list(config.files), model=model, **token_options)
    elif token_options:
        raise _usage(f"{', '.join(sorted(token_options))}: token settings need model=")
    check = None
    if tokens is not None:
        from dataclasses import replace

        from prefkit.lm.lint import lint as run_lint

        settings = replace(tokens, report=None, rejects=None)

        def check(paths: list[str]):
            return run_lint(replace(settings, files=paths))

    from prefkit.data.validate import validate as run

    return run(config, check_tokens=check)


@_quiet
def mix(
    sources: PathLike | list[PathLike] | MixConfig,
    output: PathLike,
    model: str | None = None,
    progress: ReportProgress | None = None,
    seed: int | None = None,
    ray: str | None = None,
    **options: Any,
) -> MixResult:
    """Mixes sources by weight, dedupes, decontaminates and splits them by prompt into ``output``
    (train, test, rejects, removed, manifest and card).

    ``sources`` is a recipe (a ``.yaml`` path), a :class:`~prefkit.data.mix.MixConfig`, or source
    paths with the quick form's options (``weights``, ``total``, ``test_size``, ``near``,
    ``decontaminate``, ...; see :meth:`~prefkit.data.mix.MixConfig.from_sources`). ``seed``
    overrides a recipe's. ``model`` counts the card's lengths in that model's tokens. ``ray`` (a
    cluster address, ``auto`` or ``local``) reads the files and signs near-duplicate batches on Ray;
    the outputs are the same as without it.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = convert(sample(folder).train, folder / "train.jsonl")
    >>> result = mix(folder / "train.jsonl", folder / "mix", test_size=0.1)
    >>> result.train + result.test, result.sources[0].kept
    (480, 480)
    >>> sorted(pathlib.Path(result.files["train"]).parent.iterdir())[0].name
    'README.md'
    """
    from prefkit.data.mix import load_mix_recipe
    from prefkit.data.mix import mix as run

    if isinstance(sources, MixConfig):
        config = sources
        if seed is not None:
            config.seed = seed
    elif isinstance(sources, str | Path) and str(sources).endswith((".yaml", ".yml")):
        if options:
            raise _usage(f"{', '.join(sorted(options))}: set it in the recipe {sources}, not as an option or flag")
        config = load_mix_recipe(sources, seed=seed)
    else:
        config = MixConfig.from_sources(_paths(sources), **options, **({"seed": seed} if seed is not None else {}))
    counter = _token_counter(model)
    return run(config, output, progress=progress, token_counter=counter, tokenizer=model, ray=ray)


@_quiet
def dedupe(source: PathLike, output: PathLike, progress: ReportProgress | None = None, **options: Any) -> DedupeResult:
    """Removes exact, per-prompt and near duplicates from one file (any format convert reads).

    ``options`` are :class:`~prefkit.data.dedupe.DedupeConfig` fields (``exact``, ``prompt``,
    ``near``, ``near_threshold``, ...) and ``seed``, ``style``.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = convert(sample(folder).train, folder / "train.jsonl")
    >>> result = dedupe(folder / "train.jsonl", folder / "dedup.jsonl", prompt=True, prompt_k=1)
    >>> result.read == result.written + sum(result.removed.values()), result.rejected
    (True, 0)
    """
    from prefkit.data.dedupe import dedupe_file

    extra = {k: options.pop(k) for k in ("seed", "style") if k in options}
    return dedupe_file(str(source), output, DedupeConfig(**options), progress=progress, **extra)


@_quiet
def card(file: PathLike, output: PathLike, model: str | None = None) -> CardResult:
    """Writes a Hugging Face style dataset card for a canonical file (``lengths.png`` beside it).

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = convert(sample(folder).train, folder / "train.jsonl")
    >>> result = card(folder / "train.jsonl", folder / "README.md")
    >>> result.kind, result.records, pathlib.Path(result.card).read_text().startswith("---")
    ('pairs', 480, True)
    """
    from prefkit.data.card import card_for_file

    return card_for_file(file, output, token_counter=_token_counter(model), tokenizer=model)


@_quiet
def sample(directory: PathLike, **options: Any) -> SampleResult:
    """Writes prefkit's verifiable sample: ``train`` in the raw HH layout (with 3 broken records) and
    ``heldout`` in a custom layout; ``options`` are :class:`~prefkit.data.sample_data.SampleConfig` fields.

    >>> import tempfile, pathlib
    >>> paths = sample(tempfile.mkdtemp(), train=10, heldout=4)
    >>> pathlib.Path(paths.train).name, pathlib.Path(paths.heldout).name, paths.train_pairs, paths.broken_lines
    ('train.hh.jsonl', 'heldout.custom.jsonl', 10, 3)
    """
    from prefkit.data.sample_data import BROKEN_HH_LINES, write_sample

    config = SampleConfig(**options)
    paths = write_sample(Path(directory), config)
    return SampleResult(str(paths["train"]), str(paths["heldout"]), config.train, config.heldout, len(BROKEN_HH_LINES))


# ---------------------------------------------------------------- model side (prefkit[train])


@_quiet
def lint(files: PathLike | list[PathLike] | LintConfig, **options: Any) -> LintResult:
    """Audits canonical files at the token level, exactly as training tokenizes and truncates them.

    ``options`` are :class:`~prefkit.lm.lint.LintConfig` fields (``model``, ``max_length``,
    ``truncation_mode``, ``long_prompts``, ``report``, ``rejects``).

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = convert(sample(folder).train, folder / "train.jsonl")
    >>> lint(folder / "train.jsonl", max_length=64).errors
    0
    >>> result = lint(folder / "train.jsonl", max_length=48)
    >>> result.errors, result.audit.reasons, result.audit.truncated.pairs
    (352, {'identical_after_truncation': 232, 'prompt_fills_max_length': 120}, 121)
    """
    from prefkit.lm.lint import LintConfig
    from prefkit.lm.lint import lint as run

    return run(files if isinstance(files, LintConfig) else LintConfig(_paths(files), **options))


def load_recipe(recipe: PathLike, overrides: list[str] = (), **keys: Any) -> TrainConfig:
    """A training recipe, checked (TRL's ``DPOConfig`` included) before any model loads.

    ``keys`` replace recipe keys (``output_dir="runs/a"``, ``beta=0.2``, ``lora={"r": 8}``;
    ``data="folder"`` is short for ``data={"train": "folder"}``); ``overrides`` are ``--set`` strings.

    >>> recipe = load_recipe(packaged_recipe(), data="demo/mix", output_dir="runs/demo", max_steps=10)
    >>> recipe.data.train, recipe.dpo["max_steps"], recipe.training_arguments().max_steps
    ('demo/mix', 10, 10)
    """
    from prefkit.lm.train import load_train_recipe

    if isinstance(keys.get("data"), str | Path):
        keys["data"] = {"train": str(keys["data"])}
    return load_train_recipe(recipe, list(overrides), keys)


def packaged_recipe() -> Path:
    """The quickstart recipe that ships with prefkit (the bundled model on the bundled sample, CPU).

    >>> packaged_recipe().name
    'quickstart.yaml'
    """
    from prefkit.lm.quickstart import packaged_recipe as path

    return path()


@_quiet
def train(
    recipe: PathLike | TrainConfig,
    resume: str | None = None,
    callbacks: list | None = None,
    progress: ReportProgress | None = None,
    overrides: list[str] = (),
    **keys: Any,
) -> TrainResult:
    """Trains with DPO (TRL + LoRA) from a recipe; ``keys`` replace recipe keys and ``overrides`` are
    ``--set`` strings, as in :func:`load_recipe`.

    Audits every pair's tokens first (``token_report.json``, ``dropped.jsonl`` in the run folder),
    then trains; ``resume`` is ``"auto"`` or a checkpoint. The example trains a tiny random model
    for one step, to show the call; the README's example trains the bundled model.

    >>> import tempfile, pathlib
    >>> from prefkit.lm.loading import tiny_random_model
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = convert(sample(folder, train=16).train, folder / "train.jsonl")
    >>> run = train(packaged_recipe(), model=str(tiny_random_model(folder / "tiny")), data=str(folder / "train.jsonl"),
    ...             output_dir=str(folder / "run"), max_steps=1, bf16=False)
    >>> run.steps, run.tokens.read, run.tokens.trained + run.tokens.dropped == run.tokens.read
    (1, 16, True)
    """
    from prefkit.lm.train import TrainConfig
    from prefkit.lm.train import train as run

    if isinstance(recipe, TrainConfig) and (overrides or keys):
        raise _usage("overrides and keys change a recipe file; a TrainConfig is already built")
    config = recipe if isinstance(recipe, TrainConfig) else load_recipe(recipe, overrides, **keys)
    return run(config, resume=resume, callbacks=callbacks, progress=progress)


@_quiet
def generate(
    sources: PathLike | list[PathLike],
    output: PathLike,
    model: str,
    progress: ReportProgress | None = None,
    **options: Any,
) -> GenerateResult:
    """The model's own answers to every prompt of ``sources`` (prompt files or preference data in any
    format), one record per prompt; ``options`` are :class:`~prefkit.lm.generate.GenerateConfig`
    fields (``n``, ``temperature``, ``top_p``, ``max_new_tokens``, ``seed``, ``engine``, ``resume``, ...).

    >>> import tempfile, pathlib
    >>> from prefkit.lm.loading import tiny_random_model
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pairs = convert(sample(folder, train=8).train, folder / "train.jsonl")
    >>> result = generate(folder / "train.jsonl", folder / "answers.jsonl", str(tiny_random_model(folder / "tiny")),
    ...                   n=2, temperature=1.0, max_new_tokens=4)
    >>> result.read, result.prompts, result.completions, result.finish_reasons
    (8, 8, 16, {'stop': 0, 'length': 16})
    """
    from prefkit.lm.generate import GenerateConfig
    from prefkit.lm.generate import generate as run

    return run(GenerateConfig(sources=_paths(sources), output=str(output), model=model, **options), progress)


@_quiet
def score(
    generated: PathLike, output: PathLike, scorers: list[str], progress: ReportProgress | None = None, **options: Any
) -> ScoreResult:
    """A score for every completion of a :func:`generate` output, by each scorer (``verify:NAME``,
    ``reward-model:DIR``, ``implicit:RUN[:REF]``); ``options`` are
    :class:`~prefkit.lm.score.ScoreConfig` fields (``rank_by``, ``batch_size``, ...). The scored file
    is a ranked source: :func:`convert` binarizes it.

    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> record = {"id": "a", "prompt": "What is 2 + 3?", "reference": "5",
    ...           "completions": [{"text": "2 + 3 = 5.", "finish_reason": "stop", "tokens": 7},
    ...                           {"text": "6", "finish_reason": "stop", "tokens": 2}]}
    >>> _ = (folder / "answers.jsonl").write_text(json.dumps(record) + "\\n")
    >>> result = score(folder / "answers.jsonl", folder / "scored.jsonl", ["verify:sample_task"])
    >>> [c["scores"] for c in result.records[0]["completions"]]
    [{'sample_task': 1.0}, {'sample_task': 0.0}]
    >>> pairs = convert(folder / "scored.jsonl", folder / "pairs.jsonl")
    >>> pairs.written, json.loads((folder / "pairs.jsonl").read_text())["chosen"][0]["content"]
    (1, '2 + 3 = 5.')
    """
    from prefkit.lm.score import ScoreConfig
    from prefkit.lm.score import score as run

    return run(ScoreConfig(generated=str(generated), output=str(output), scorers=list(scorers), **options), progress)


@_quiet
def audit(
    file: PathLike,
    output: PathLike,
    scorers: list[str] = (),
    progress: ReportProgress | None = None,
    **options: Any,
) -> AuditResult:
    """Scores both replies of every pair with every scorer and flags the pairs whose rejected reply
    ``min_agree`` of them prefer; ``options`` are :class:`~prefkit.lm.audit.AuditConfig` fields
    (``action`` flag/drop/flip, ``min_agree``, ``margin``, ``cross_fit`` with ``recipe``, ...).

    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pairs = [{"prompt": "What is 2 + 3?", "chosen": "5", "rejected": "6"},
    ...          {"prompt": "What is 4 + 4?", "chosen": "9", "rejected": "8"}]
    >>> _ = (folder / "raw.jsonl").write_text("".join(json.dumps(p) + "\\n" for p in pairs))
    >>> _ = convert(folder / "raw.jsonl", folder / "pairs.jsonl")
    >>> result = audit(folder / "pairs.jsonl", folder / "clean.jsonl", ["verify:sample_task"], action="drop")
    >>> result.pairs, result.flagged, result.written, result.dropped
    (2, 1, 1, 1)
    """
    from prefkit.lm.audit import AuditConfig
    from prefkit.lm.audit import audit as run

    return run(AuditConfig(file=str(file), output=str(output), scorers=list(scorers), **options), progress)


@_quiet
def evaluate(model: str, data: PathLike, progress: ReportProgress | None = None, **options: Any) -> EvalResult:
    """Preference accuracy of a model on canonical pairs, with bootstrap 95% intervals.

    ``model`` is an adapter folder (its reference: the base with adapters disabled), a model
    folder, a hub id or a bundled name; ``options`` are :class:`~prefkit.lm.evaluate.EvalConfig`
    fields (``ref``, ``beta``, ``by``, ``max_length``, ``report``, ``per_pair``, ...). With
    ``generate=True`` and ``scorers``, the model also answers the data's prompts before and after
    training, and the answers are scored (``result.answers``).

    >>> import tempfile, pathlib
    >>> from prefkit.lm.loading import tiny_random_model
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = convert(sample(folder, heldout=6).heldout, folder / "heldout.jsonl",
    ...             fields=["prompt=question", "chosen=answers.good", "rejected=answers.bad"])
    >>> result = evaluate(str(tiny_random_model(folder / "tiny")), folder / "heldout.jsonl")
    >>> result.metrics.pairs, result.reference_kind, 0 <= result.metrics.logprob_accuracy.value <= 1
    (6, 'none', True)
    """
    from prefkit.lm.evaluate import EvalConfig
    from prefkit.lm.evaluate import evaluate as run

    return run(EvalConfig(model=str(model), data=str(data), **options), progress)


@_quiet
def compare(model: str, prompts: list[str] = (), prompts_file: PathLike | None = None, **options: Any) -> CompareResult:
    """The base and the trained model's answers to the same prompts (given, or read from
    ``prompts_file``: a .txt of one prompt per line, or a preference file's last user turns);
    ``options`` are :class:`~prefkit.lm.compare.CompareConfig` fields (``ref``, ``max_new_tokens``, ``sample``, ...).

    >>> import tempfile
    >>> from prefkit.lm.loading import tiny_random_model
    >>> tiny = str(tiny_random_model(tempfile.mkdtemp()))
    >>> result = compare(tiny, ["What is 2 + 2?"], ref=tiny, max_new_tokens=4)
    >>> result.answers[0].prompt, result.answers[0].base == result.answers[0].trained, result.reference == tiny
    ('What is 2 + 2?', True, True)
    """
    from prefkit.lm.compare import CompareConfig, read_prompt_texts
    from prefkit.lm.compare import compare as run

    if bool(prompts_file) == bool(prompts):
        raise _usage("give prompts or a prompts file (one of the two)")
    texts = read_prompt_texts(str(prompts_file)) if prompts_file else list(prompts)
    return run(CompareConfig(model=str(model), prompts=texts, **options))


@_quiet
def quickstart(
    directory: PathLike = "prefkit-quickstart",
    train_callbacks: list | None = None,
    progress: ReportProgress | None = None,
    **options: Any,
) -> QuickstartResult:
    """The whole loop on the bundled sample: convert, validate, the model's own answers (generate,
    score, pair), lint, train, and evaluate by implicit reward and by the model's answers.

    ``options`` are :class:`~prefkit.lm.quickstart.QuickstartConfig` fields (``recipe``,
    ``prompts``, ``temperature``, ``answer_tokens``, ``max_new_tokens``). With the packaged recipe it
    takes 9½ minutes on a 2-core EPYC without bf16 (float32) and about 5 on a 2-core Xeon with
    AMX/bf16 (docs/results.md); the example runs every stage with a recipe that trains a
    tiny random model for one step.

    >>> import tempfile, pathlib
    >>> from prefkit.lm.loading import tiny_random_model
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> recipe = folder / "tiny.yaml"
    >>> _ = recipe.write_text(f"model: {tiny_random_model(folder / 'tiny')}\\nmax_steps: 1\\nbf16: false\\n")
    >>> result = quickstart(folder / "qs", recipe=str(recipe), prompts=16, answer_tokens=2, max_new_tokens=2)
    >>> list(result.seconds)
    ['sample', 'convert', 'validate', 'generate', 'score', 'pair', 'lint', 'train', 'eval']
    >>> result.generated.prompts, result.conversions["pairs"].written, result.train.steps, result.eval.answers.prompts
    (16, 16, 1, 120)
    """
    from prefkit.lm.quickstart import QuickstartConfig
    from prefkit.lm.quickstart import quickstart as run

    return run(QuickstartConfig(directory=str(directory), **options), train_callbacks, progress)


def _str(path: PathLike | None) -> str | None:
    return None if path is None else str(path)


def _usage(message: str):
    from prefkit.errors import UsageError

    return UsageError(message)


def _token_counter(model: str | None):
    """A card's token counter on ``model``'s tokenizer, or None (words) when no model is named."""
    if model is None:
        return None
    from prefkit.lm.token_audit import token_counter

    return token_counter(model)


@_quiet
def loop(
    recipe: PathLike | LoopRecipe,
    directory: PathLike,
    resume: bool = False,
    overrides: list[str] = (),
    progress: ReportProgress | None = None,
    train_callbacks: list | None = None,
) -> LoopResult:
    """Iterative on-policy DPO: round after round, the policy answers the training prompts, its
    answers are scored and paired, it trains on them, and it answers the held-out prompts.

    ``recipe`` is a train recipe with a ``loop:`` section (:mod:`prefkit.lm.loop_recipe`);
    ``overrides`` are ``--set`` strings (``loop.rounds=3``). Every round's files go into
    ``DIR/round-K/``, the lineage into ``DIR/loop.json``; ``resume`` continues a killed loop from its
    last finished stage. The example runs two rounds on a tiny random model, to show the call.

    >>> import tempfile, pathlib
    >>> from prefkit.lm.loading import tiny_random_model
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> raw = sample(folder, train=8, heldout=4)
    >>> _ = convert(raw.train, folder / "train.jsonl")
    >>> _ = convert(raw.heldout, folder / "heldout.jsonl", fields=["prompt=question", "chosen=answers.good",
    ...             "rejected=answers.bad"])
    >>> _ = (folder / "loop.yaml").write_text(
    ...     f"model: {tiny_random_model(folder / 'tiny')}\\nmax_steps: 1\\nbf16: false\\nloop:\\n"
    ...     f"  prompts: {{train: {folder / 'train.jsonl'}, heldout: {folder / 'heldout.jsonl'}}}\\n"
    ...     "  scorers: [verify:sample_task]\\n  generate: {max_new_tokens: 2}\\n  eval: {max_new_tokens: 2}\\n")
    >>> result = loop(folder / "loop.yaml", folder / "run")
    >>> [(r.round, r.counts.samples, r.counts.paired + r.counts.unpaired) for r in result.rounds]
    [(1, 8, 8), (2, 8, 8)]
    >>> result.rounds[1].policy == result.rounds[0].trained
    True
    """
    from prefkit.lm.loop import run_loop
    from prefkit.lm.loop_recipe import LoopRecipe, load_loop_recipe

    if isinstance(recipe, LoopRecipe) and overrides:
        raise _usage("overrides change a recipe file; a LoopRecipe is already built")
    config = recipe if isinstance(recipe, LoopRecipe) else load_loop_recipe(recipe, overrides)
    return run_loop(config, directory, resume=resume, progress=progress, train_callbacks=train_callbacks)
