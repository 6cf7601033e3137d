"""``prefkit audit``: the pairs whose label the scorers agree is wrong.

Every pair's two replies are scored by every scorer (``verify:``, ``reward-model:``,
``implicit:``, as ``prefkit score`` names them; with ``cross_fit=K``, also reward models trained
on the other folds). Each scorer votes: the chosen reply is better (its score is above the
rejected's by more than ``margin``), the rejected is better (below by more than ``margin``), a tie
(within it), or no vote (a scorer that cannot score the pair, such as a verifier on a prompt it
does not know). A pair is flagged when at least ``min_agree`` scorers vote that the rejected reply
is better (default: every scorer). Removing pairs flagged by several independent judges beats
flipping them or softening the loss (PrefCleanBench, arXiv 2509.23564), so ``drop`` is the
cleaning the report recommends; ``flip`` swaps the replies; ``flag`` keeps every pair and marks
the flagged ones in ``metadata.audit``.

A pairwise judge, ``judge:MODEL`` (a causal LM that reads the prompt and both replies, labelled A
and B, and is asked which is better: the verdict is whichever of " A" and " B" it gives more
probability next) or ``judge:MODULE:FUNCTION`` / ``judge:PATH.py:FUNCTION`` (a function
``(prompt, first, second) -> "A" | "B" | None``), reads every pair in both orders. Only a verdict
that survives the swap counts as a vote; a judge that picks a position rather than a reply
(position bias) gives verdicts that do not, and each is counted as ``inconsistent``, not guessed.

Cross-fitting: with ``cross_fit=K`` the pairs are dealt to K folds by prompt (a prompt is never in
two) and K reward models are trained from ``recipe``, each on the other K - 1 folds, each scoring
only its own fold: no pair is judged by a model that saw its prompt. Every pair's fold is kept in
the flagged file and the report counts, per fold, the scored pairs whose prompt the fold's model
trained on (always 0).

Files, beside the output: the cleaned pairs (``-o``), ``NAME.flagged.jsonl`` (each flagged pair
with every scorer's two scores and the reason), ``NAME.rejects.jsonl`` (each dropped or flipped
pair as a reject, reason ``flagged_label``), ``NAME.report.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prefkit.config import DEFAULT_SEED, check_fields, option
from prefkit.errors import UsageError
from prefkit.lm.evaluate import TRUST_REMOTE_CODE_HELP
from prefkit.progress import ReportProgress
from prefkit.results import Result

ACTIONS = ("flag", "drop", "flip")
VOTES = ("chosen", "rejected", "tie", "none")
JUDGE_QUESTION = (
    "Which response answers the user better? Reply with the letter only.\n\n"
    "User: {prompt}\n\nResponse A: {first}\n\nResponse B: {second}\n\nThe better response is"
)


@dataclass
class AuditConfig:
    """Options of ``prefkit audit``."""

    file: str = option(help="Canonical preference file to audit.")
    output: str = option(
        help="The audited pairs (.jsonl or .parquet): flagged ones marked, dropped or flipped by --action.",
        flags=("-o", "--output"),
    )
    scorers: list[str] = option(
        [],
        "verify:NAME|MODULE:FUNCTION|PATH.py:FUNCTION, reward-model:NAME|DIR, implicit:RUN[:REF], or a pairwise "
        "judge:MODEL|MODULE:FUNCTION (both orders; verdicts that do not survive the swap do not count); "
        "NAME=SPEC names it.",
        flags=("--scorer",),
        metavar="SPEC",
    )
    action: str = option(
        "flag", "flag: mark flagged pairs; drop: remove them; flip: swap their replies.", choices=ACTIONS
    )
    min_agree: int | None = option(
        None, "Flag a pair when at least this many scorers prefer its rejected reply (default: all of them).", min=1
    )
    margin: float = option(0.0, "A scorer prefers a reply only by more than this score gap; within it is a tie.", min=0)
    cross_fit: int | None = option(
        None, "Also train K reward models (--recipe), each on K-1 folds by prompt, each scoring its own fold.", min=2
    )
    recipe: str | None = option(None, "Reward-model recipe for --cross-fit (its method is set to reward).")
    work_dir: str | None = option(
        None, "Where --cross-fit trains its models; default NAME.cross-fit/ beside the output."
    )
    batch_size: int = option(16, "Replies per forward pass (model scorers).", min=1)
    max_length: int = option(1024, "Tokens per prompt + reply for model scorers.", min=8)
    seed: int = option(DEFAULT_SEED, "Seed of the folds.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.scorers and not self.cross_fit:
            raise UsageError("give at least one --scorer, or --cross-fit K with --recipe")
        if self.cross_fit and not self.recipe:
            raise UsageError("--cross-fit needs --recipe: the reward model recipe each fold trains")
        voters = len(self.scorers) + (1 if self.cross_fit else 0)
        if self.min_agree is not None and self.min_agree > voters:
            raise UsageError(f"--min-agree {self.min_agree}: there are only {voters} scorers")


@dataclass
class ScorerVotes:
    name: str
    spec: str
    prefers_chosen: int
    prefers_rejected: int
    ties: int
    no_vote: int
    inconsistent: int = 0
    """A judge's verdicts that changed with the order of the replies (counted among ``no_vote``)."""


