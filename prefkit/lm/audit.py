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
from prefkit.lm.loading import TRUST_REMOTE_CODE_HELP
from prefkit.lm.scorers import FAIL_ON_SCORER_ERROR_HELP, JUDGE_HELP, ServerScorerOptions, reply_as_text
from prefkit.lm.serving import Ledger
from prefkit.progress import ReportProgress
from prefkit.results import Result

ACTIONS = ("flag", "drop", "flip")
VOTES = ("chosen", "rejected", "tie", "none")


@dataclass
class AuditConfig(ServerScorerOptions):
    """Options of ``prefkit audit``."""

    file: str = option(help="Canonical preference file to audit.")
    output: str = option(
        help="The audited pairs (.jsonl or .parquet): flagged ones marked, dropped or flipped by --action.",
        flags=("-o", "--output"),
    )
    scorers: list[str] = option([], JUDGE_HELP, flags=("--scorer",), metavar="SPEC")
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
    fail_on_scorer_error: bool = option(False, FAIL_ON_SCORER_ERROR_HELP)

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
    reasons: dict[str, int] = field(default_factory=dict)
    """Pairs the scorer failed on, by reason (``scorer_error``, ``invalid_score``; counted among ``no_vote``)."""
    bias: JudgeBias | None = None
    """A pairwise judge's position and length bias, and its agreement with the other scorers."""
    ledger: Ledger | None = None
    """A server-backed scorer's requests, retries, cache hits and tokens."""


@dataclass
class JudgeBias:
    """How a pairwise judge leans (FastChat measured GPT-4 at 12.9% position flips and 68% longer-wins).

    ``position_flip_rate``: of the pairs judged in both orders, the share whose verdict picked the
    same position both times, so changed its reply with the order; ``longer_wins``: of its decisive
    verdicts on pairs of unequal length (in words), the share that picked the longer reply;
    ``agreement``: per other scorer, of the pairs both voted on decisively, the share they agree on.
    """

    judged: int
    position_flip_rate: float | None
    decisive: int
    longer_wins: float | None
    agreement: dict[str, float | None] = field(default_factory=dict)


def judge_bias(votes_: np.ndarray, pairs: list[dict], others: dict[str, np.ndarray]) -> JudgeBias:
    """The :class:`JudgeBias` of one judge's votes.

    >>> pairs = [{"chosen": "a long right reply", "rejected": "no"}, {"chosen": "yes", "rejected": "a long wrong one"}]
    >>> bias = judge_bias(np.array(["chosen", "rejected"], dtype=object), pairs, {"v": np.array(["chosen", "chosen"])})
    >>> bias.position_flip_rate, bias.longer_wins, bias.agreement
    (0.0, 1.0, {'v': 0.5})
    """
    judged = int(np.isin(votes_, ["chosen", "rejected", "inconsistent"]).sum())
    decisive = np.isin(votes_, ["chosen", "rejected"])
    words = np.array([[len(reply_as_text(p[side]).split()) for side in ("chosen", "rejected")] for p in pairs])
    unequal = decisive & (words[:, 0] != words[:, 1]) if len(pairs) else decisive
    chosen_longer = words[:, 0] > words[:, 1] if len(pairs) else decisive
    picked_longer = np.where(votes_ == "chosen", chosen_longer, ~chosen_longer)
    agreement = {}
    for name, other in others.items():
        both = decisive & np.isin(other, ["chosen", "rejected"])
        agreement[name] = round(float((votes_[both] == other[both]).mean()), 4) if both.any() else None
    return JudgeBias(
        judged=judged,
        position_flip_rate=round(float((votes_ == "inconsistent").sum() / judged), 4) if judged else None,
        decisive=int(decisive.sum()),
        longer_wins=round(float(picked_longer[unequal].mean()), 4) if unequal.any() else None,
        agreement=agreement,
    )


@dataclass
class SourceFlags:
    """One source's pairs, and how many of them were flagged."""

    pairs: int
    flagged: int


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
    by_source: dict[str, SourceFlags]
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


