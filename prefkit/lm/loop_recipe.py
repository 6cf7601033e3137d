"""The recipe of ``prefkit loop``: a train recipe plus a ``loop:`` section, every key checked before
any model loads.

.. code-block:: yaml

    model: smollm2-135m-instruct     # the train recipe's keys, as prefkit train reads them
    max_steps: 45
    loop:
      prompts: {train: demo/train.jsonl, heldout: demo/heldout.jsonl}
      rounds: 2
      generate: {n: 1, temperature: 0.7, max_new_tokens: 16}
      scorers: [verify:sample_task]
      pairing: {binarize: best-worst, pair_reference: true}
      reference: base                # or previous
      init: previous                 # or base
      eval: {by: metadata.task, max_new_tokens: 48}
      stop: {min_gain: 0.01}

The train recipe's ``data.train`` and ``output_dir`` are the loop's to set (each round's pairs and
``DIR/round-K/run``); a recipe may leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from prefkit.config import check_fields, from_mapping, load_yaml, option
from prefkit.data.adapters.base import BINARIZE
from prefkit.errors import ConfigError, UsageError
from prefkit.lm.scorers import SCORER_HELP, ServerScorerOptions

LOOP_ENGINES = ("transformers", "vllm")
"""An OpenAI-compatible server serves a fixed model; the loop's policy changes every round."""


@dataclass
class LoopPrompts:
    """Where the prompts come from."""

    train: str = option(help="Training prompts: a prompts file or preference data in any format prefkit reads.")
    heldout: str = option(
        help="Held-out canonical pairs (prefkit convert output): their prompts are answered and scored after "
        "every round, their pairs give implicit-reward accuracy."
    )


@dataclass
class LoopGeneration:
    """How the current policy answers the training prompts each round."""

    engine: str = option(
        "transformers",
        "transformers (in-process) or vllm; a server (openai) serves a fixed model, and the policy changes "
        "every round.",
        choices=LOOP_ENGINES,
    )
    n: int | list[int] = option(
        1,
        "Answers per prompt (best against worst among them once some are right); a list gives each round its own "
        "([1, 4]: one answer in round 1, four from round 2 on; the last repeats).",
    )
    temperature: float = option(0.7, "Sampling temperature of the answers.", min=0, min_open=True)
    top_p: float = option(1.0, "Nucleus sampling: keep the smallest set of tokens whose mass is top_p.", min=0, max=1)
    max_new_tokens: int = option(16, "Tokens per answer.", min=1)
    batch_size: int = option(32, "Prompts per generation batch (a killed loop resumes from its last batch).", min=1)

    def __post_init__(self) -> None:
        check_fields(self)
        counts = self.n if isinstance(self.n, list) else [self.n]
        if not counts or any(n < 1 for n in counts):
            raise ConfigError(f"n: expected a whole number >= 1, or a list of them, got {self.n}")

    def settings(self, k: int) -> dict:
        """The settings of round ``k``: ``n`` picked from the list where it is one.

        >>> LoopGeneration(n=[1, 4]).settings(1)["n"], LoopGeneration(n=[1, 4]).settings(3)["n"]
        (1, 4)
        """
        counts = self.n if isinstance(self.n, list) else [self.n]
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"n": counts[min(k, len(counts)) - 1]}


@dataclass
class LoopPairing:
    """How scored answers become pairs: the binarize rule every ranked source uses."""

    binarize: str = option("best-worst", "best-worst, best-random-lower or all-pairs.", choices=BINARIZE)
    pair_reference: bool = option(
        True, "A prompt none of whose answers passes is paired as its reference (chosen) against an answer."
    )
    pass_score: float = option(1.0, "The score an answer needs to pass (a verifier's True is 1).")
    min_margin: float | None = option(None, "Reject pairs whose score gap is below this (weak_preference).")
    max_pairs_per_prompt: int | None = option(None, "With all-pairs: at most this many per prompt.", min=1)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class LoopEval:
    """How each round's policy is judged: its own greedy answers to the held-out prompts, scored."""

    scorers: list[str] = option([], "Scorers of the held-out answers; default: the loop's scorers.")
    by: str | None = option(None, "Report per group of this field too, e.g. metadata.task.")
    max_new_tokens: int = option(128, "Tokens per held-out answer (greedy).", min=1)
    batch_size: int = option(8, "Pairs per forward pass of the implicit-reward accuracy.", min=1)
    max_length: int = option(1024, "Tokens per sequence of the implicit-reward accuracy.", min=8)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class LoopStop:
    """When to stop before ``rounds``: after a round whose held-out score gains too little."""

    min_gain: float | None = option(
        None, "Stop when the held-out score (the first eval scorer) gains less than this over the previous round."
    )
    interval_includes_zero: bool = option(
        False, "Stop when the 95% interval of the paired difference against the previous round includes 0."
    )