@dataclass
class FoldSummary:
    fold: int
    model: str
    trained_pairs: int
    scored_pairs: int
    scored_prompts_seen_in_training: int
    """Pairs the fold's model scored whose prompt it trained on: 0 by construction, counted anyway."""
    trained: str = "new"
    """``new``; ``reused``: the folder already held this fold's finished model, trained by the same
    recipe on the same pairs (a rerun after an interrupted audit); ``resumed``: from its last checkpoint."""


@dataclass
class AuditResult(Result):
    """``pairs == written + dropped``; ``flagged`` of them agreed wrong by ``min_agree`` scorers."""

    output: str
    flagged_file: str
    pairs: int
    flagged: int
    action: str
    written: int
    dropped: int
    flipped: int
    min_agree: int
    margin: float
    scorers: list[ScorerVotes]
    by_source: dict[str, dict[str, int]]
    folds: list[FoldSummary] = field(default_factory=list)
    flagged_ids: list[str] = field(default_factory=list, repr=False)


def votes(chosen: np.ndarray, rejected: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Each pair's vote under one scorer: ``chosen``, ``rejected``, ``tie`` (within ``margin``) or
    ``none`` (a score missing, NaN).

    >>> votes(np.array([1.0, 0.0, 0.5, np.nan]), np.array([0.0, 1.0, 0.5, 1.0])).tolist()
    ['chosen', 'rejected', 'tie', 'none']
    >>> votes(np.array([1.0]), np.array([0.8]), margin=0.5).tolist()
    ['tie']
    """
    gap = chosen - rejected
    out = np.full(len(gap), "tie", dtype=object)
    out[gap > margin] = "chosen"
    out[gap < -margin] = "rejected"
    out[np.isnan(gap)] = "none"
    return out


def swap_votes(first_order: list[str | None], second_order: list[str | None]) -> np.ndarray:
    """A judge's vote per pair from its verdicts with the chosen reply shown first (``first_order``)
    and second (``second_order``): ``chosen`` or ``rejected`` when the two agree on the reply,
    ``inconsistent`` when they pick the same position (or differ otherwise), ``none`` when either
    is missing.

    >>> swap_votes(["A", "B", "A", None], ["B", "A", "A", "A"]).tolist()
    ['chosen', 'rejected', 'inconsistent', 'none']
    """
    out = []
    for one, two in zip(first_order, second_order, strict=True):
        if one is None or two is None:
            out.append("none")
        elif (one, two) == ("A", "B"):
            out.append("chosen")
        elif (one, two) == ("B", "A"):
            out.append("rejected")
        else:
            out.append("inconsistent")
    return np.array(out, dtype=object)


class ModelJudge:
    """A causal LM as a pairwise judge: the verdict is the more probable next token of " A" and " B"
    after :data:`JUDGE_QUESTION`, rendered with the judge's chat template."""

    def __init__(self, target: str, trust_remote_code: bool = False):
        from prefkit.lm.loading import load_policy

        self.model, self.tokenizer, _ = load_policy(target, trust_remote_code)
        self.model.eval()
        letters = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("A", "B")]
        if any(len(ids) != 1 for ids in letters):
            raise UsageError(f"judge:{target}: its tokenizer does not spell A and B as one token each")
        self.letters = [ids[0] for ids in letters]

    def __call__(self, prompt: str, first: str, second: str) -> str:
        import torch

        question = JUDGE_QUESTION.format(prompt=prompt, first=first, second=second)
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], add_generation_prompt=True, return_dict=False
            )
        else:
            ids = self.tokenizer(question)["input_ids"]
        with torch.inference_mode():
            logits = self.model(torch.tensor([list(ids)])).logits[0, -1]
        a, b = (float(logits[i]) for i in self.letters)
        return "A" if a >= b else "B"


