"""How the CLI shows each result: rich tables on stdout, one line per problem on stderr.

The one place that prints. Each command gets a typed result from one library call and hands it to
its renderer here; ``--json`` prints ``result.to_dict()`` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from prefkit.cli.output import console, counts_text, err_console, reasons_text
from prefkit.lm.token_audit import reason_counts

if TYPE_CHECKING:
    from prefkit.data.card import CardResult
    from prefkit.data.convert import ConvertResult
    from prefkit.data.dedupe import DedupeResult
    from prefkit.data.mix import MixResult
    from prefkit.data.sample_data import SampleResult
    from prefkit.data.validate import CheckExample, FileValidation, ValidationReport
    from prefkit.lm.answer_eval import AnswerMetrics
    from prefkit.lm.audit import AuditResult
    from prefkit.lm.compare import Answers, CompareResult
    from prefkit.lm.evaluate import EvalResult
    from prefkit.lm.generate import GenerateResult
    from prefkit.lm.lint import LintResult
    from prefkit.lm.loop import LoopResult
    from prefkit.lm.score import ScoreResult
    from prefkit.lm.train import TrainResult


def converted(result: ConvertResult) -> None:
    """``prefkit convert``: the counts per source, and where everything went."""
    conversion(result, "prefkit convert")
    if result.unpaired is not None:
        u = result.unpaired
        console.print(
            f"unpaired: {u.records:,} records, desirable {u.desirable:,}, undesirable {u.undesirable:,}",
            highlight=False,
        )
    console.print(f"wrote {result.output} ({result.style}), rejects {result.rejects}, report {result.report}")


def validation(report: ValidationReport) -> None:
    """``prefkit validate``: each file's checks (or the dry run's rejects), the gates, the tokens, the verdict."""
    for result in report.files:
        file_validation(result)
    if report.conversion is not None:
        conversion(report.conversion, "prefkit validate --format (dry run: nothing written)", True)
    gates(report)
    if report.tokens is not None:
        token_audit(report.tokens.audit, f"tokens under {report.tokens.config.model}")
    if not report.ok:
        err_console.print(
            f"[bold red]failed:[/] {report.failing:,} of {report.records:,} records fail"
            + (f"; gates failed: {', '.join(report.gates_failed)}" if report.gates_failed else "")
        )


def mixed(result: MixResult) -> None:
    """``prefkit mix``: what happened to each source's pairs, the split sizes and the files."""
    table = Table(title=f"prefkit mix -> {result.out_dir}", title_justify="left")
    columns = ("read", "rejected", "deduped", "decontaminated", "not_sampled", "repeated", "kept")
    table.add_column("source")
    for column in columns:
        table.add_column(column, justify="right")
    for c in result.sources:
        table.add_row(Path(c.source).name, *(f"{getattr(c, k):,}" for k in columns))
    console.print(table)
    console.print(f"train {result.train:,}, test {result.test:,}; removed: {counts_text(result.removed)}")
    console.print(f"wrote {', '.join(result.files.values())}")


def deduped(result: DedupeResult) -> None:
    """``prefkit dedupe``: the counts and the three files."""
    console.print(
        f"read {result.read:,}, rejected {result.rejected:,}, removed: {counts_text(result.removed)}, "
        f"wrote {result.written:,}"
    )
    console.print(f"wrote {result.output}, removals {result.removed_file}, rejects {result.rejects}")


def sampled(result: SampleResult) -> None:
    """``prefkit sample``: the files written."""
    console.print(f"wrote train: {result.train}")
    console.print(f"wrote heldout: {result.heldout}")


def carded(result: CardResult) -> None:
    """``prefkit card``: the card written."""
    console.print(f"wrote {result.card}")


def compared(result: CompareResult) -> None:
    """``prefkit compare``: the answers side by side."""
    console.print(answers_table(result.answers, f"prefkit compare: {result.model}"))


def linted(result: LintResult) -> None:
    """``prefkit lint``: the token audit."""
    token_audit(result.audit, f"prefkit lint: {', '.join(result.files)} under {result.config.model}")


