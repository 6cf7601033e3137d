"""The ``prefkit`` command line: parse options, call one library function, print with rich.

Exit codes: 0 success; 1 data failed (``validate`` found failures, ``convert --strict`` rejected
records); 2 usage error (one line on stderr, nothing written).
"""

from __future__ import annotations

import dataclasses
import sys
from functools import wraps
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from prefkit import __version__
from prefkit.adapters import BY_NAME
from prefkit.adapters.ultrafeedback import BINARIZE
from prefkit.convert import ConvertConfig
from prefkit.errors import PrefkitError, UsageError
from prefkit.schema import STYLES

console = Console()
err_console = Console(stderr=True)


def help_from(config_cls: type, name: str) -> str:
    """The help text of a config dataclass field, so flags and recipes document one thing once."""
    return next(f.metadata.get("help", "") for f in dataclasses.fields(config_cls) if f.name == name)


def handle_errors(func):
    """Maps typed library errors to exit codes: usage errors exit 2 with one clear line."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UsageError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except PrefkitError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prefkit")
def main() -> None:
    """Prepare preference data and run DPO: convert, validate, mix, train, eval."""


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help=help_from(ConvertConfig, "output"))
@click.option("--format", "format_", type=click.Choice(sorted(BY_NAME)), default=None, help=help_from(ConvertConfig, "format"))
@click.option("--field", "fields", multiple=True, metavar="KEY=PATH", help=help_from(ConvertConfig, "fields"))
@click.option("--style", type=click.Choice(STYLES), default="conversational", show_default=True, help=help_from(ConvertConfig, "style"))
@click.option("--rejects", default=None, help=help_from(ConvertConfig, "rejects"))
@click.option("--report", default=None, help=help_from(ConvertConfig, "report"))
@click.option("--keep-ties", is_flag=True, help=help_from(ConvertConfig, "keep_ties"))
@click.option("--binarize", type=click.Choice(BINARIZE), default="random-lower", show_default=True, help=help_from(ConvertConfig, "binarize"))
@click.option("--seed", type=int, default=0, show_default=True, help=help_from(ConvertConfig, "seed"))
@click.option("--strict", is_flag=True, help=help_from(ConvertConfig, "strict"))
@handle_errors
def convert(sources, output, format_, fields, style, rejects, report, keep_ties, binarize, seed, strict):
    """Normalize preference data into the canonical prompt/chosen/rejected schema."""
    from prefkit.convert import convert as run_convert

    config = ConvertConfig(
        sources=list(sources),
        output=output,
        format=format_,
        fields=list(fields),
        style=style,
        rejects=rejects,
        report=report,
        keep_ties=keep_ties,
        binarize=binarize,
        seed=seed,
        strict=strict,
    )
    with _progress() as progress:
        task = progress.add_task("converting", total=None)

        def on_progress(description: str, done: int, total: int) -> None:
            progress.update(task, description=description, completed=done, total=total)

        result = run_convert(config, progress=on_progress)

    table = Table(title="prefkit convert", title_justify="left")
    for column in ("source", "format", "read", "written", "rejected", "reasons"):
        table.add_column(column, justify="right" if column in ("read", "written", "rejected") else "left")
    for s in result.sources:
        reasons = "\n".join(f"{k} {v:,}" for k, v in sorted(s.reasons.items(), key=lambda kv: -kv[1]))
        table.add_row(Path(s.source).name, s.format, f"{s.read:,}", f"{s.written:,}", f"{s.rejected:,}", reasons or "-")
    if len(result.sources) > 1:
        table.add_row("[bold]total", "", f"{result.read:,}", f"{result.written:,}", f"{result.rejected:,}", "")
    console.print(table)
    console.print(f"wrote {result.output} ({result.style}), rejects {result.rejects}, report {result.report}")
    if strict and result.rejected:
        err_console.print(f"[bold red]strict:[/] {result.rejected:,} records rejected")
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--report", default=None, help="Write every failure as JSON to this path.")
@handle_errors
def validate(files, report):
    """Check that files conform to the canonical schema (exit 1 listing every failure)."""
    from prefkit.validate import validate_files
    from prefkit.writers import write_json

    results = validate_files(list(files))
    for result in results:
        if result.ok:
            console.print(f"[green]ok[/] {result.path}: {result.rows:,} rows, {result.style} style")
            continue
        table = Table(title=f"{result.path}: {result.rows:,} rows, {result.style} style", title_justify="left")
        for column in ("check", "column", "rows", "examples"):
            table.add_column(column)
        for f in result.failures:
            table.add_row(f.description, f.column, f"{f.rows:,}", _examples(f.examples))
        console.print(table)
    if report:
        write_json([r.to_dict() for r in results], Path(report))
    failed = [r for r in results if not r.ok]
    if failed:
        err_console.print(f"[bold red]{len(failed)} of {len(results)} files failed validation")
        sys.exit(1)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--train", "n_train", type=click.IntRange(min=1), default=480, show_default=True, help="Training pairs.")
@click.option("--heldout", "n_heldout", type=click.IntRange(min=1), default=120, show_default=True, help="Held-out pairs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generator.")
@handle_errors
def sample(directory, n_train, n_heldout, seed):
    """Write prefkit's bundled verifiable sample data (raw HH and custom layouts) into DIRECTORY."""
    from prefkit.sample_data import write_sample

    paths = write_sample(Path(directory), n_train=n_train, n_heldout=n_heldout, seed=seed)
    for name, path in paths.items():
        console.print(f"wrote {name}: {path}")


def _examples(examples: list[dict]) -> str:
    """Row failures show their line numbers; schema-level failures show the offending value."""
    lines = [str(e["line"]) for e in examples if e["line"] is not None]
    if lines:
        return "line " + ", ".join(lines)
    return "; ".join(str(e["value"])[:60] for e in examples)


if __name__ == "__main__":
    main()
