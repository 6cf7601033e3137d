"""``prefkit quickstart``: the whole loop on the bundled sample, as a new user would run it.

The steps are the commands a user would chain (each is the library function its command calls):
write the sample in two raw layouts, convert both, validate both; let the bundled model answer the
training prompts (``generate``), check each answer with the sample's verifier (``score``), and turn
the answers into pairs (``convert --pair-reference``: the model's own wrong answer is the rejected
reply, against its own right answer where it has one, else the reference); lint those pairs under
the model's tokenizer, train with the packaged recipe (``prefkit/recipes/quickstart.yaml``, also
at ``recipes/quickstart.yaml``), and evaluate on the held-out pairs both ways: implicit-reward
accuracy, and the model's own greedy answers to the held-out prompts, checked by the verifier,
before and after.
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
    from prefkit.lm.evaluate import EvalResult
    from prefkit.lm.generate import GenerateResult
    from prefkit.lm.lint import LintResult
    from prefkit.lm.score import ScoreResult
    from prefkit.lm.train import TrainResult


VERIFIER = "verify:sample_task"
"""The sample's own checker (:func:`prefkit.data.verifiers.sample_task`): it reads the prompt, never the data's labels."""


def packaged_recipe() -> Path:
    """The quickstart recipe that ships with prefkit."""
    return Path(str(resources.files("prefkit") / "recipes" / "quickstart.yaml"))


@dataclass
class QuickstartConfig:
    """Options of ``prefkit quickstart``."""

    directory: str = option("prefkit-quickstart", "Folder for the data, the run and the report.")
    recipe: str | None = option(None, "Training recipe; default: the packaged quickstart recipe.")
    prompts: int = option(480, "Training prompts the model answers; its answers make the training pairs.", min=1)
    temperature: float = option(0.7, "Sampling temperature of the model's answers to the training prompts.", min=0)
    answer_tokens: int = option(
        16, "Tokens per answer to a training prompt: enough to tell a wrong answer; a longer one is cut.", min=1
    )
    max_new_tokens: int = option(48, "Tokens per held-out answer, before and after training (greedy).", min=1)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class QuickstartResult(Result):
    """Every stage's own result, as its command returns it, and the seconds each stage took."""

    directory: str
    conversions: dict[str, ConvertResult]
    """``train`` and ``heldout`` (the sample's raw files), and ``pairs`` (the model's scored answers)."""
    validations: list[FileValidation]
    generated: GenerateResult
    scored: ScoreResult
    lint: LintResult
    train: TrainResult
    eval: EvalResult
    seconds: dict[str, float]
    """Per stage, in the order they ran."""


class StageClock:
    """Times named stages one after another and tells ``progress`` as each one starts."""

    def __init__(self, progress: ReportProgress | None = None):
        import time

        self.clock = time.perf_counter
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.current: str | None = None
        self.started = self.clock()

    def __call__(self, name: str | None) -> None:
        now = self.clock()
        if self.current is not None:
            self.seconds[self.current] = round(now - self.started, 1)
        self.current, self.started = name, now
        if name is not None and self.progress:
            self.progress(name, 0, None)


def sample_data(config: QuickstartConfig, data: Path, stage: StageClock) -> tuple[dict, list]:
    """The sample written, converted (train and held-out) and validated: ``(conversions, validations)``."""
    from prefkit.data.convert import ConvertConfig, convert
    from prefkit.data.sample_data import SampleConfig, write_sample
    from prefkit.data.validate import validate_files
    from prefkit.errors import ValidationFailed

    stage("sample")
    raw = write_sample(data, SampleConfig(train=config.prompts))
    stage("convert")
    conversions = {
        "train": convert(ConvertConfig(sources=[str(raw["train"])], output=str(data / "train.jsonl"))),
        "heldout": convert(
            ConvertConfig(
                sources=[str(raw["heldout"])],
                output=str(data / "heldout.jsonl"),
                fields=["prompt=question", "chosen=answers.good", "rejected=answers.bad", "metadata.task=task"],
            )
        ),
    }
    stage("validate")
    validations = validate_files([str(data / "train.jsonl"), str(data / "heldout.jsonl")])
    for result in validations:
        if not result.ok:
            raise ValidationFailed(f"{result.path}: not canonical; run prefkit validate {result.path}", result)
    return conversions, validations


def own_pairs(config: QuickstartConfig, recipe, data: Path, stage: StageClock, progress) -> tuple:
    """The model's own answers to the training prompts, scored by the verifier and paired (its wrong
    answer against the reference): ``(generated, scored, pairs conversion)``."""
    from prefkit.data.convert import ConvertConfig, convert
    from prefkit.lm.generate import GenerateConfig, generate
    from prefkit.lm.score import ScoreConfig, score

    stage("generate")
    generated = generate(
        GenerateConfig(
            sources=[str(data / "train.jsonl")],
            output=str(data / "answers.jsonl"),
            model=recipe.model,
            temperature=config.temperature,
            max_new_tokens=config.answer_tokens,
            seed=recipe.seed,
            # A quickstart stopped mid-way picks its answers up where it stopped.
            resume=True,
        ),
        progress,
    )
    stage("score")
    scored = score(ScoreConfig(generated=generated.output, output=str(data / "scored.jsonl"), scorers=[VERIFIER]))
    stage("pair")
    pairs = convert(
        ConvertConfig(
            sources=[scored.output], output=str(data / "pairs.jsonl"), binarize="best-worst", pair_reference=True
        )
    )
    return generated, scored, pairs


def quickstart(
    config: QuickstartConfig,
    train_callbacks: list | None = None,
    progress: ReportProgress | None = None,
) -> QuickstartResult:
    """Runs every step; ``progress`` hears each stage's name as it starts (``(name, 0, None)``) and
    the training's own progress; ``train_callbacks`` go to :func:`prefkit.lm.train.train`. Raises on
    the first failing step."""
    from prefkit.lm.evaluate import EvalConfig, evaluate
    from prefkit.lm.lint import LintConfig, lint
    from prefkit.lm.train import load_train_recipe, train

    root = Path(config.directory)
    data, run = root / "data", root / "run"
    stage = StageClock(progress)
    conversions, validations = sample_data(config, data, stage)
    recipe = load_train_recipe(
        config.recipe or packaged_recipe(),
        [f"data.train={data / 'pairs.jsonl'}", f"output_dir={run}"],
    )
    generated, scored, conversions["pairs"] = own_pairs(config, recipe, data, stage, progress)
    stage("lint")
    arguments = recipe.training_arguments()
    audit = lint(
        LintConfig(
            files=[str(data / "pairs.jsonl")],
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
    scored_eval = evaluate(
        EvalConfig(
            model=str(run),
            data=str(data / "heldout.jsonl"),
            generate=True,
            scorers=[VERIFIER],
            max_new_tokens=config.max_new_tokens,
            by="metadata.task",
            report=str(root / "eval.json"),
        ),
        progress,
    )
    stage(None)
    return QuickstartResult(
        directory=str(root),
        conversions=conversions,
        validations=validations,
        generated=generated,
        scored=scored,
        lint=audit,
        train=trained,
        eval=scored_eval,
        seconds=stage.seconds,
    )