def trained(result: TrainResult) -> None:
    """``prefkit train``: the final metrics and what happened to every pair on the way into the trainer."""
    table = Table(title=f"prefkit train -> {result.output_dir} ({result.steps} steps)", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(result.metrics.items()):
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    t = result.tokens
    dropped = f" ({counts_text(t.dropped_reasons)})" if t.dropped else ""
    console.print(
        f"{t.unit}: read {t.read:,}, trained {t.trained:,}, dropped {t.dropped:,}{dropped}, "
        f"truncated {t.truncated:,}, trimmed {t.trimmed:,}; see token_report.json and dropped.jsonl",
        highlight=False,
    )
    if t.errors > t.dropped:
        console.print(f"token errors in pairs that trained: {counts_text(t.reasons)} (prefkit lint lists them)")


def generated(result: GenerateResult) -> None:
    """``prefkit generate``: the account of every prompt and completion, and the files."""
    rejected = f" ({counts_text(result.reasons)})" if result.rejected else ""
    console.print(
        f"read {result.read:,}: prompts {result.prompts:,}, duplicates {result.duplicates:,}, "
        f"rejected {result.rejected:,}{rejected}",
        highlight=False,
    )
    resumed = f"; {result.resumed_batches} batches from the interrupted run" if result.resumed_batches else ""
    console.print(
        f"completions {result.completions:,} ({counts_text(result.finish_reasons)}), "
        f"mean {result.mean_tokens:g} tokens, engine {result.engine}{resumed}",
        highlight=False,
    )
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"wrote {result.output}")
    if result.ledger is not None:
        console.print(f"ledger: {result.ledger.line()}", highlight=False)


def scored(result: ScoreResult) -> None:
    """``prefkit score``: each scorer's coverage and mean, and which one ranks."""
    table = Table(
        title=f"prefkit score: {result.prompts:,} prompts, {result.completions:,} completions", title_justify="left"
    )
    for column in ("scorer", "spec", "scored", "unscored", "mean"):
        table.add_column(column, justify="left" if column in ("scorer", "spec") else "right")
    for s in result.scorers:
        mean = "" if s.mean is None else f"{s.mean:.4g}"
        table.add_row(
            s.name + (" (ranks)" if s.name == result.rank_by else ""), s.spec, f"{s.scored:,}", f"{s.unscored:,}", mean
        )
    console.print(table)
    if result.rejected:
        console.print(
            f"read {result.read:,} lines: scored {result.prompts:,}, rejected {result.rejected:,} "
            f"({counts_text(result.reasons)})",
            highlight=False,
        )
    for s in result.scorers:
        if s.reasons:
            console.print(f"unscored by {s.name}: {counts_text(s.reasons)}", highlight=False)
        if s.ledger is not None:
            console.print(f"ledger {s.name}: {s.ledger.line()}", highlight=False)
    console.print(f"wrote {result.output}; binarize it with prefkit convert {result.output} -o pairs.jsonl")