def pair_records(pairs: list[dict]) -> list[dict]:
    """Canonical pairs as the records :func:`prefkit.lm.scorers.run_scorer` reads: two completions
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
    from prefkit.data.keys import prompt_key
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


@dataclass
class CollectedVotes:
    """Every scorer's vote on every pair (``voted``), the scores behind the completion scorers'
    votes, each scorer's spec as written, and (cross-fitting) each pair's fold."""

    voted: dict[str, np.ndarray]
    scores: dict[str, tuple[np.ndarray, np.ndarray]]
    specs: dict[str, str]
    failures: dict[str, dict[str, int]]
    folds: list[FoldSummary] = field(default_factory=list)
    fold_of: np.ndarray | None = None
    judges: set[str] = field(default_factory=set)
    """The pairwise judges among the scorers."""
    ledgers: dict[str, Ledger | None] = field(default_factory=dict)


def collect_votes(config: AuditConfig, frame, pairs: list[dict], progress: ReportProgress | None) -> CollectedVotes:
    """Asks every scorer of the registry for its vote on every pair: completion scorers score both
    replies (:func:`votes` turns the two scores into a vote), pairwise judges read both orders, and
    with ``cross_fit`` the fold models score the pairs they never trained on."""
    from prefkit.lm.scorers import SCORER_KINDS, ModelScoring, http_scoring, parse_scorers, run_scorer

    specs = parse_scorers(config.scorers, pairwise=True)
    http = http_scoring(config, specs, config.output)
    if config.cross_fit and "cross_fit" in [s.name for s in specs]:
        raise UsageError("a scorer is named cross_fit, the name --cross-fit gives its scores: rename it")
    options = ModelScoring(
        config.batch_size, config.max_length, config.trust_remote_code, config.fail_on_scorer_error, http
    )
    records = pair_records(pairs)
    collected = CollectedVotes({}, {}, {}, {})
    for k, spec in enumerate(specs):
        if progress:
            progress(f"{'judging' if spec.pairwise else 'scoring'} with {spec.name}", k, len(specs))
        if spec.pairwise:
            verdicts = SCORER_KINDS[spec.kind].vote(spec, pairs, options)
            collected.voted[spec.name], failures = verdicts.votes, verdicts.failures
            collected.judges.add(spec.name)
            collected.ledgers[spec.name] = verdicts.ledger
        else:
            scored = run_scorer(spec, records, options)
            collected.scores[spec.name] = _as_array(scored.values)
            collected.voted[spec.name], failures = votes(*collected.scores[spec.name], config.margin), scored.failures
            collected.ledgers[spec.name] = scored.ledger
        collected.specs[spec.name] = spec.text
        collected.failures[spec.name] = _reason_counts(f.reason for f in failures)
    if config.cross_fit:
        c, r, collected.fold_of, collected.folds = cross_fit_scores(config, frame, progress)
        collected.scores["cross_fit"] = (c, r)
        collected.voted["cross_fit"] = votes(c, r, config.margin)
        collected.specs["cross_fit"] = f"cross-fit:{config.cross_fit} folds of {config.recipe}"
        collected.failures["cross_fit"] = {}
    # Completion scorers vote first, then the fold models, then judges: the report's order.
    order = [s.name for s in specs if not s.pairwise] + (["cross_fit"] if config.cross_fit else [])
    order += [s.name for s in specs if s.pairwise]
    collected.voted = {name: collected.voted[name] for name in order}
    return collected


def _reason_counts(reasons) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    return counts


@dataclass
class Flags:
    """Which pairs are flagged: ``against`` counts the scorers preferring each pair's rejected reply."""

    flagged: np.ndarray
    against: np.ndarray
    voters: int
    min_agree: int

    def reason(self, i: int) -> str:
        return f"{int(self.against[i])} of {self.voters} scorers prefer the rejected reply (min_agree {self.min_agree})"


def flag_pairs(voted: dict[str, np.ndarray], min_agree: int | None) -> Flags:
    """A pair is flagged when at least ``min_agree`` scorers (default: all) vote its rejected reply better.

    >>> flags = flag_pairs({"a": np.array(["rejected", "chosen"]), "b": np.array(["rejected", "rejected"])}, None)
    >>> flags.flagged.tolist(), flags.reason(1)
    ([True, False], '1 of 2 scorers prefer the rejected reply (min_agree 2)')
    """
    need = min_agree or len(voted)
    against = sum((v == "rejected").astype(int) for v in voted.values())
    return Flags(np.asarray(against >= need), np.asarray(against), len(voted), need)


def scorer_votes(collected: CollectedVotes, pairs: list[dict]) -> list[ScorerVotes]:
    """Each scorer's votes counted by kind; for a pairwise judge, its bias too."""
    out = []
    for name, v in collected.voted.items():
        bias = None
        if name in collected.judges:
            others = {other: votes_ for other, votes_ in collected.voted.items() if other != name}
            bias = judge_bias(v, pairs, others)
        out.append(
            ScorerVotes(
                name,
                collected.specs[name],
                *(int((v == kind).sum()) for kind in ("chosen", "rejected", "tie")),
                no_vote=int(((v == "none") | (v == "inconsistent")).sum()),
                inconsistent=int((v == "inconsistent").sum()),
                reasons=collected.failures[name],
                bias=bias,
                ledger=collected.ledgers.get(name),
            )
        )
    return out


