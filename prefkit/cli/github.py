"""A validation report for GitHub Actions: ``::error`` annotations and a markdown step summary.

``prefkit validate --github`` prints the annotations (GitHub turns each into a mark on the file and
line), appends the summary to ``$GITHUB_STEP_SUMMARY`` and writes ``ok`` and ``failing`` to
``$GITHUB_OUTPUT``. The repo's ``action.yml`` runs exactly that.
"""

from __future__ import annotations

from pathlib import Path

from prefkit.data.validate import ValidationReport


def _escape(text: str) -> str:
    """GitHub's escaping of an annotation message (``%``, CR, LF) and property (also ``:`` and ``,``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def annotation(file: str, line: int | None, message: str) -> str:
    """``annotation("a.jsonl", 3, "invalid_json")`` gives ``::error file=a.jsonl,line=3::invalid_json``.

    >>> annotation("data/a,b.jsonl", 3, "tie: both 5.0")
    '::error file=data/a%2Cb.jsonl,line=3::tie: both 5.0'
    """
    where = f"file={_escape_property(file)}" + (f",line={line}" if line is not None else "")
    return f"::error {where}::{_escape(message)}"


def annotations(report: ValidationReport, cap: int) -> list[str]:
    """One annotation per failing record, the first ``cap`` of them, and a last one saying how many more."""
    found: list[tuple[str, int | None, str]] = []
    for f in report.files:
        for failure in f.failures:
            if not failure.lines:
                found.append((f.path, None, f"{failure.check}: {failure.description}"))
            found += [(f.path, line, f"{failure.check}: {failure.description}") for line in failure.lines]
    if report.conversion is not None:
        found += [(r.source, r.line, f"{r.reason}: {r.detail}") for r in report.conversion.first_rejects]
    for m in report.overlap or []:
        similarity = f", similarity {m.similarity:.2f}" if m.similarity is not None else ""
        found.append(
            (
                m.file,
                m.line,
                f"prompt overlaps {m.duplicate_of_file} line {m.duplicate_of_line} ({m.method}{similarity})",
            )
        )
    if report.tokens is not None:
        found += [(str(r.source), r.line, f"{r.reason}: {r.detail}") for r in report.tokens.error_records]
    lines = [annotation(*item) for item in found[:cap]]
    total = max(len(found), report.failing)
    if total > cap:
        lines.append(f"::warning::prefkit validate: {total - cap:,} more failing records are not annotated")
    return lines


def summary(report: ValidationReport) -> str:
    """The markdown step summary: status, a table of files or of reject reasons, and the gates."""
    status = "passed" if report.ok else "failed"
    out = [f"## prefkit validate: {status}", "", f"{report.records:,} records, {report.failing:,} failing.", ""]
    if report.files:
        out += ["| file | rows | failing | checks failed |", "| --- | ---: | ---: | --- |"]
        for f in report.files:
            checks = ", ".join(f"{x.check} ({x.rows:,})" for x in f.failures) or "-"
            out.append(f"| `{f.path}` | {f.rows:,} | {f.failing_rows:,} | {checks} |")
    if report.conversion is not None:
        out += [
            "| source | format | read | would write | would reject | reasons |",
            "| --- | --- | ---: | ---: | ---: | --- |",
        ]
        for s in report.conversion.sources:
            reasons = ", ".join(f"{k} {v:,}" for k, v in s.reasons.items()) or "-"
            out.append(f"| `{s.source}` | {s.format} | {s.read:,} | {s.written:,} | {s.rejected:,} | {reasons} |")
    if report.overlap is not None:
        out += ["", f"**Prompt overlap with evaluation files:** {len(report.overlap):,} training pairs."]
    if report.duplicates is not None:
        d = report.duplicates
        out += [
            "",
            f"**Exact duplicate pairs:** {d.duplicates:,} of {d.pairs:,} ({d.share:.2%}; max {d.max_share:.2%}).",
        ]
    if report.tokens is not None:
        reasons = ", ".join(f"{k} {v:,}" for k, v in report.tokens.audit.reasons.items()) or "none"
        out += ["", f"**Token check:** {report.tokens.errors:,} pairs with token errors ({reasons})."]
    return "\n".join(out) + "\n"


def write_github_files(report: ValidationReport, summary_path: str | None, output_path: str | None) -> None:
    """Appends the summary and the step outputs to the files GitHub names in its environment."""
    if summary_path:
        with Path(summary_path).open("a", encoding="utf-8") as handle:
            handle.write(summary(report))
    if output_path:
        with Path(output_path).open("a", encoding="utf-8") as handle:
            handle.write(f"ok={'true' if report.ok else 'false'}\nfailing={report.failing}\n")