def load_judge(target: str, trust_remote_code: bool = False):
    """A ``judge:`` scorer: a function named ``MODULE:FUNCTION`` or ``PATH.py:FUNCTION``, else a model."""
    from prefkit.data.verifiers import load_verifier

    where = target.rpartition(":")[0]
    if where and (where.endswith(".py") or "/" not in where):
        return load_verifier(target)
    return ModelJudge(target, trust_remote_code)


def judge_votes(judge, pairs: list[dict]) -> np.ndarray:
    """Every pair read by ``judge`` in both orders: :func:`swap_votes` of the two verdicts."""
    from prefkit.lm.score import user_text

    def verdict(value) -> str | None:
        return value if value in ("A", "B") else None

    first, second = [], []
    for p in pairs:
        question, chosen, rejected = user_text(p["prompt"]), reply_as_text(p["chosen"]), reply_as_text(p["rejected"])
        first.append(verdict(judge(question, chosen, rejected)))
        second.append(verdict(judge(question, rejected, chosen)))
    return swap_votes(first, second)


def reply_as_text(reply) -> str:
    """A canonical reply (text, or its assistant messages) as the text a scorer reads.

    >>> reply_as_text([{"role": "assistant", "content": "4"}])
    '4'
    """
    return reply if isinstance(reply, str) else "\n".join(m["content"] for m in reply)


def pair_records(pairs: list[dict]) -> list[dict]:
    """Canonical pairs as the records :func:`prefkit.lm.score.run_scorer` reads: two completions
    each, the chosen reply first."""
    return [
        {
            "id": p["id"],
            "prompt": p["prompt"],
            "reference": None,
            "completions": [{"text": reply_as_text(p["chosen"])}, {"text": reply_as_text(p["rejected"])}],
        }
        for p in pairs
    ]


def _as_array(values: list[list[float | None]]) -> tuple[np.ndarray, np.ndarray]:
    chosen = np.array([np.nan if row[0] is None else row[0] for row in values], dtype=float)
    rejected = np.array([np.nan if row[1] is None else row[1] for row in values], dtype=float)
    return chosen, rejected


def cross_fit_scores(
    config: AuditConfig, frame, progress: ReportProgress | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[FoldSummary]]:
    """Scores of every pair by a reward model trained on the other folds; returns ``(chosen,
    rejected, fold of each pair, fold summaries)``."""
    import polars as pl

    from prefkit.data.columns import FILE, LINE
    from prefkit.data.dedupe import prompt_key
    from prefkit.data.splits import grouped_folds
    from prefkit.data.writers import write_pairs
    from prefkit.lm.reward import load_reward_model, pair_rewards
    from prefkit.lm.train import load_train_recipe, run_state, train

    work = Path(config.work_dir) if config.work_dir else _sidecar(Path(config.output), "cross-fit")
    work.mkdir(parents=True, exist_ok=True)
    keys = frame.select(prompt_key()).to_series()
    folds = grouped_folds(keys, config.cross_fit, config.seed).to_numpy()
    chosen, rejected = np.full(frame.height, np.nan), np.full(frame.height, np.nan)
    summaries = []
    pairs = frame.drop([c for c in (LINE, FILE) if c in frame.columns])
    for k in range(config.cross_fit):
        if progress:
            progress(f"cross-fit: training fold {k + 1} of {config.cross_fit}", k, config.cross_fit)
        held = folds == k
        train_file = work / f"fold-{k}.train.jsonl"
        write_pairs(pairs.filter(pl.Series(~held)), train_file)
        run = work / f"fold-{k}"
        recipe = load_train_recipe(
            config.recipe, [f"data.train={train_file}", f"output_dir={run}", "method=reward", f"seed={config.seed}"]
        )
        # A rerun of an interrupted audit trains only the folds it had not finished.
        state = run_state(recipe)
        if state != "finished":
            train(recipe, resume="auto" if state == "checkpointed" else None)
        model, tokenizer = load_reward_model(str(run), config.trust_remote_code)
        rows = np.flatnonzero(held)
        c, r = pair_rewards(model, tokenizer, pairs[rows].to_dicts(), config.batch_size, config.max_length)
        chosen[rows], rejected[rows] = c, r
        seen = set(keys.filter(pl.Series(~held)).to_list())
        summaries.append(
            FoldSummary(
                fold=k,
                model=str(run),
                trained_pairs=int((~held).sum()),
                scored_pairs=len(rows),
                scored_prompts_seen_in_training=sum(keys[int(i)] in seen for i in rows),
                trained={"finished": "reused", "checkpointed": "resumed"}.get(state, "new"),
            )
        )
    return chosen, rejected, folds, summaries