def audited(result: AuditResult) -> None:
    """``prefkit audit``: each scorer's votes, the flagged pairs per source, and what the action did."""
    table = Table(
        title=f"prefkit audit: {result.pairs:,} pairs, {result.flagged:,} flagged "
        f"(at least {result.min_agree} of {len(result.scorers)} scorers prefer the rejected reply)",
        title_justify="left",
    )
    for column in ("scorer", "prefers chosen", "prefers rejected", "ties", "no vote (inconsistent)"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    for s in result.scorers:
        no_vote = f"{s.no_vote:,}" + (f" ({s.inconsistent:,})" if s.inconsistent else "")
        table.add_row(s.name, f"{s.prefers_chosen:,}", f"{s.prefers_rejected:,}", f"{s.ties:,}", no_vote)
    console.print(table)
    for s in result.scorers:
        if s.ledger is not None:
            console.print(f"ledger {s.name}: {s.ledger.line()}", highlight=False)
        if s.bias is not None:
            b = s.bias
            flips = "-" if b.position_flip_rate is None else f"{b.position_flip_rate:.1%}"
            longer = "-" if b.longer_wins is None else f"{b.longer_wins:.1%}"
            agree = "".join(f", agrees with {k} on {v:.1%}" for k, v in b.agreement.items() if v is not None)
            console.print(
                f"judge {s.name}: position flips {flips} of {b.judged:,} pairs judged both ways; "
                f"picks the longer reply in {longer} of {b.decisive:,} decisive verdicts{agree}",
                highlight=False,
            )
    for f in result.folds:
        console.print(
            f"fold {f.fold}: model trained on {f.trained_pairs:,} pairs scored {f.scored_pairs:,} "
            f"(prompts it trained on: {f.scored_prompts_seen_in_training})"
            + ("" if f.trained == "new" else f"; model {f.trained} from {f.model}"),
            highlight=False,
        )
    sources = ", ".join(f"{name} {c.flagged:,}/{c.pairs:,}" for name, c in result.by_source.items())
    console.print(f"flagged by source: {sources}", highlight=False)
    done = {
        "flag": "marked in metadata.audit",
        "drop": f"dropped {result.dropped:,}",
        "flip": f"flipped {result.flipped:,}",
    }
    console.print(
        f"{done[result.action]}; wrote {result.written:,} pairs to {result.output}; flagged pairs in {result.flagged_file}",
        highlight=False,
    )


def answer_scores(answers: AnswerMetrics) -> None:
    """The model's own answers, scored before and after, with the paired difference."""

    def interval(e) -> str:
        return f"{e.value:.3f}\n({e.low:.3f}–{e.high:.3f})"

    title = (
        f"the model's own answers: {answers.prompts:,} held-out prompts, {answers.decoding}, "
        f"at most {answers.max_new_tokens} tokens; before = {answers.before_model}"
    )
    table = Table(title=title, title_justify="left", show_lines=bool(answers.groups))
    for column in ("score", "prompts", "before", "after", "after - before"):
        table.add_column(column, justify="left" if column == "score" else "right", no_wrap=column == "score")
    rows = [(change.scorer, change) for change in answers.scores]
    rows += [(f"  {group.group}", change) for group in answers.groups for change in group.scores]
    for label, change in rows:
        table.add_row(
            label, f"{change.prompts:,}", interval(change.before), interval(change.after), interval(change.difference)
        )
    console.print(table)
    console.print(
        f"mean answer length {answers.mean_tokens_before:g} -> {answers.mean_tokens_after:g} tokens; "
        f"cut at the limit {answers.cut_at_max_before:,} -> {answers.cut_at_max_after:,}",
        highlight=False,
    )
    if answers.examples:
        examples = Table(title="examples, before and after", title_justify="left", show_lines=True)
        for column in ("prompt", "before", "after"):
            examples.add_column(column, ratio=1)
        mark = lambda v: "" if v is None else (" [green]✓[/]" if v >= 1 else " [red]✗[/]" if v <= 0 else f" ({v:.3g})")
        for e in answers.examples:
            examples.add_row(e.prompt, escape(e.before) + mark(e.before_score), escape(e.after) + mark(e.after_score))
        console.print(examples)


def conversion(result, title: str, examples: bool = False) -> None:
    table = Table(title=title, title_justify="left")
    expanded = any(s.candidates != s.read for s in result.sources)
    counted = ("read", "candidates", "written", "rejected") if expanded else ("read", "written", "rejected")
    for column in ("source", "format", *counted, "reasons"):
        table.add_column(column, justify="right" if column in counted else "left")
    for s in result.sources:
        table.add_row(Path(s.source).name, s.format, *(f"{getattr(s, c):,}" for c in counted), reasons_text(s.reasons))
    if len(result.sources) > 1:
        table.add_row("[bold]total", "", *(f"{getattr(result, c):,}" for c in counted), "")
    console.print(table)
    if examples and result.first_rejects:
        listed = Table(title="records that would be rejected", title_justify="left")
        for column in ("source", "line", "reason", "detail"):
            listed.add_column(column, overflow="fold")
        by_reason: dict[str, int] = {}
        for r in result.first_rejects:
            # A few lines per reason: the table is for reading; --json and --report have them all.
            if by_reason.setdefault(r.reason, 0) < 3:
                by_reason[r.reason] += 1
                listed.add_row(Path(r.source).name, str(r.line), r.reason, str(r.detail or ""))
        console.print(listed)


def file_validation(result: FileValidation, target=console) -> None:
    if result.ok:
        what = "unpaired records" if result.kind == "unpaired" else "rows"
        target.print(f"[green]ok[/] {result.path}: {result.rows:,} {what}, {result.style} style", soft_wrap=True)
        return
    table = Table(title=f"{result.path}: {result.rows:,} rows, {result.style} style", title_justify="left")
    for column in ("check", "column", "rows", "examples"):
        table.add_column(column)
    for f in result.failures:
        table.add_row(f.description, f.column, f"{f.rows:,}", _examples(f.examples))
    target.print(table)
    if result.hint:
        target.print(f"hint: {result.hint}", highlight=False)


def gates(report) -> None:
    if report.overlap is not None:
        if not report.overlap:
            console.print("[green]ok[/] no training prompt matches an evaluation prompt")
        else:
            table = Table(
                title=f"{len(report.overlap):,} training prompts match evaluation prompts", title_justify="left"
            )
            for column in ("file", "line", "matches", "method", "prompt"):
                table.add_column(column, overflow="fold")
            for m in report.overlap[:20]:
                table.add_row(
                    Path(m.file).name,
                    str(m.line),
                    f"{Path(m.duplicate_of_file).name}:{m.duplicate_of_line}",
                    m.method + (f" {m.similarity:.2f}" if m.similarity is not None else ""),
                    m.prompt[:80],
                )
            console.print(table)
    if report.duplicates is not None:
        d = report.duplicates
        mark = "[red]failed[/]" if d.failed else "[green]ok[/]"
        console.print(
            f"{mark} exact duplicate pairs: {d.duplicates:,} of {d.pairs:,} ({d.share:.2%}, max {d.max_share:.2%})"
        )


def token_audit(audit, title: str) -> None:
    table = Table(
        title=f"{title}: {audit.pairs:,} pairs, {audit.ok:,} ok, {audit.errors:,} with errors", title_justify="left"
    )
    for column in ("", "prompt", "chosen", "rejected", "pair"):
        table.add_column(column, justify="right" if column else "left")
    for q in ("p5", "p50", "p95", "max"):
        values = (getattr(getattr(audit.lengths, part), q) for part in ("prompt", "chosen", "rejected", "pair"))
        table.add_row(f"tokens {q}", *("-" if v is None else str(v) for v in values))
    console.print(table)
    t = audit.truncated
    console.print(
        f"truncated: {t.pairs:,} pairs (chosen only {t.chosen:,}, rejected only {t.rejected:,}, "
        f"both {t.both:,}), {t.tokens_lost:,} tokens lost",
        highlight=False,
    )
    kept = audit.long_prompts.kept
    console.print(
        f"pairs training keeps: {kept.drop:,} with long_prompts drop, {kept.trim_turns:,} with trim_turns",
        highlight=False,
    )
    for source, bias in audit.length_bias.items():
        console.print(
            f"length bias {Path(source).name}: chosen longer in {bias.chosen_longer:.1%}, "
            f"mean difference {bias.mean_difference:+.1f} tokens",
            highlight=False,
        )
    if audit.errors:
        errors = Table(title="pairs with errors", title_justify="left")
        for column in ("reason", "pairs", "examples"):
            errors.add_column(column, overflow="fold")
        for reason, count in audit.reasons.items():
            first = [r for r in audit.error_records if r.reason == reason][:3]
            examples = "; ".join(f"{Path(str(r.source)).name}:{r.line} {r.detail}" for r in first)
            errors.add_row(reason, f"{count:,}", examples)
        console.print(errors)


def evaluation(result: EvalResult) -> None:
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
        ("pairwise accuracy", m.pairwise_accuracy, None),
        ("implicit-reward accuracy", m.implicit_reward_accuracy, None),
        ("mean reward margin", m.reward_margin, None),
        ("log-prob accuracy", m.logprob_accuracy, m.reference_logprob_accuracy),
        ("log-prob accuracy per token", m.logprob_accuracy_per_token, m.reference_logprob_accuracy_per_token),
    ]
    for name, estimate, before in rows:
        if estimate is not None:
            table.add_row(name, *cells(estimate), *(cells(before) if len(columns) > 3 else []))
    console.print(table)
    console.print(
        f"ties {m.ties:,} (count half), truncated {m.truncated:,}, not scored {len(m.unscored):,}"
        + (f" ({counts_text(reason_counts(m.unscored))})" if m.unscored else ""),
        highlight=False,
    )
    for note in m.notes:
        console.print(f"note: {note}")
    if result.groups:
        _groups(result, result.by)
    if result.answers is not None:
        answer_scores(result.answers)


