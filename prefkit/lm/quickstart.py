"""``prefkit quickstart``: the whole job on the bundled sample, as a new user would run it.

The steps are the commands a user would chain (each is the library function its command calls):
write the sample in two raw layouts, convert both, validate both, lint the training pairs under the
model's tokenizer, train with the packaged recipe (``prefkit/recipes/quickstart.yaml``, also at
``recipes/quickstart.yaml``), score the held-out pairs before and after, and answer two held-out
prompts with the model before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from prefkit.config import check_fields, option
from prefkit.progress import ReportProgress
from prefkit.results import Result

if TYPE_CHECKING:  # the stages load lazily: the CLI imports this module for its options alone
    from prefkit.data.convert import ConvertResult
    from prefkit.data.validate import FileValidation
    from prefkit.lm.compare import Answers
    from prefkit.lm.evaluate import EvalResult
    from prefkit.lm.lint import LintResult
    from prefkit.lm.train import TrainResult


def packaged_recipe() -> Path:
    """The quickstart recipe that ships with prefkit."""
    return Path(str(resources.files("prefkit") / "recipes" / "quickstart.yaml"))


@dataclass
class QuickstartConfig:
    """Options of ``prefkit quickstart``."""

    directory: str = option("prefkit-quickstart", "Folder for the data, the run and the report.")
    recipe: str | None = option(None, "Training recipe; default: the packaged quickstart recipe.")
    max_new_tokens: int = option(48, "Tokens per answer in the side-by-side generations.", min=1)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class QuickstartResult(Result):
    """Every stage's own result, as its command returns it, and the seconds each stage took."""

    directory: str
    conversions: dict[str, ConvertResult]
    """``train`` and ``heldout``."""
    validations: list[FileValidation]
    lint: LintResult
    train: TrainResult
    eval: EvalResult
    generations: list[Answers]
    seconds: dict[str, float]
    """Per stage, in the order they ran."""


def quickstart(
    config: QuickstartConfig,
    train_callbacks: list | None = None,
    progress: ReportProgress | None = None,
) -> QuickstartResult:
    """Runs every step; ``progress`` hears each stage's name as it starts (``(name, 0, None)``) and
    the training's own progress; ``train_callbacks`` go to :func:`prefkit.lm.train.train`. Raises on
    the first failing step."""
    import time

    from prefkit.data.convert import ConvertConfig, convert
    from prefkit.data.sample_data import write_sample
    from prefkit.data.validate import validate_files
    from prefkit.errors import ValidationFailed
    from prefkit.lm.compare import CompareConfig, compare, read_prompts
    from prefkit.lm.evaluate import EvalConfig, evaluate
    from prefkit.lm.lint import LintConfig, lint
    from prefkit.lm.train import load_train_recipe, train

    root = Path(config.directory)
    data, run = root / "data", root / "run"
    seconds: dict[str, float] = {}
    current: str | None = None
    started = time.perf_counter()

    def stage(name: str | None) -> None:
        nonlocal current, started
        now = time.perf_counter()
        if current is not None:
            seconds[current] = round(now - started, 1)
        current, started = name, now
        if name is not None and progress:
            progress(name, 0, None)

    stage("sample")
    raw = write_sample(data)
    stage("convert")
    conversions = {
        "train": convert(ConvertConfig(sources=[str(raw["train"])], output=str(data / "train.jsonl"))),
        "heldout": convert(
            ConvertConfig(
                sources=[str(raw["heldout"])],
                output=str(data / "heldout.jsonl"),
                fields=["prompt=question", "chosen=answers.good", "rejected=answers.bad"],
            )
        ),
    }
    stage("validate")
    validations = validate_files([str(data / "train.jsonl"), str(data / "heldout.jsonl")])
    for result in validations:
        if not result.ok:
            raise ValidationFailed(f"{result.path}: not canonical; run prefkit validate {result.path}", result)
    recipe = load_train_recipe(
        config.recipe or packaged_recipe(),
        [f"data.train={data / 'train.jsonl'}", f"output_dir={run}"],
    )
    stage("lint")
    arguments = recipe.training_arguments()
    audit = lint(
        LintConfig(
            files=[str(data / "train.jsonl")],
            model=recipe.model,
            max_length=arguments.max_length,
            truncation_mode=arguments.truncation_mode,
            long_prompts=recipe.long_prompts,
            report=str(root / "lint.json"),
        )
    )
    stage("train")
    trained = train(recipe, callbacks=train_callbacks, progress=progress)
    stage("eval")
    scored = evaluate(EvalConfig(model=str(run), data=str(data / "heldout.jsonl")))
    stage("compare")
    prompts = read_prompts(str(data / "heldout.jsonl"))[:2]
    generations = compare(CompareConfig(model=str(run), prompts=prompts, max_new_tokens=config.max_new_tokens))
    stage(None)
    return QuickstartResult(
        directory=str(root),
        conversions=conversions,
        validations=validations,
        lint=audit,
        train=trained,
        eval=scored,
        generations=generations,
        seconds=seconds,
    )
