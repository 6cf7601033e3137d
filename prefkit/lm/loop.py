"""``prefkit loop``: iterative on-policy DPO, round after round, resumable, with its lineage.

Each round K runs the commands a user would chain, each the library call of its command, into
``DIR/round-K/``:

1. ``generate``: the current policy (the base model in round 1, else round K-1's adapter) answers
   the training prompts (``answers.jsonl``, its report and rejects);
2. ``score``: every answer scored (``scored.jsonl``);
3. ``pair``: ``convert`` binarizes the scored answers with the rule every ranked source uses
   (``pairs.jsonl``; each pair's ``metadata.round`` and ``metadata.policy``, the policy that wrote
   the model's replies); with ``init: base`` the pairs of every round so far go into
   ``train-pairs.jsonl``;
4. ``train``: DPO with the recipe (``run/``): ``init: previous`` continues the last round's adapter,
   ``init: base`` trains fresh adapters; the reference is the base model (``reference: base``, its
   log-probs cached under the base's weights in ``DIR/cache``) or the last round's policy;
5. ``eval``: the round's policy answers the held-out prompts greedily, every answer scored
   (``eval.json``, ``eval.answers.jsonl``).

``DIR/loop.json`` records every stage as it finishes: the key of what it was made from (the
policy's adapter hash, the input files' sha256, the settings), its time and counts. A loop killed
anywhere continues with ``resume=True``: a stage whose key matches is kept, generation resumes from
its last finished batch and training from its last checkpoint, and the rest runs again; the files
are what an uninterrupted loop writes. The held-out score of each round, with its 95% interval and
the paired difference against the previous round (prompt by prompt), is in the result and in
``DIR/rounds.png``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prefkit.errors import UsageError
from prefkit.lm.estimates import Estimate
from prefkit.lm.loop_recipe import LoopRecipe
from prefkit.progress import ReportProgress
from prefkit.results import Result

STATE = "loop.json"
STAGES = ("generate", "score", "pair", "train", "eval")


@dataclass
class SampleCounts:
    """What became of one round's prompts and answers.

    ``prompts_read == answered + duplicates + rejected`` (generate's count) and
    ``samples == paired + unpaired``: an answer is paired when its text is the chosen or the rejected
    reply of a pair of its prompt; otherwise ``unpaired_reasons`` says why (``unscored``; the reason
    its prompt made no pair, such as ``tie`` or ``too_few_completions``; ``not_selected``, neither
    the best nor the worst of a prompt that made a pair).
    """

    prompts_read: int
    answered: int
    duplicates: int
    rejected: int
    prompt_reasons: dict[str, int]
    samples: int
    paired: int
    unpaired: int
    unpaired_reasons: dict[str, int]


@dataclass
class RoundResult:
    """One round: what generated, what it made, and how its policy answers the held-out prompts."""

    round: int
    directory: str
    policy: str
    """The policy that answered the training prompts (``model:NAME`` or ``adapter:SHA256[:16]``)."""
    trained: str
    """The adapter this round trained (``adapter:SHA256[:16]``): the next round's policy."""
    counts: SampleCounts
    sampled_score: float | None
    """Mean score of the answers at sampling, under the ranking scorer (a verifier's: the share right)."""
    pairs: int
    pair_reasons: dict[str, int]
    trained_pairs: int
    heldout: Estimate
    """The first eval scorer's mean over the held-out prompts, this round's policy, with its 95% interval."""
    versus_previous: Estimate
    """The paired difference against the previous round's policy (round 0: the base model)."""
    implicit_accuracy: Estimate | None
    mean_tokens: float
    """Mean tokens of the held-out answers."""
    seconds: dict[str, float]
    reused: list[str] = field(default_factory=list)
    """Stages kept from an earlier run of this loop (``resume``)."""


@dataclass
class LoopResult(Result):
    """Every round, the base model's held-out score (round 0), and why the loop stopped where it did."""

    directory: str
    scorer: str
    base: Estimate
    base_mean_tokens: float
    rounds: list[RoundResult]
    stopped: str | None
    """Why the loop stopped before ``rounds`` (the stopping rule, or a round that made no pairs)."""
    plot: str


# ---------------------------------------------------------------- the ledger


def file_digest(path: str | Path) -> str:
    from prefkit.data.sources import file_sha256

    return file_sha256(Path(path))


class Ledger:
    """``loop.json``: the recipe and, per round and stage, its key, seconds and summary; written
    (atomically) after every stage, so a killed loop knows which stages finished."""

    def __init__(self, root: Path, source: dict):
        self.path = root / STATE
        saved = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        self.data = {"prefkit_loop": 1, "recipe": source, "rounds": saved.get("rounds", []), "stopped": None}

    def round(self, k: int) -> dict:
        while len(self.data["rounds"]) < k:
            self.data["rounds"].append({"round": len(self.data["rounds"]) + 1, "stages": {}})
        return self.data["rounds"][k - 1]

    def finished(self, k: int, stage: str, key: str) -> dict | None:
        """The stage's record when it finished with this key, else None."""
        record = self.round(k)["stages"].get(stage)
        return record if record and record.get("key") == key else None

    def finish(self, k: int, stage: str, key: str, seconds: float, summary: dict) -> dict:
        self.round(k)["stages"][stage] = {"key": key, "seconds": round(seconds, 1), "summary": summary}
        self.write()
        return self.round(k)["stages"][stage]

    def write(self) -> None:
        from prefkit.atomic_files import write_json

        write_json(self.data, self.path)


# ---------------------------------------------------------------- one round


class RoundPaths:
    """The files of round ``k`` under the loop's folder."""

    def __init__(self, root: Path, k: int):
        self.folder = root / f"round-{k}"
        self.answers = self.folder / "answers.jsonl"
        self.scored = self.folder / "scored.jsonl"
        self.pairs = self.folder / "pairs.jsonl"
        self.train_pairs = self.folder / "train-pairs.jsonl"
        """``init: base``: every round's pairs so far."""
        self.run = self.folder / "run"
        self.eval = self.folder / "eval.json"
        self.eval_answers = self.folder / "eval.answers.jsonl"


class Round:
    """Runs (or keeps, when its key matches the ledger's) each stage of round ``k``."""

    def __init__(self, recipe: LoopRecipe, root: Path, k: int, ledger: Ledger, progress, train_callbacks):
        self.recipe, self.settings, self.k, self.ledger = recipe, recipe.loop, k, ledger
        self.paths, self.previous = RoundPaths(root, k), RoundPaths(root, k - 1)
        self.root = root
        self.progress, self.train_callbacks = progress, train_callbacks
        self.reused: list[str] = []

    def tell(self, stage: str):
        """The round's progress callback of one stage: ``round K · stage · what the stage reports``."""
        if self.progress is None:
            return None
        self.progress(f"round {self.k} · {stage}", 0, None)
        return lambda inner, done, total: self.progress(f"round {self.k} · {stage} · {inner}", done, total)

    def stage(self, name: str, key: str, work, outputs: list[Path]) -> dict:
        """The stage's ledger record: kept when it finished with ``key`` and its ``outputs`` are still
        there, else ``work(progress)`` run and recorded."""
        kept = self.ledger.finished(self.k, name, key)
        if kept is not None and all(path.exists() for path in outputs):
            self.reused.append(name)
            return kept
        progress = self.tell(name)
        started = time.perf_counter()
        summary = work(progress)
        return self.ledger.finish(self.k, name, key, time.perf_counter() - started, summary)

    @property
    def policy_model(self) -> str:
        """What answers this round: the base model in round 1, else the last round's adapter."""
        return self.recipe.train.model if self.k == 1 else str(self.previous.run)

    def generate(self) -> dict:
        from prefkit.lm.dpo_trainer import digest
        from prefkit.lm.generate import GenerateConfig, generate, resume_folder
        from prefkit.lm.loading import policy_id

        g = self.settings.generate
        policy = policy_id(self.policy_model)
        settings = g.settings(self.k)
        key = digest(["generate", policy, file_digest(self.settings.prompts.train), settings, self.seed])

        def work(progress) -> dict:
            # Batches of another policy or other settings cannot be resumed: they are not this stage's.
            recorded = self.ledger.round(self.k)["stages"].get("generate", {}).get("key")
            if recorded is not None and recorded != key:
                import shutil

                shutil.rmtree(resume_folder(self.paths.answers), ignore_errors=True)
            self.paths.folder.mkdir(parents=True, exist_ok=True)
            result = generate(
                GenerateConfig(
                    sources=[self.settings.prompts.train],
                    output=str(self.paths.answers),
                    model=self.policy_model,
                    **settings,  # engine, n, temperature, top_p, max_new_tokens, batch_size
                    seed=self.seed,
                    resume=True,
                    round=self.k,
                    trust_remote_code=self.recipe.train.trust_remote_code,
                ),
                progress,
            )
            keys = ("read", "prompts", "duplicates", "rejected", "reasons", "completions", "mean_tokens")
            return {"policy": policy} | {k: getattr(result, k) for k in keys}

        return self.stage("generate", key, work, [self.paths.answers])

    @property
    def seed(self) -> int:
        """Each round samples with its own seed: the recipe's seed plus the round."""
        return self.recipe.train.seed + self.k

    def score(self) -> dict:
        from prefkit.lm.dpo_trainer import digest
        from prefkit.lm.score import ScoreConfig, score

        s = self.settings
        server = dataclasses.asdict(s.server)
        key = digest(["score", file_digest(self.paths.answers), s.scorers, s.rank_by, server])

        def work(progress) -> dict:
            result = score(
                ScoreConfig(
                    generated=str(self.paths.answers),
                    output=str(self.paths.scored),
                    scorers=list(s.scorers),
                    rank_by=s.rank_by,
                    trust_remote_code=self.recipe.train.trust_remote_code,
                    **server,
                )
            )
            ranking = next(x for x in result.scorers if x.name == result.rank_by)
            return {
                "prompts": result.prompts,
                "rejected": result.rejected,
                "completions": result.completions,
                "rank_by": result.rank_by,
                "sampled_score": ranking.mean,
                "scorers": [dataclasses.asdict(x) | {"first_failures": []} for x in result.scorers],
            }

        return self.stage("score", key, work, [self.paths.scored])

    def pair(self, generated: dict) -> dict:
        """``generated`` is the generate stage's summary (the prompt counts of the accounting)."""
        from prefkit.data.convert import ConvertConfig, convert
        from prefkit.lm.dpo_trainer import digest

        pairing = dataclasses.asdict(self.settings.pairing)
        accumulate = self.settings.init == "base" and self.k > 1
        earlier = [file_digest(RoundPaths(self.root, j).pairs) for j in range(1, self.k)] if accumulate else []
        key = digest(["pair", file_digest(self.paths.scored), pairing, earlier])

        def work(progress) -> dict:
            result = convert(
                ConvertConfig(
                    sources=[str(self.paths.scored)],
                    output=str(self.paths.pairs),
                    seed=self.recipe.train.seed,
                    **pairing,
                )
            )
            counts = sample_counts(generated, self.paths.answers, self.paths.scored, self.paths.pairs, result.rejects)
            summary = {
                "read": result.read,
                "written": result.written,
                "rejected": result.rejected,
                "reasons": result.reasons,
                "samples": dataclasses.asdict(counts),
            }
            if accumulate:
                summary["train_pairs"] = accumulated_pairs(
                    [RoundPaths(self.root, j).pairs for j in range(1, self.k + 1)], self.paths.train_pairs
                )
            return summary

        return self.stage("pair", key, work, [self.paths.pairs] + ([self.paths.train_pairs] if accumulate else []))

    def train_config(self):
        """The recipe with this round's data, output folder, starting adapter and reference."""
        settings = self.settings
        train = self.recipe.train
        accumulate = settings.init == "base" and self.k > 1
        data = dataclasses.replace(train.data, train=str(self.paths.train_pairs if accumulate else self.paths.pairs))
        continues = settings.init == "previous" and self.k > 1
        return dataclasses.replace(
            train,
            data=data,
            output_dir=str(self.paths.run),
            adapter=str(self.previous.run) if continues else None,
            reference="adapter" if continues and settings.reference == "previous" else "base",
            # One cache for every round: the base's reference log-probs of a pair are computed once.
            cache_dir=train.cache_dir or str(self.root / "cache"),
        )

    def train(self) -> dict:
        from prefkit.lm.train import data_hashes, fingerprint, input_hashes, run_state
        from prefkit.lm.train import train as run_training

        config = self.train_config()
        # The key names the loop's own files relative to its folder, so a loop folder moved or copied
        # elsewhere (a variant that shares round 1) keeps its finished runs.
        portable = dataclasses.replace(
            config,
            data=dataclasses.replace(config.data, train=inside(self.root, config.data.train)),
            output_dir=inside(self.root, config.output_dir),
            adapter=inside(self.root, config.adapter),
            cache_dir=None,
        )
        key = fingerprint(portable, input_hashes(config, data_hashes(config)))

        def work(progress) -> dict:
            state = run_state(config)
            if state == "none" and self.paths.run.exists():
                import shutil

                # A run of another recipe or other pairs (the loop's recipe changed): its checkpoints
                # must not be resumed from.
                shutil.rmtree(self.paths.run)
            if state != "finished":
                run_training(
                    config,
                    resume="auto" if state == "checkpointed" else None,
                    callbacks=self.train_callbacks,
                    progress=progress,
                )
            return trained_summary(self.paths.run)

        return self.stage("train", key, work, [self.paths.run / "adapter_model.safetensors"])

    def evaluate(self) -> dict:
        from prefkit.lm.dpo_trainer import digest
        from prefkit.lm.evaluate import EvalConfig, evaluate
        from prefkit.lm.loading import adapter_digest

        s = self.settings
        server = dataclasses.asdict(s.server)
        eval_settings = dataclasses.asdict(s.eval) | {"scorers": s.eval_scorers}
        key = digest(["eval", adapter_digest(self.paths.run), file_digest(s.prompts.heldout), eval_settings, server])

        def work(progress) -> dict:
            result = evaluate(
                EvalConfig(
                    model=str(self.paths.run),
                    data=s.prompts.heldout,
                    generate=True,
                    scorers=list(s.eval_scorers),
                    by=s.eval.by,
                    max_new_tokens=s.eval.max_new_tokens,
                    batch_size=s.eval.batch_size,
                    max_length=s.eval.max_length,
                    seed=self.recipe.train.seed,
                    report=str(self.paths.eval),
                    answers=str(self.paths.eval_answers),
                    trust_remote_code=self.recipe.train.trust_remote_code,
                    **server,
                ),
                progress,
            )
            implicit = result.metrics.implicit_reward_accuracy
            return {
                "implicit_accuracy": dataclasses.asdict(implicit) if implicit else None,
                "mean_tokens_before": result.answers.mean_tokens_before,
                "mean_tokens_after": result.answers.mean_tokens_after,
            }

        return self.stage("eval", key, work, [self.paths.eval, self.paths.eval_answers])


def inside(root: Path, path: str | None) -> str | None:
    """``path`` relative to ``root`` where it lies inside it, else as it is.

    >>> inside(Path("runs/loop"), "runs/loop/round-1/pairs.jsonl"), inside(Path("runs/loop"), "data/a.jsonl")
    ('round-1/pairs.jsonl', 'data/a.jsonl')
    """
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return path


def trained_summary(run: Path) -> dict:
    """What a finished run folder says of itself: its adapter's hash and the pairs it trained on."""
    from prefkit.lm.loading import adapter_digest

    tokens = json.loads((run / "token_report.json").read_text(encoding="utf-8"))
    # Not metrics.json's train_loss: after a resume transformers averages only the steps it ran.
    return {
        "adapter": f"adapter:{adapter_digest(run)[:16]}",
        "pairs_read": tokens["read"],
        "pairs_trained": tokens["trained"],
        "dropped": tokens["dropped"],
    }


# ---------------------------------------------------------------- accounting


def _read_jsonl(path: Path):
    """A JSON Lines file prefkit wrote, as a polars frame (an empty file as an empty frame)."""
    import polars as pl

    return pl.read_ndjson(path) if path.stat().st_size else pl.DataFrame()


def sample_counts(generated: dict, answers: Path, scored: Path, pairs: Path, rejects: str | None) -> SampleCounts:
    """Each answer of a round followed into the pairs: paired, or unpaired with its reason (see
    :class:`SampleCounts`); the prompt counts are ``generated``'s (the generate stage's summary)."""
    import polars as pl

    def per_sample(frame, value: pl.Expr, name: str):
        if not frame.height:  # nothing answered (or scored): no samples to follow
            return pl.DataFrame(schema={"id": pl.String, name: pl.String, "sample": pl.Int64})
        return (
            frame.select("id", pl.col("completions").list.eval(value).alias(name))
            .with_columns(sample=pl.int_ranges(pl.col(name).list.len()))
            .explode(name, "sample")
            .drop_nulls("sample")
        )

    samples = per_sample(_read_jsonl(answers), pl.element().struct.field("text"), "text")
    scored_frame = _read_jsonl(scored)
    rank_by = scored_frame["rank_by"][0] if scored_frame.height else ""
    score = pl.element().struct.field("scores").struct.field(rank_by).cast(pl.Float64)
    scores = per_sample(scored_frame, score, "score").with_columns(
        pl.col("score").cast(pl.Float64), in_scored=pl.lit(True)
    )
    paired_texts = _paired_texts(_read_jsonl(pairs))
    prompt_reasons = (
        _reject_reasons(Path(rejects)) if rejects else pl.DataFrame(schema={"id": pl.String, "reason": pl.String})
    )
    status = (
        samples.join(scores, on=["id", "sample"], how="left")
        .join(paired_texts.with_columns(paired=pl.lit(True)), on=["id", "text"], how="left")
        .join(prompt_reasons, on="id", how="left")
        .select(
            pl.when(pl.col("in_scored").is_null())
            .then(pl.lit("score_rejected"))
            .when(pl.col("score").is_null())
            .then(pl.lit("unscored"))
            .when(pl.col("paired").fill_null(False))
            .then(pl.lit("paired"))
            .when(pl.col("reason").is_not_null())
            .then(pl.col("reason"))
            .otherwise(pl.lit("not_selected"))
            .alias("status")
        )["status"]
        .value_counts(sort=True)
    )
    counts = dict(zip(status["status"].to_list(), status["count"].to_list(), strict=True))
    paired = counts.pop("paired", 0)
    return SampleCounts(
        prompts_read=generated["read"],
        answered=generated["prompts"],
        duplicates=generated["duplicates"],
        rejected=generated["rejected"],
        prompt_reasons=generated["reasons"],
        samples=samples.height,
        paired=paired,
        unpaired=sum(counts.values()),
        unpaired_reasons=counts,
    )


def _paired_texts(pairs):
    """``(id, text)`` of every reply that is in a pair: the chosen and the rejected, by prompt."""
    import polars as pl

    if not pairs.height:
        return pl.DataFrame(schema={"id": pl.String, "text": pl.String})
    prompt_id = pl.col("metadata").struct.field("prompt_id").alias("id")
    return pl.concat(
        pairs.select(prompt_id, pl.col(side).list.last().struct.field("content").alias("text"))
        for side in ("chosen", "rejected")
    ).unique()


def _reject_reasons(path: Path):
    """``(id, reason)`` of each record the pair stage rejected (convert's rejects file)."""
    import polars as pl

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = [r["record"].get("id") if isinstance(r.get("record"), dict) else None for r in rows]
    return pl.DataFrame(
        {"id": ids, "reason": [r["reason"] for r in rows]}, schema={"id": pl.String, "reason": pl.String}
    )


def accumulated_pairs(files: list[Path], output: Path) -> dict[str, int]:
    """Every round's pairs so far in one file, a pair met again (same id: same prompt and replies)
    kept once: ``{"read", "written", "duplicates"}``."""
    from prefkit.atomic_files import line_sink

    seen: set[str] = set()
    lines = []
    read = 0
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            read += 1
            pair_id = json.loads(line)["id"]
            if pair_id not in seen:
                seen.add(pair_id)
                lines.append(line + "\n")
    with line_sink(output) as write:
        write(lines)
    return {"read": read, "written": len(lines), "duplicates": read - len(lines)}


# ---------------------------------------------------------------- the loop


def check_folder(root: Path, recipe: LoopRecipe, resume: bool) -> None:
    """The loop's folder: new or empty, or (with ``resume``) one of a loop; none of the inputs inside it."""
    import os

    inputs = {
        "loop.prompts.train": recipe.loop.prompts.train,
        "loop.prompts.heldout": recipe.loop.prompts.heldout,
        "data.eval": recipe.train.data.eval,
    }
    for key, path in inputs.items():
        if path is None:
            continue
        if not Path(path).exists():
            raise UsageError(f"{key}: {path}: no such file")
        if Path(os.path.realpath(root)) in Path(os.path.realpath(path)).parents:
            raise UsageError(f"{root} holds the loop's input {path} ({key}): choose another folder")
    if (root / STATE).exists():
        if not resume:
            raise UsageError(f"{root} holds a loop: add --resume to continue it, or choose another folder")
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(f"{root} exists and holds no loop: choose a new or empty folder")


def run_loop(
    recipe: LoopRecipe,
    directory: str | Path,
    resume: bool = False,
    progress: ReportProgress | None = None,
    train_callbacks: list | None = None,
) -> LoopResult:
    """Runs (or, with ``resume``, continues) every round of ``recipe`` into ``directory``."""
    root = Path(directory)
    check_folder(root, recipe, resume)
    root.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(root, recipe.source)
    ledger.write()
    settings, figures, stopped = recipe.loop, HeldoutFigures(root, recipe.loop.eval_scorers), None
    results: list[RoundResult] = []
    for k in range(1, settings.rounds + 1):
        reached = k
        step = Round(recipe, root, k, ledger, progress, train_callbacks)
        generated, scored = step.generate(), step.score()
        paired = step.pair(generated["summary"])
        if paired["summary"]["written"] == 0:
            reasons = ", ".join(f"{r} {n}" for r, n in paired["summary"]["reasons"].items())
            stopped = f"round {k} made no pairs ({reasons})"
            break
        trained, evaluated = step.train(), step.evaluate()
        lineage = {"policy": generated["summary"]["policy"], "trained": trained["summary"]["adapter"]}
        config = step.train_config()
        lineage |= {"reference": config.reference, "init": config.adapter or "fresh"}
        lineage |= {"scorers": settings.scorers, "rank_by": scored["summary"]["rank_by"]}
        ledger.round(k).update(lineage)
        results.append(round_result(step, figures, generated, scored, paired, trained, evaluated))
        if k < settings.rounds and (stopped := stop_reason(settings.stop, results[-1])):
            break
    # Rounds an earlier run of a longer loop went on to are not this loop's.
    ledger.data["rounds"] = ledger.data["rounds"][:reached]
    ledger.data["stopped"] = stopped
    ledger.write()
    plot = root / "rounds.png"
    if results:
        plot_rounds(figures.base, results, figures.scorer, plot)
    return LoopResult(
        directory=str(root),
        scorer=figures.scorer,
        base=figures.base if results else Estimate(float("nan"), float("nan"), float("nan")),
        base_mean_tokens=ledger.round(1)["stages"]["eval"]["summary"]["mean_tokens_before"] if results else 0.0,
        rounds=results,
        stopped=stopped,
        plot=str(plot) if results else "",
    )


class HeldoutFigures:
    """The held-out scores prompt by prompt, read back from each round's ``eval.answers.jsonl``:
    round 0 is round 1's ``before`` (the base model), round K its ``after``."""

    def __init__(self, root: Path, scorers: list[str]):
        from prefkit.lm.scorers import parse_scorers

        self.root, self.scorer = root, parse_scorers(scorers)[0].name
        self.rounds: dict[int, np.ndarray] = {}
        self.ids: list[str] | None = None

    def prompt_scores(self, k: int, model: str) -> np.ndarray:
        """Each held-out prompt's mean score (NaN where unscored), in round 1's prompt order."""
        import polars as pl

        frame = _read_jsonl(RoundPaths(self.root, k).eval_answers).filter(pl.col("model") == model)
        means = frame.group_by("id", maintain_order=True).agg(
            pl.col("scores").struct.field(self.scorer).cast(pl.Float64).mean().alias("score")
        )
        if self.ids is None:
            self.ids = means["id"].to_list()
        lookup = dict(zip(means["id"].to_list(), means["score"].to_list(), strict=True))
        return np.array([np.nan if lookup.get(i) is None else lookup[i] for i in self.ids], dtype=float)

    def scores(self, k: int) -> np.ndarray:
        if k not in self.rounds:
            self.rounds[k] = self.prompt_scores(1, "before") if k == 0 else self.prompt_scores(k, "after")
        return self.rounds[k]

    @property
    def base(self) -> Estimate:
        from prefkit.lm.estimates import bootstrap

        values = self.scores(0)
        return bootstrap(values[~np.isnan(values)])

    def change(self, k: int):
        """Round ``k`` against round ``k - 1``: both means and the paired difference (a ``ScoreChange``)."""
        from prefkit.lm.answer_eval import score_change

        return score_change(self.scorer, self.scores(k - 1), self.scores(k))


def round_result(step: Round, figures: HeldoutFigures, generated, scored, paired, trained, evaluated) -> RoundResult:
    """One round's row from its stages' ledger records and the held-out answers."""
    change = figures.change(step.k)
    implicit = evaluated["summary"]["implicit_accuracy"]
    return RoundResult(
        round=step.k,
        directory=str(step.paths.folder),
        policy=generated["summary"]["policy"],
        trained=trained["summary"]["adapter"],
        counts=SampleCounts(**paired["summary"]["samples"]),
        sampled_score=scored["summary"]["sampled_score"],
        pairs=paired["summary"]["written"],
        pair_reasons=paired["summary"]["reasons"],
        trained_pairs=trained["summary"]["pairs_trained"],
        heldout=change.after,
        versus_previous=change.difference,
        implicit_accuracy=Estimate(**implicit) if implicit else None,
        mean_tokens=evaluated["summary"]["mean_tokens_after"],
        seconds={s: step.ledger.round(step.k)["stages"][s]["seconds"] for s in STAGES},
        reused=list(step.reused),
    )


def stop_reason(rule, last: RoundResult) -> str | None:
    """Why the loop stops after ``last`` (None: it goes on).

    >>> from prefkit.lm.loop_recipe import LoopStop
    >>> last = RoundResult(2, "", "", "", None, None, 0, {}, 0, None, Estimate(0.01, -0.02, 0.05), None, 0.0, {})
    >>> stop_reason(LoopStop(min_gain=0.02), last)
    'round 2 gained +0.010 over round 1, less than min_gain 0.02'
    >>> stop_reason(LoopStop(interval_includes_zero=True), last)
    'round 2: the 95% interval of the paired difference against round 1 (-0.020–0.050) includes 0'
    >>> stop_reason(LoopStop(), last) is None
    True
    """
    gain = last.versus_previous
    if rule.min_gain is not None and gain.value < rule.min_gain:
        return f"round {last.round} gained {gain.value:+.3f} over round {last.round - 1}, less than min_gain {rule.min_gain:g}"
    if rule.interval_includes_zero and gain.low <= 0 <= gain.high:
        return (
            f"round {last.round}: the 95% interval of the paired difference against round {last.round - 1} "
            f"({gain.low:.3f}–{gain.high:.3f}) includes 0"
        )
    return None


def plot_rounds(base: Estimate, rounds: list[RoundResult], scorer: str, path: Path) -> None:
    """``rounds.png``: the held-out score per round (0: the base model) with its 95% interval."""
    from prefkit.plotting import pyplot, save_figure

    points = [(0, base)] + [(r.round, r.heldout) for r in rounds]
    x = [k for k, _ in points]
    y = np.array([e.value for _, e in points])
    errors = np.array([[e.value - e.low for _, e in points], [e.high - e.value for _, e in points]])
    fig, ax = pyplot().subplots(figsize=(5.5, 3.6), constrained_layout=True)
    ax.errorbar(x, y, yerr=errors, marker="o", capsize=4)
    ax.set_xticks(x, ["base"] + [str(k) for k in x[1:]])
    ax.set_xlabel("round")
    ax.set_ylabel(f"held-out {scorer}")
    ax.set_title("held-out score per round (95% intervals)")
    save_figure(fig, path)