def _groups(result, by: str) -> None:
    table = Table(title=f"by {by}", title_justify="left")
    main_metric = (
        "pairwise accuracy"
        if result.metrics.pairwise_accuracy is not None
        else "implicit-reward accuracy"
        if result.reference is not None
        else "log-prob accuracy"
    )
    for column in (by, "pairs", main_metric, "95% CI", "mean reward margin"):
        table.add_column(column, justify="left" if column == by else "right", no_wrap=True)
    for g in result.groups:
        m = g.metrics
        estimate = m.pairwise_accuracy or m.implicit_reward_accuracy or m.logprob_accuracy
        margin = f"{m.reward_margin.value:.3f}" if m.reward_margin else ""
        table.add_row(
            g.group, f"{m.pairs:,}", f"{estimate.value:.3f}", f"{estimate.low:.3f}–{estimate.high:.3f}", margin
        )
    console.print(table)
    if result.reward_bench:
        rb = result.reward_bench
        sections = Table(
            title="RewardBench sections ("
            + ("reward model's scores" if result.metrics.pairwise_accuracy else "implicit-reward decision")
            + ", ties count wrong)",
            title_justify="left",
        )
        for column in ("section", "score"):
            sections.add_column(column, justify="left" if column == "section" else "right")
        for name, score in rb.sections.items():
            sections.add_row(name, f"{score:.3f}")
        if rb.mean_of_sections is not None:
            sections.add_row("[bold]mean of sections", f"{rb.mean_of_sections:.3f}")
        console.print(sections)