@dataclass
class LoopSettings:
    """The ``loop:`` section."""

    prompts: LoopPrompts = option(help="Training prompts and held-out pairs.")
    scorers: list[str] = option(help=SCORER_HELP)
    rounds: int = option(2, "Rounds of generate, score, pair, train and eval.", min=1)
    rank_by: str | None = option(None, "The scorer whose score ranks the answers (default: the first).")
    generate: LoopGeneration = field(default_factory=LoopGeneration, metadata={"help": "Generation settings."})
    pairing: LoopPairing = field(default_factory=LoopPairing, metadata={"help": "Pairing settings."})
    reference: str = option(
        "base",
        "base: the round-0 model is every round's DPO reference (RLHFlow's choice; its reference log-probs are "
        "cached once per pair); previous: the last round's policy.",
        choices=("base", "previous"),
    )
    init: str = option(
        "previous",
        "previous: each round trains the last round's adapter further on the new pairs; base: each round "
        "trains fresh adapters on the base with every round's pairs so far.",
        choices=("previous", "base"),
    )
    eval: LoopEval = field(default_factory=LoopEval, metadata={"help": "Held-out evaluation."})
    stop: LoopStop = field(default_factory=LoopStop, metadata={"help": "The stopping rule."})
    server: ServerScorerOptions = field(
        default_factory=ServerScorerOptions, metadata={"help": "Options of server-backed scorers (rate:, judge:)."}
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.init == "base" and self.reference == "previous":
            raise ConfigError(
                "reference: previous with init: base would train fresh adapters against another policy, which "
                "needs a second model in memory; use init: previous (or reference: base)"
            )

    @property
    def eval_scorers(self) -> list[str]:
        return self.eval.scorers or self.scorers


@dataclass
class LoopRecipe:
    """A loop recipe: the train recipe every round trains with, and the loop's own settings."""

    train: object
    """The :class:`~prefkit.lm.train.TrainConfig` (``data.train`` and ``output_dir`` set per round)."""
    loop: LoopSettings
    source: dict = field(default_factory=dict, repr=False)
    """The recipe as read, overrides applied: what ``loop.json`` records."""


PLACEHOLDER = "<set by prefkit loop>"


def load_loop_recipe(path: str | Path, overrides: list[str] = ()) -> LoopRecipe:
    """Reads a loop recipe, applies ``--set`` overrides (``loop.rounds=3`` reaches the loop's keys),
    and checks every key, the scorers and the train recipe (through TRL's config), before any model loads.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "loop.yaml"
    >>> _ = path.write_text("max_steps: 4\\nloop:\\n  prompts: {train: t.jsonl, heldout: h.jsonl}\\n"
    ...                     "  scorers: [verify:sample_task]\\n")
    >>> recipe = load_loop_recipe(path, ["loop.rounds=3"])
    >>> recipe.loop.rounds, recipe.loop.reference, recipe.loop.init, recipe.train.dpo["max_steps"]
    (3, 'base', 'previous', 4)
    >>> _ = path.write_text("loop:\\n  prompts: {train: t.jsonl, heldout: h.jsonl}\\n  scorers: [verify:x]\\n  rouns: 2\\n")
    >>> load_loop_recipe(path)
    Traceback (most recent call last):
    ...
    prefkit.errors.ConfigError: loop.rouns: unknown key (did you mean 'rounds'?)
    """
    from prefkit.lm.train import apply_overrides, config_from_mapping

    data = apply_overrides(load_yaml(path), list(overrides))
    if "loop" not in data:
        raise ConfigError(
            f"{path}: loop: required key is missing (a loop recipe is a train recipe with a loop: section)"
        )
    source = dict(data)
    settings = from_mapping(LoopSettings, data.pop("loop"), "loop")
    if data.get("method", "dpo") != "dpo":
        raise ConfigError(f"method: the loop trains DPO on the pairs it makes, not {data['method']}")
    for key in ("adapter", "reference"):
        if key in data:
            raise ConfigError(f"{key}: the loop sets it every round (loop.init and loop.reference say how)")
    data["data"] = dict(data.get("data") or {}) | {"train": PLACEHOLDER}
    data["output_dir"] = PLACEHOLDER
    train = config_from_mapping(data)
    train.training_arguments()
    check_scorers(settings)
    return LoopRecipe(train=train, loop=settings, source=source)


def check_scorers(settings: LoopSettings) -> None:
    """Each scorer parses and what it names exists (a verifier's function, a model folder, a server
    URL's shape); ``rank_by`` names one of them. Nothing is loaded."""
    from prefkit.lm.scorers import parse_scorers

    for key, texts in (("loop.scorers", settings.scorers), ("loop.eval.scorers", settings.eval_scorers)):
        if not texts:
            raise ConfigError(f"{key}: give at least one scorer")
        try:
            specs = parse_scorers(texts)
            for spec in specs:
                scorer_exists(spec)
        except UsageError as err:
            raise ConfigError(f"{key}: {err}") from err
        if key == "loop.scorers" and settings.rank_by is not None and settings.rank_by not in {s.name for s in specs}:
            names = ", ".join(s.name for s in specs)
            raise ConfigError(f"loop.rank_by: {settings.rank_by} is not one of the scorers ({names})")


def scorer_exists(spec) -> None:
    """Raises :class:`UsageError` when what a scorer names cannot be found."""
    from prefkit.lm.loading import BUNDLED, resolve_model
    from prefkit.lm.scorers import http_target

    if spec.kind == "verify":
        from prefkit.data.verifiers import load_verifier

        load_verifier(spec.target)
    elif spec.kind in ("reward-model", "implicit"):
        for model in (spec.target, spec.reference):
            if model is not None and model not in BUNDLED:
                resolve_model(model)
    elif spec.kind == "rate":
        http_target(spec.target)
