"""How ``prefkit train`` and ``prefkit quickstart`` show a training run: one progress bar for the
stage (reference pass, then steps), and each logging step as a row of a live table; and how
``prefkit loop`` shows its rounds: a line per round and stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from prefkit.cli.output import err_console

LOG_COLUMNS = (
    ("step", None),
    ("loss", "loss"),
    ("reward accuracy", "rewards/accuracies"),
    ("reward margin", "rewards/margins"),
    ("learning rate", "learning_rate"),
)


def log_row(step: int, logs: dict) -> list[str]:
    """One table row of a logging step; a value the step did not log stays blank.

    A reward model's run logs its scores' ``accuracy`` and ``margin``: they fill the same columns.

    >>> log_row(5, {"loss": 0.6931, "rewards/accuracies": 0.5, "learning_rate": 5e-4})
    ['5', '0.6931', '0.500', '', '5.0e-04']
    >>> log_row(6, {"loss": 0.6, "accuracy": 0.75, "margin": 0.2})
    ['6', '0.6000', '0.750', '0.200', '']
    """
    formats = {"loss": "{:.4f}", "rewards/accuracies": "{:.3f}", "rewards/margins": "{:.3f}", "learning_rate": "{:.1e}"}
    reward_model = {"rewards/accuracies": "accuracy", "rewards/margins": "margin"}
    row = [str(step)]
    for _, key in LOG_COLUMNS[1:]:
        value = logs.get(key, logs.get(reward_model.get(key, key)))
        row.append(formats[key].format(float(value)) if value is not None else "")
    return row


def stage_progress() -> Progress:
    """The rich progress display of the training commands: stage, bar, count and time, on stderr."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )


class StageBar:
    """One progress bar whose count is always its own stage's: each new stage starts a fresh task,
    so a stage of unknown size shows ``0/?`` rather than the last stage's total.

    >>> from rich.progress import Progress
    >>> stages = StageBar(Progress())
    >>> stages("training", 55, 55)
    >>> stages("eval", 0, None)
    >>> [(t.description, t.completed, t.total) for t in stages.bar.tasks]
    [('eval', 0, None)]
    """

    def __init__(self, bar: Progress):
        self.bar = bar
        self.task = None
        self.stage: str | None = None

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if stage != self.stage:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task, self.stage = self.bar.add_task(stage, total=total), stage
        self.bar.update(self.task, completed=done, total=total)


@contextmanager
def training_display() -> Iterator[tuple]:
    """Yields ``(progress, callback)``: ``progress(stage, done, total)`` for the stages around the
    training, and a transformers ``TrainerCallback`` for the steps. The table stays on screen."""
    from transformers import TrainerCallback

    bar = stage_progress()
    progress = StageBar(bar)
    table = Table(title="training log", title_justify="left")
    for title, _ in LOG_COLUMNS:
        table.add_column(title, justify="right")

    class ShowSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            progress("training", state.global_step, state.max_steps)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                table.add_row(*log_row(state.global_step, logs))

    live = Live(Group(bar, table), console=err_console, refresh_per_second=4)
    with live:
        try:
            yield progress, ShowSteps()
        except BaseException:
            # A run that stops before its first logged step leaves no empty table above its error line.
            live.update(table if table.row_count else Text(""))
            raise
        # The bar has done its work; what stays on screen is the log.
        live.update(table)


class StageLines:
    """One progress line per stage that stays on screen when the next begins: ``round 2 · train``
    and whatever the stage reports beside it (``round 2 · generate · generating``).

    >>> from rich.progress import Progress
    >>> lines = StageLines(Progress())
    >>> lines("round 1 · score", 0, None)
    >>> lines("round 1 · train · steps", 3, 45)
    >>> [(t.description, t.completed, t.total) for t in lines.bar.tasks]
    [('round 1 · score', 1, 1), ('round 1 · train · steps', 3, 45)]
    """

    def __init__(self, bar: Progress):
        self.bar = bar
        self.tasks: dict[str, object] = {}
        self.current: str | None = None

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        line = " · ".join(stage.split(" · ")[:2])
        if line not in self.tasks:
            if self.current is not None:
                # The stage before has ended: a stage of unknown size shows as done, not as pulsing.
                task = self.tasks[self.current]
                if self.bar.tasks[task].total is None:
                    self.bar.update(task, total=1, completed=1)
            self.tasks[line] = self.bar.add_task(stage, total=total)
        self.current = line
        self.bar.update(self.tasks[line], description=stage, completed=done, total=total)


@contextmanager
def loop_display() -> Iterator[tuple]:
    """Yields ``(progress, callback)`` for ``prefkit loop``: a line per round and stage, the
    training's steps on its round's train line."""
    from transformers import TrainerCallback

    bar = stage_progress()
    lines = StageLines(bar)

    class ShowSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if lines.current is not None:
                lines(f"{lines.current} · steps", state.global_step, state.max_steps)

    with bar:
        yield lines, ShowSteps()