def _sidecar(output: Path, kind: str) -> Path:
    from prefkit.data.writers import sidecar

    return sidecar(output, kind)


def audit(config: AuditConfig, progress: ReportProgress | None = None) -> AuditResult:
    """Scores both replies of every pair with every scorer, flags the pairs whose rejected reply
    ``min_agree`` scorers prefer, and writes the audited file, the flagged pairs, the rejects and the report."""
    import polars as pl

    from prefkit.atomic_files import check_outputs, line_sink, write_json
    from prefkit.data.columns import FILE, LINE
    from prefkit.data.validate import load_canonical
    from prefkit.data.writers import check_pairs_path, reject_line, write_pairs
    from prefkit.lm.score import ModelScoring, parse_scorers, run_scorer

    output = Path(config.output)
    check_pairs_path(output)
    flagged_path, rejects_path, report_path = (
        _sidecar(output, k) for k in ("flagged.jsonl", "rejects.jsonl", "report.json")
    )
    check_outputs(
        [("-o", output), ("flagged", flagged_path), ("rejects", rejects_path), ("report", report_path)], [config.file]
    )
    judges = [t for t in config.scorers if t.partition("=")[2].startswith("judge:") or t.startswith("judge:")]
    others = [t for t in config.scorers if t not in judges]
    specs = parse_scorers(others)
    frame = load_canonical(config.file, lines=True)
    pairs = frame.to_dicts()
    records = pair_records(pairs)
    options = ModelScoring(config.batch_size, config.max_length, config.trust_remote_code)
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    specs_text = dict(zip([s.name for s in specs], others, strict=True))
    for k, spec in enumerate(specs):
        if progress:
            progress(f"scoring with {spec.name}", k, len(specs))
        scores[spec.name] = _as_array(run_scorer(spec, records, options))
    folds, fold_of = [], None
    if config.cross_fit:
        if "cross_fit" in scores:
            raise UsageError("a scorer is named cross_fit, the name --cross-fit gives its scores: rename it")
        c, r, fold_of, folds = cross_fit_scores(config, frame, progress)
        scores["cross_fit"] = (c, r)
        specs_text["cross_fit"] = f"cross-fit:{config.cross_fit} folds of {config.recipe}"
    voted = {name: votes(c, r, config.margin) for name, (c, r) in scores.items()}
    for text in judges:
        name, _, spec = text.partition("=") if not text.startswith("judge:") else ("", "", text)
        name = name or "judge"
        if name in voted:
            raise UsageError(f"two scorers are both named {name}: name them, NAME=SPEC")
        if progress:
            progress(f"judging with {name}", 0, None)
        voted[name] = judge_votes(load_judge(spec.removeprefix("judge:"), config.trust_remote_code), pairs)
        specs_text[name] = text
    min_agree = config.min_agree or len(voted)
    against = sum((v == "rejected").astype(int) for v in voted.values())
    flagged = against >= min_agree
    summaries = [
        ScorerVotes(
            name,
            specs_text[name],
            *(int((v == kind).sum()) for kind in ("chosen", "rejected", "tie")),
            no_vote=int(((v == "none") | (v == "inconsistent")).sum()),
            inconsistent=int((v == "inconsistent").sum()),
        )
        for name, v in voted.items()
    ]

    def reason(i: int) -> str:
        return f"{int(against[i])} of {len(voted)} scorers prefer the rejected reply (min_agree {min_agree})"

    flagged_lines = []
    for i in np.flatnonzero(flagged):
        entry = {
            "id": pairs[i]["id"],
            "source": pairs[i]["source"],
            "line": pairs[i][LINE],
            "reason": reason(i),
            "scores": {
                name: {"chosen": _plain(c[i]), "rejected": _plain(r[i]), "vote": voted[name][i]}
                for name, (c, r) in scores.items()
            }
            | {name: {"vote": voted[name][i]} for name in voted if name not in scores},
        }
        if fold_of is not None:
            entry["fold"] = int(fold_of[i])
        flagged_lines.append(json.dumps(entry | {"pair": _pair(pairs[i])}, ensure_ascii=False))

    mark = pl.Series("flagged", flagged)
    audited = _with_audit_metadata(
        frame.drop([c for c in (LINE, FILE) if c in frame.columns]),
        mark,
        "flipped" if config.action == "flip" else "flagged",
    )
    reject_lines = []
    if config.action == "drop":
        audited = audited.filter(~mark)
    elif config.action == "flip":
        audited = swap_replies(audited, mark)
    if config.action in ("drop", "flip"):
        for i in np.flatnonzero(flagged):
            detail = f"{reason(i)}; {'dropped' if config.action == 'drop' else 'flipped'}"
            reject_lines.append(
                reject_line(
                    config.file,
                    pairs[i][LINE],
                    "flagged_label",
                    detail,
                    json.dumps(_pair(pairs[i]), ensure_ascii=False),
                    True,
                )
            )
    write_pairs(audited, output)
    with line_sink(flagged_path) as write:
        write(flagged_lines)
    with line_sink(rejects_path) as write:
        write(reject_lines)
    sources = frame["source"].to_list()
    by_source: dict[str, dict[str, int]] = {}
    for i, source in enumerate(sources):
        counts = by_source.setdefault(source, {"pairs": 0, "flagged": 0})
        counts["pairs"] += 1
        counts["flagged"] += int(flagged[i])
    n_flagged = int(flagged.sum())
    result = AuditResult(
        output=str(output),
        flagged_file=str(flagged_path),
        pairs=len(pairs),
        flagged=n_flagged,
        action=config.action,
        written=audited.height,
        dropped=n_flagged if config.action == "drop" else 0,
        flipped=n_flagged if config.action == "flip" else 0,
        min_agree=min_agree,
        margin=config.margin,
        scorers=summaries,
        by_source=by_source,
        folds=folds,
        flagged_ids=[pairs[i]["id"] for i in np.flatnonzero(flagged)],
    )
    write_json(result.to_dict(), report_path)
    return result


