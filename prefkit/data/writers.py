"""Writing pair files and rejects so that a failed run never leaves a half-written file behind.

Each writer writes through :func:`prefkit.atomic_files.atomic_path`: a temporary file renamed over
the target only when complete. The generic atomic writers live in :mod:`prefkit.atomic_files`,
which the model side uses too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from prefkit.atomic_files import atomic_path
from prefkit.errors import UsageError

PAIR_SUFFIXES = (".jsonl", ".parquet")


def check_pairs_path(path: Path) -> None:
    """Output format is chosen by extension: ``.jsonl`` or ``.parquet``."""
    if not path.name.endswith(PAIR_SUFFIXES):
        raise UsageError(f"{path}: output must end in .jsonl or .parquet")


def write_pairs(frame: pl.DataFrame, path: Path) -> None:
    with pair_sink(path, None) as write:
        write(frame)


@contextmanager
def pair_sink(path: Path, style: str | None, kind: str = "pairs"):
    """Yields a function that appends canonical batches to ``path`` (JSON Lines or Parquet).

    An empty Parquet output still gets the canonical schema of ``style`` and ``kind``.
    """
    check_pairs_path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            from prefkit.data.schema import frame_schema

            state: dict = {}

            def write(frame: pl.DataFrame) -> None:
                if "writer" not in state:
                    state["schema"] = frame.schema
                    state["writer"] = pq.ParquetWriter(tmp, frame.to_arrow().schema)
                table = align_optional(frame, state["schema"], path).to_arrow()
                state["writer"].write_table(table.cast(state["writer"].schema))

            try:
                yield write
                if "writer" not in state and style is not None:
                    write(pl.DataFrame(schema=frame_schema(style, kind)))
            finally:
                if "writer" in state:
                    state["writer"].close()
        else:
            with open(tmp, "wb") as handle:
                yield lambda frame: frame.write_ndjson(handle)


def align_optional(frame: pl.DataFrame, schema: pl.Schema, path: Path) -> pl.DataFrame:
    """A batch shaped like the first one written: optional columns (``margin``, ``metadata`` and
    its fields) that it lacks are added as nulls. One Parquet file has one schema, so a batch that
    brings a column or metadata field the first batch did not have cannot be written to it."""
    if frame.schema == schema:
        return frame
    extra = [c for c in frame.columns if c not in schema]
    if extra:
        raise UsageError(f"{path}: sources differ in their columns ({', '.join(extra)}); write .jsonl instead")
    fixes = []
    for name, dtype in schema.items():
        if name not in frame.columns:
            fixes.append(pl.lit(None, dtype).alias(name))
        elif isinstance(dtype, pl.Struct) and frame.schema[name] != dtype:
            have = {f.name for f in frame.schema[name].fields}
            new = have - {f.name for f in dtype.fields}
            if new:
                raise UsageError(
                    f"{path}: sources differ in their {name} fields ({', '.join(sorted(new))}); write .jsonl instead"
                )
            fields = [
                (pl.col(name).struct.field(f.name) if f.name in have else pl.lit(None, f.dtype)).alias(f.name)
                for f in dtype.fields
            ]
            fixes.append(pl.when(pl.col(name).is_not_null()).then(pl.struct(fields)).alias(name))
    return frame.with_columns(fixes).select(list(schema))


@contextmanager
def discard():
    """A sink that drops what it is given: what a dry run writes to."""
    yield lambda _items: None


@contextmanager
def in_background(write: Callable[[pl.DataFrame], None]):
    """Runs ``write`` on a worker thread so writing one batch overlaps processing the next.

    At most one batch waits to be written, which bounds the extra memory; an error in the worker
    is raised here, on the next write or at the end, never lost.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefkit-write") as pool:
        pending: list = []

        def submit(frame: pl.DataFrame) -> None:
            if pending:
                pending.pop().result()
            pending.append(pool.submit(write, frame))

        yield submit
        if pending:
            pending.pop().result()


def sidecar(output: Path, kind: str) -> Path:
    """``out/name.jsonl`` gives ``out/name.rejects.jsonl`` for kind ``rejects.jsonl``."""
    stem = output.name
    for suffix in PAIR_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return output.with_name(f"{stem}.{kind}")


def reject_line(source: str, line: int, reason: str, detail: str | None, record: str, record_is_json: bool) -> str:
    """One rejects-file line; the record is embedded as JSON when it is JSON, else as its raw text.

    ``reject_line("a.jsonl", 3, "invalid_json", "Expecting value", "{oops", False)`` gives
    ``{"source": "a.jsonl", "line": 3, "reason": "invalid_json", "detail": "Expecting value", "record": "{oops"}``.
    """
    head = json.dumps({"source": source, "line": line, "reason": reason, "detail": detail}, ensure_ascii=False)
    body = record.strip() if record_is_json else json.dumps(record, ensure_ascii=False)
    return f'{head[:-1]}, "record": {body}}}'