def flagged_entries(pairs: list[dict], collected: CollectedVotes, flags: Flags) -> list[str]:
    """The flagged file's lines: each flagged pair with every scorer's scores and vote, and its fold."""
    from prefkit.data.columns import LINE

    lines = []
    for i in np.flatnonzero(flags.flagged):
        entry = {
            "id": pairs[i]["id"],
            "source": pairs[i]["source"],
            "line": pairs[i][LINE],
            "reason": flags.reason(i),
            "scores": {
                name: {"chosen": _plain(c[i]), "rejected": _plain(r[i]), "vote": collected.voted[name][i]}
                for name, (c, r) in collected.scores.items()
            }
            | {name: {"vote": collected.voted[name][i]} for name in collected.voted if name not in collected.scores},
        }
        if collected.fold_of is not None:
            entry["fold"] = int(collected.fold_of[i])
        lines.append(json.dumps(entry | {"pair": _pair(pairs[i])}, ensure_ascii=False))
    return lines


def apply_action(frame, pairs: list[dict], flags: Flags, action: str, file: str):
    """The audited pairs (flagged ones marked, dropped or flipped) and a reject line for each pair
    dropped or flipped."""
    import polars as pl

    from prefkit.data.columns import FILE, LINE
    from prefkit.data.writers import reject_line

    mark = pl.Series("flagged", flags.flagged)
    audited = _with_audit_metadata(
        frame.drop([c for c in (LINE, FILE) if c in frame.columns]), mark, "flipped" if action == "flip" else "flagged"
    )
    if action == "drop":
        audited = audited.filter(~mark)
    elif action == "flip":
        audited = swap_replies(audited, mark)
    reject_lines = []
    if action in ("drop", "flip"):
        done = "dropped" if action == "drop" else "flipped"
        for i in np.flatnonzero(flags.flagged):
            pair = json.dumps(_pair(pairs[i]), ensure_ascii=False)
            reject_lines.append(
                reject_line(file, pairs[i][LINE], "flagged_label", f"{flags.reason(i)}; {done}", pair, True)
            )
    return audited, reject_lines


def flags_by_source(sources: list[str], flagged: np.ndarray) -> dict[str, SourceFlags]:
    """Pairs and flagged pairs per source, in the order sources first appear.

    >>> flags_by_source(["a", "b", "a"], np.array([True, False, False]))
    {'a': SourceFlags(pairs=2, flagged=1), 'b': SourceFlags(pairs=1, flagged=0)}
    """
    out: dict[str, SourceFlags] = {}
    for source, is_flagged in zip(sources, flagged.tolist(), strict=True):
        counts = out.setdefault(source, SourceFlags(0, 0))
        counts.pairs += 1
        counts.flagged += int(is_flagged)
    return out


def audit(config: AuditConfig, progress: ReportProgress | None = None) -> AuditResult:
    """Scores both replies of every pair with every scorer, flags the pairs whose rejected reply
    ``min_agree`` scorers prefer, and writes the audited file, the flagged pairs, the rejects and the report."""
    from prefkit.atomic_files import check_outputs, line_sink, write_json
    from prefkit.data.validate import load_canonical
    from prefkit.data.writers import check_pairs_path, write_pairs

    output = Path(config.output)
    check_pairs_path(output)
    flagged_path, rejects_path, report_path = (
        _sidecar(output, k) for k in ("flagged.jsonl", "rejects.jsonl", "report.json")
    )
    from prefkit.lm.scorers import http_scoring, parse_scorers

    http = http_scoring(config, parse_scorers(config.scorers, pairwise=True), output)
    named = [("-o", output), ("flagged", flagged_path), ("rejects", rejects_path), ("report", report_path)]
    check_outputs([*named, *([("--cache", Path(http.cache))] if http else [])], [config.file])
    frame = load_canonical(config.file, lines=True)
    pairs = frame.to_dicts()
    collected = collect_votes(config, frame, pairs, progress)
    flags = flag_pairs(collected.voted, config.min_agree)
    audited, reject_lines = apply_action(frame, pairs, flags, config.action, config.file)
    write_pairs(audited, output)
    with line_sink(flagged_path) as write:
        write(flagged_entries(pairs, collected, flags))
    with line_sink(rejects_path) as write:
        write(reject_lines)
    n_flagged = int(flags.flagged.sum())
    result = AuditResult(
        output=str(output),
        flagged_file=str(flagged_path),
        pairs=len(pairs),
        flagged=n_flagged,
        action=config.action,
        written=audited.height,
        dropped=n_flagged if config.action == "drop" else 0,
        flipped=n_flagged if config.action == "flip" else 0,
        min_agree=flags.min_agree,
        margin=config.margin,
        scorers=scorer_votes(collected, pairs),
        by_source=flags_by_source(frame["source"].to_list(), flags.flagged),
        folds=collected.folds,
        flagged_ids=[pairs[i]["id"] for i in np.flatnonzero(flags.flagged)],
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