def swap_replies(frame, mask):
    """``frame`` with chosen and rejected (and their scores) swapped where ``mask`` is true.

    >>> import polars as pl
    >>> pairs = pl.DataFrame({"chosen": ["4", "6"], "rejected": ["5", "7"], "score_chosen": [1.0, 2.0],
    ...                       "score_rejected": [0.0, 3.0]})
    >>> swap_replies(pairs, pl.Series([False, True])).rows()
    [('4', '5', 1.0, 0.0), ('7', '6', 3.0, 2.0)]
    """
    import polars as pl

    swapped = {
        "chosen": "rejected",
        "rejected": "chosen",
        "score_chosen": "score_rejected",
        "score_rejected": "score_chosen",
    }
    return frame.with_columns(
        **{name: pl.when(mask).then(pl.col(other)).otherwise(pl.col(name)) for name, other in swapped.items()}
    )


def _plain(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


def _pair(row: dict) -> dict:
    from prefkit.data.columns import FILE, LINE

    return {k: v for k, v in row.items() if k not in (LINE, FILE)}


def _with_audit_metadata(frame, mark, label: str):
    """``metadata.audit`` is ``label`` on the marked pairs and null elsewhere (metadata values are strings)."""
    import polars as pl

    audit_value = pl.when(pl.Series(mark)).then(pl.lit(label)).otherwise(pl.lit(None, dtype=pl.String))
    if "metadata" in frame.columns:
        return frame.with_columns(pl.col("metadata").struct.with_fields(audit_value.alias("audit")))
    return frame.with_columns(pl.struct(audit_value.alias("audit")).alias("metadata"))