def answers_table(rows: list[Answers], title: str) -> Table:
    table = Table(title=title, title_justify="left", show_lines=True)
    for column in ("prompt", "base", "trained"):
        table.add_column(column, ratio=1)
    for row in rows:
        table.add_row(row.prompt, row.base, row.trained)
    return table


def quickstart(result) -> None:
    for name, c in result.conversions.items():
        console.print(
            f"convert {name}: read {c.read:,}, written {c.written:,}, rejected {c.rejected:,} "
            f"({reasons_text(c.reasons).replace(chr(10), ', ')}) -> {c.output}",
            highlight=False,
        )
    for v in result.validations:
        console.print(f"validate: [green]ok[/] {v.path}: {v.rows:,} rows", highlight=False)
    g, s = result.generated, result.scored
    right = next((x for x in s.scorers if x.name == s.rank_by), None)
    console.print(
        f"generate: {g.prompts:,} training prompts answered by the model ({g.completions:,} answers, "
        f"mean {g.mean_tokens:g} tokens); score: "
        + (f"{right.mean:.1%} right ({s.rank_by})" if right and right.mean is not None else "nothing scored"),
        highlight=False,
    )
    audit = result.lint.audit
    console.print(
        f"lint: {audit.pairs:,} pairs, {audit.errors:,} with token errors, {audit.truncated.pairs:,} truncated",
        highlight=False,
    )
    t = result.train.tokens
    console.print(
        f"train: {result.train.steps} steps, pairs trained {t.trained:,}, dropped {t.dropped:,} "
        f"-> {result.train.output_dir}",
        highlight=False,
    )
    evaluation(result.eval)
    total = sum(result.seconds.values())
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    console.print(f"done in {total / 60:.1f} min ({stages}); everything is in {result.directory}", highlight=False)
    console.print(
        "that was one round; for more, from the policy's own answers each round: "
        "prefkit loop recipes/loop-quickstart.yaml -o runs/loop (docs/training.md, Rounds)",
        highlight=False,
    )


def _examples(examples: list[CheckExample]) -> str:
    """Row failures show their line numbers; schema-level failures show the offending value."""
    lines = [str(e.line) for e in examples if e.line is not None]
    if lines:
        return "line " + ", ".join(lines)
    return "; ".join(str(e.value)[:60] for e in examples)


def looped(result: LoopResult) -> None:
    """``prefkit loop``: one row per round (round 0 is the base model), then each round's accounting."""

    def interval(e) -> str:
        return f"{e.value:.3f}\n({e.low:.3f}–{e.high:.3f})"

    table = Table(title=f"rounds: held-out {result.scorer} of the policy's own greedy answers", title_justify="left")
    for column in ("round", "at sampling", "pairs", f"held-out {result.scorer}", "vs previous round", "tokens", "min"):
        table.add_column(column, justify="right")
    table.add_row("0 (base)", "", "", interval(result.base), "", f"{result.base_mean_tokens:g}", "")
    for r in result.rounds:
        sampled = "" if r.sampled_score is None else f"{r.sampled_score:.3f}"
        minutes = f"{sum(r.seconds.values()) / 60:.1f}" + (" (resumed)" if r.reused else "")
        table.add_row(
            str(r.round),
            sampled,
            f"{r.pairs:,}",
            interval(r.heldout),
            interval(r.versus_previous),
            f"{r.mean_tokens:g}",
            minutes,
        )
    console.print(table)
    for r in result.rounds:
        c = r.counts
        console.print(
            f"round {r.round}: prompts read {c.prompts_read:,} = answered {c.answered:,} + duplicates "
            f"{c.duplicates:,} + rejected {c.rejected:,}; answers {c.samples:,} = paired {c.paired:,} + unpaired "
            f"{c.unpaired:,} ({counts_text(c.unpaired_reasons)}); policy {r.policy} -> {r.trained}",
            highlight=False,
        )
    if result.stopped:
        console.print(f"stopped: {escape(result.stopped)}", highlight=False)
    console.print(
        f"'at sampling': the mean score of the answers the pairs were made from; lineage in "
        f"{Path(result.directory) / 'loop.json'}; plot {result.plot}",
        highlight=False,
    )
