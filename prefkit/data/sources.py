"""Reading inputs: local files, folders of shards and ``hf:`` hub ids, into polars frames.

The read step only turns bytes into records. Every record it reads ends either in
``RawRecords.frame`` (with its 1-based ``__line``) or in ``RawRecords.rejects`` with a reason;
blank lines are not records and are only counted.

JSON Lines are parsed by pyarrow's multithreaded reader, which is strict about a field changing
type between records (polars would silently turn ``1`` into ``"1"``). Only when that vectorized
read fails does a per-line pass run, and only to locate and quarantine the lines it cannot parse.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.json as pa_json

from prefkit.data.columns import DETAIL, LINE, REASON
from prefkit.data.reasons import RejectReason
from prefkit.errors import SourceError

REJECTS_SCHEMA = {LINE: pl.Int64, REASON: pl.String, DETAIL: pl.String}
FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".ndjson", ".ndjson.gz")
HUB_PREFIX = "hf:"
_BOM = b"\xef\xbb\xbf"


@dataclass
class RawRecords:
    """What one batch of an input file (or hub split) held; lines are 1-based within the file."""

    label: str
    frame: pl.DataFrame
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECTS_SCHEMA))
    blank_lines: int = 0
    lines: int = 0  # text lines the batch spans, blank ones included (0 for non-text sources)
    # The JSON text of the records at the given lines, for the rejects file.
    record_text: Callable[[list[int]], dict[int, str]] = lambda lines: {}

    @property
    def read(self) -> int:
        return self.frame.height + self.rejects.height


@dataclass(frozen=True)
class HubSource:
    """``hf:ORG/NAME[@revision][:split]``, parsed."""

    name: str
    revision: str | None
    split: str | None

    @classmethod
    def parse(cls, spec: str) -> HubSource:
        """``"hf:HuggingFaceH4/ultrafeedback_binarized@main:train_prefs"`` becomes
        ``HubSource(name="HuggingFaceH4/ultrafeedback_binarized", revision="main", split="train_prefs")``."""
        body = spec.removeprefix(HUB_PREFIX)
        body, _, split = body.partition(":")
        name, _, revision = body.partition("@")
        if not name:
            raise SourceError(f"{spec}: expected hf:ORG/NAME[@revision][:split]")
        return cls(name=name, revision=revision or None, split=split or None)

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        split = f":{self.split}" if self.split else ""
        return f"{HUB_PREFIX}{self.name}{rev}{split}"


def resolve(spec: str) -> list[Path | HubSource]:
    """The files (or hub split) one SOURCE argument names: a file, a folder of shards, or ``hf:``."""
    if spec.startswith(HUB_PREFIX):
        return [HubSource.parse(spec)]
    path = Path(spec)
    if path.is_dir():
        shards = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(FILE_SUFFIXES))
        if not shards:
            raise SourceError(f"{spec}: folder holds no {', '.join(FILE_SUFFIXES)} files")
        return list(shards)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    if not path.name.endswith(FILE_SUFFIXES):
        raise SourceError(f"{spec}: unsupported file type (expected one of {', '.join(FILE_SUFFIXES)})")
    return [path]


BATCH_BYTES = 16 << 20
BATCH_ROWS = 50_000
MAX_LINE_BYTES = 16 << 20
"""Default longest line read as a record; a longer one is a ``line_too_long`` reject, skipped while
streaming (never held in memory whole). 16 MiB is far above any real preference record."""
MAX_DEPTH = 64
"""Deepest nesting of objects and arrays read as a record; deeper is ``invalid_json``."""
REJECTED_TEXT_CHARS = 1000
"""How much of a line too long to keep goes into the rejects file."""


def read(source: Path | HubSource, max_line_bytes: int = MAX_LINE_BYTES) -> RawRecords:
    """Reads one resolved source whole, for a caller that needs every row at once (``compare``'s prompts);
    the data commands stream with :func:`iter_batches` instead."""
    return merged(list(iter_batches(source, max_line_bytes=max_line_bytes)))


def merged(batches: list[RawRecords]) -> RawRecords:
    """One file's batches as one (lines are already numbered within the file)."""
    frames = [b.frame for b in batches if b.frame.height]
    texts = [b.record_text for b in batches]
    return RawRecords(
        label=batches[0].label,
        frame=pl.concat(frames, how="diagonal_relaxed") if frames else batches[0].frame,
        rejects=pl.concat([b.rejects for b in batches]),
        blank_lines=sum(b.blank_lines for b in batches),
        lines=sum(b.lines for b in batches),
        record_text=lambda lines: {k: v for text in texts for k, v in text(lines).items()},
    )


def iter_batches(
    source: Path | HubSource, batch_bytes: int | None = None, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[RawRecords]:
    """Streams a source in batches so memory stays bounded whatever the input size, even with a
    line of gigabytes: a line above ``max_line_bytes`` is skipped as it streams past.

    Always yields at least one batch (possibly empty), so callers can rely on a label and a frame.
    """
    if isinstance(source, HubSource):
        yield from _hub_batches(source)
        return
    name, label = source.name, str(source)
    if name.endswith(".parquet"):
        yield from _parquet_batches(source)
        return
    if name.endswith((".json", ".json.gz")) and _opens_array(source):
        yield _read_json_array(_read_bytes(source), label, max_line_bytes)
        return
    yield from _jsonl_batches(source, batch_bytes or BATCH_BYTES, max_line_bytes)


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _opens_array(path: Path) -> bool:
    try:
        with _open(path) as handle:
            head = handle.read(4096)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise SourceError(f"{path}: cannot read ({err})") from err
    return head.lstrip(_BOM + b" \t\r\n").startswith(b"[")


def _read_bytes(path: Path) -> bytes:
    try:
        with _open(path) as handle:
            return handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise SourceError(f"{path}: cannot read ({err})") from err


def _jsonl_batches(path: Path, batch_bytes: int, max_line_bytes: int) -> Iterator[RawRecords]:
    """Cuts the byte stream at line ends into batches of about ``batch_bytes``.

    A partial line longer than ``max_line_bytes`` stops being kept: the rest of it is read and
    dropped up to its line end, and it becomes one ``line_too_long`` reject.
    """
    label, lines_before, carry, yielded = str(path), 0, b"", False
    skipping: _LongLine | None = None
    try:
        with _open(path) as handle:
            while block := handle.read(batch_bytes):
                if skipping is not None:
                    end = block.find(b"\n")
                    skipping.size += len(block) if end < 0 else end
                    if end < 0:
                        continue
                    yield skipping.rejected(label, max_line_bytes)
                    lines_before, yielded, skipping, block = lines_before + 1, True, None, block[end + 1 :]
                cut = block.rfind(b"\n") + 1
                if cut == 0:
                    carry += block
                    if len(carry) > max_line_bytes:
                        skipping, carry = _LongLine(lines_before + 1, carry[:REJECTED_TEXT_CHARS], len(carry)), b""
                    continue
                # One copy per batch: the carried partial line joined to the block's whole lines.
                data = b"".join((carry, memoryview(block)[:cut])) if carry or cut < len(block) else block
                carry = block[cut:]
                batch = read_jsonl_bytes(data, label, lines_before, max_line_bytes)
                lines_before += batch.lines
                yielded = True
                yield batch
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise SourceError(f"{path}: cannot read ({err})") from err
    if skipping is not None:
        yield skipping.rejected(label, max_line_bytes)
    elif carry or not yielded:
        yield read_jsonl_bytes(carry, label, lines_before, max_line_bytes)


@dataclass
class _LongLine:
    """A line too long to keep, while it streams past: where it is, how it starts, its size so far."""

    line: int
    head: bytes
    size: int

    def rejected(self, label: str, max_line_bytes: int) -> RawRecords:
        detail = f"{self.size:,} bytes, above max_line_bytes {max_line_bytes:,}"
        rejects = pl.DataFrame(
            {LINE: [self.line], REASON: [str(RejectReason.LINE_TOO_LONG)], DETAIL: [detail]}, schema=REJECTS_SCHEMA
        )
        text = self.head.decode("utf-8", "replace") + "…"
        return RawRecords(label, _no_records(), rejects, lines=1, record_text=lambda lines: {self.line: text})


def _no_records() -> pl.DataFrame:
    return pl.DataFrame(schema={LINE: pl.Int64})


def display_names(sources: list[Path | HubSource]) -> dict[str, str]:
    """How outputs name each source: its file name, with as many parent folders as it takes to tell
    files of the same name apart; hub sources by their ``hf:`` id. Never a machine's absolute path.

    >>> display_names([Path("/home/me/a/train.jsonl"), Path("/home/me/b/train.jsonl"), Path("/x/hh.jsonl")])
    {'/home/me/a/train.jsonl': 'a/train.jsonl', '/home/me/b/train.jsonl': 'b/train.jsonl', '/x/hh.jsonl': 'hh.jsonl'}
    """
    local = [Path(s) for s in sources if not isinstance(s, HubSource)]
    names = {str(s): str(s) for s in sources if isinstance(s, HubSource)}
    for path in local:
        depth = 1
        while depth < len(path.parts):
            tail = Path(*path.parts[-depth:])
            if sum(Path(*p.parts[-depth:]) == tail for p in local if p != path) == 0:
                break
            depth += 1
        names[str(path)] = str(Path(*path.parts[-depth:]))
    return names


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parquet_batches(path: Path) -> Iterator[RawRecords]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        batches = parquet.iter_batches(batch_size=BATCH_ROWS)
        first = True
        offset = 0
        for batch in batches:
            frame = pl.from_arrow(pa.Table.from_batches([batch]))
            yield _from_frame(frame, str(path), offset)
            offset += frame.height
            first = False
        if first:
            yield _from_frame(pl.from_arrow(parquet.schema_arrow.empty_table()), str(path), 0)
    except (OSError, pa.ArrowException) as err:
        raise SourceError(f"{path}: cannot read parquet ({err})") from err


def _hub_batches(source: HubSource) -> Iterator[RawRecords]:
    """Loads a hub dataset split with ``datasets``; a local folder path works the same way offline."""
    import datasets

    local = Path(source.name)
    try:
        if local.is_dir() and any((local / n).exists() for n in ("dataset_dict.json", "state.json")):
            loaded = datasets.load_from_disk(str(local))
        else:
            loaded = datasets.load_dataset(source.name, revision=source.revision, split=source.split)
    except Exception as err:  # network, missing repo, bad split: all are the user's to fix
        raise SourceError(f"{source}: cannot load dataset ({type(err).__name__}: {err})") from err
    if isinstance(loaded, datasets.DatasetDict):
        if source.split is None and len(loaded) == 1:
            loaded = next(iter(loaded.values()))
        elif source.split in loaded:
            loaded = loaded[source.split]
        else:
            raise SourceError(f"{source}: name a split with :SPLIT, one of {', '.join(loaded)}")
    table = loaded.with_format("arrow")
    offsets = range(0, max(len(loaded), 1), BATCH_ROWS)  # one (empty) batch for an empty split
    for offset in offsets:
        yield _from_frame(pl.from_arrow(table[offset : offset + BATCH_ROWS]), str(source), offset)


def _from_frame(frame: pl.DataFrame, label: str, offset: int) -> RawRecords:
    frame = frame.with_row_index(LINE, offset=offset + 1).with_columns(pl.col(LINE).cast(pl.Int64))

    def record_text(lines: list[int]) -> dict[int, str]:
        rows = frame.filter(pl.col(LINE).is_in(lines))
        encoded = rows.select(LINE, pl.struct(pl.exclude(LINE)).struct.json_encode().alias("json"))
        return dict(zip(encoded[LINE].to_list(), encoded["json"].to_list(), strict=True))

    return RawRecords(label=label, frame=frame, record_text=record_text)


def _read_json_array(data: bytes, label: str, max_line_bytes: int = MAX_LINE_BYTES) -> RawRecords:
    try:
        items = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SourceError(f"{label}: not a valid JSON array ({err})") from err
    except RecursionError as err:
        raise SourceError(f"{label}: not a valid JSON array (nested too deeply)") from err
    # Re-serialized one per line, the array takes the same strict path as JSON Lines, with each
    # element's 1-based position as its line (an element too deep to re-serialize is one reject).
    lines = []
    for item in items:
        try:
            lines.append(json.dumps(item))
        except (RecursionError, ValueError):
            lines.append('"not re-serializable"')
    return read_jsonl_bytes("\n".join(lines).encode(), label, 0, max_line_bytes)


def _line_bounds(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 0x0A)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(data)]))
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 0x0D) if len(buf) else np.zeros(len(ends), bool)
    return starts, ends - has_cr


def read_jsonl_bytes(
    data: bytes, label: str, lines_before: int = 0, max_line_bytes: int = MAX_LINE_BYTES
) -> RawRecords:
    """Parses JSON Lines whose first line is line ``lines_before + 1`` of the file.

    Handles a UTF-8 BOM, CRLF line ends and blank lines. The common case (valid UTF-8, one object
    per line, no blank lines, no line above ``max_line_bytes``) costs one vectorized parse;
    anything else falls back to locating records line by line, where each bad line is one reject.

    >>> raw = read_jsonl_bytes(b'{"a": 1}\\n{"a": "\\\\ud800"}\\n' + b"[" * 100 + b"\\n{oops\\n", "x.jsonl")
    >>> raw.frame["a"].to_list(), raw.rejects.select("__line", "__reason").rows()
    ([1], [(2, 'invalid_utf8'), (3, 'invalid_json'), (4, 'invalid_json')])
    """
    if lines_before == 0 and data.startswith(_BOM):
        data = b"   " + data[3:]  # same length keeps byte offsets valid
    n_lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    bounds: list = []

    def line_bounds() -> tuple[np.ndarray, np.ndarray]:
        if not bounds:
            bounds.extend(_line_bounds(data.removesuffix(b"\n")))
        return bounds[0], bounds[1]

    def record_text(lines: list[int]) -> dict[int, str]:
        # Rejects are few: walking to them with find() is cheaper than indexing every line end.
        wanted = sorted(n - lines_before - 1 for n in lines)
        out, index, start = {}, 0, 0
        for target in wanted:
            while index < target:
                start = data.index(b"\n", start) + 1
                index += 1
            end = data.find(b"\n", start)
            raw = data[start : end if end >= 0 else len(data)].removesuffix(b"\r")
            out[target + lines_before + 1] = raw.decode("utf-8", "replace")
        return out

    too_long = None
    if len(data) > max_line_bytes:
        starts, ends = line_bounds()
        too_long = set(np.flatnonzero(ends - starts > max_line_bytes).tolist()) or None
    frame = _fast_parse(data, max_line_bytes) if too_long is None and _opens_with_object(data) else None
    if frame is not None and frame.height == n_lines and not _has_empty_row(frame):
        lines = np.arange(lines_before + 1, lines_before + n_lines + 1)
        frame = frame.with_columns(pl.Series(LINE, lines, pl.Int64))
        return RawRecords(label=label, frame=frame, lines=n_lines, record_text=record_text)

    starts, ends = line_bounds()
    buf = np.frombuffer(data, dtype=np.uint8)
    nonempty = ends > starts
    record_lines = np.zeros(len(starts), bool)
    record_lines[nonempty] = buf[starts[nonempty]] == ord("{")
    # Lines that do not open with "{" are few; deciding in Python whether each is blank is cheap.
    for i in np.flatnonzero(~record_lines & nonempty):
        if data[starts[i] : ends[i]].strip():
            record_lines[i] = True
    line_index = np.flatnonzero(record_lines)
    blank = len(starts) - len(line_index)
    if frame is not None and frame.height == len(line_index) and not _has_empty_row(frame):
        frame = frame.with_columns(pl.Series(LINE, line_index + lines_before + 1, dtype=pl.Int64))
        return RawRecords(label=label, frame=frame, blank_lines=blank, lines=n_lines, record_text=record_text)
    limits = (max_line_bytes, too_long or set())
    raw = _parse_line_by_line(data, starts, ends, line_index, lines_before, label, blank, record_text, limits)
    raw.lines = n_lines
    return raw


_LEADING_BLANKS = re.compile(rb"[ \t\r\n]*")


def _opens_with_object(data: bytes) -> bool:
    """Whether the first value is an object. pyarrow 26's JSON reader crashes the process on a
    first value of ``null``; anything but an object first goes line by line instead.

    >>> _opens_with_object(b'  {"a": 1}'), _opens_with_object(b"\\nnull\\n"), _opens_with_object(b"")
    (True, False, True)
    """
    start = _LEADING_BLANKS.match(data).end()
    return data[start : start + 1] in (b"{", b"")


def _has_empty_row(frame: pl.DataFrame) -> bool:
    """A row with every column null: pyarrow reads a ``null`` line (not a record) that way, so the
    batch goes line by line, where such a line is ``not_an_object``."""
    columns = [c for c in frame.columns if c != LINE]
    if not columns or not frame.height:
        return False
    return bool(frame.select(pl.all_horizontal(pl.col(columns).is_null()).any()).item())


def _fast_parse(data: bytes, max_line_bytes: int = MAX_LINE_BYTES) -> pl.DataFrame | None:
    # A record must fit in one block of pyarrow's reader.
    options = pa_json.ReadOptions(block_size=max(1 << 24, max_line_bytes + 2))
    try:
        table = pa_json.read_json(io.BytesIO(data), read_options=options)
        table.validate(full=True)  # the JSON reader lets invalid UTF-8 through; full validation does not
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if max((_nesting(f.type) for f in table.schema), default=0) >= MAX_DEPTH:
        return None  # polars' conversion recurses per level and overflows the stack on thousands of them
    try:
        frame = pl.from_arrow(table)
    except pl.exceptions.PolarsError:  # e.g. object keys polars reads as one name ("" and "\u0000")
        return None
    if not table.num_columns and not data.strip():
        return pl.DataFrame()  # blank lines only: no records, like an empty file
    return frame if table.num_columns else pl.DataFrame({"__empty": [None] * table.num_rows})


def _nesting(kind: pa.DataType) -> int:
    """How many list and struct levels an arrow type nests, counted without recursion.

    >>> _nesting(pa.list_(pa.struct([("a", pa.list_(pa.int64()))])))
    3
    """
    deepest, stack = 0, [(kind, 0)]
    while stack:
        kind, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((kind.field(i).type, depth + 1) for i in range(kind.num_fields))
    return deepest


def _parse_line(raw: bytes) -> tuple[dict | None, str | None, str | None]:
    """One line as ``(record, None, None)``, or ``(None, reason, detail)``: what the vectorized read
    could not take, said line by line. A value is a record only if pyarrow can hold it too: valid
    UTF-8 text (no lone surrogate escape), integers within 64 bits, at most :data:`MAX_DEPTH` levels.
    NaN and Infinity, which Python and pyarrow both read, stay for the schema's checks to judge."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, RejectReason.INVALID_UTF8, f"byte {err.start}: {err.reason}"
    try:
        value = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as err:
        return None, RejectReason.INVALID_JSON, f"{err.msg} at column {err.colno}"
    except RecursionError:
        return None, RejectReason.INVALID_JSON, f"nested more than {MAX_DEPTH} levels deep"
    if not isinstance(value, dict):
        return None, RejectReason.NOT_AN_OBJECT, f"got a JSON {_json_kind(value)}"
    problem = _unrepresentable(value)
    if problem is not None:
        return None, *problem
    return value, None, None


def _unrepresentable(value: dict) -> tuple[str, str] | None:
    """Why a parsed record cannot be held as typed columns: nesting past :data:`MAX_DEPTH`, a lone
    surrogate in a string, an integer beyond 64 bits. Walks without recursion, so depth is no risk.

    >>> reason, detail = _unrepresentable({"a": ["\\ud800"]})
    >>> str(reason), detail
    ('invalid_utf8', 'a string holds a lone surrogate escape (\\\\ud800)')
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return RejectReason.INVALID_JSON, f"nested more than {MAX_DEPTH} levels deep"
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as err:
                code = ord(item[err.start])
                return RejectReason.INVALID_UTF8, f"a string holds a lone surrogate escape (\\u{code:04x})"
        elif isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**64:
            return RejectReason.INVALID_JSON, f"the number {str(item)[:30]} does not fit in 64 bits"
    return None


def _parse_line_by_line(
    data, starts, ends, line_index, lines_before, label, blank, record_text, limits=(MAX_LINE_BYTES, set())
) -> RawRecords:
    max_line_bytes, too_long = limits
    rejects: list[tuple[int, str, str]] = []
    good: list[tuple[int, dict]] = []
    for i in line_index:
        line = int(i) + lines_before + 1
        if int(i) in too_long:
            size = int(ends[i] - starts[i])
            rejects.append(
                (line, RejectReason.LINE_TOO_LONG, f"{size:,} bytes, above max_line_bytes {max_line_bytes:,}")
            )
            continue
        value, reason, detail = _parse_line(data[starts[i] : ends[i]])
        if value is None:
            rejects.append((line, reason, detail))
        else:
            good.append((line, value))

    good, type_rejects = _quarantine_type_conflicts(good)
    rejects.extend(type_rejects)
    frame = _aligned_frame(good, max_line_bytes, rejects)
    if frame is None:
        raise SourceError(f"{label}: records could not be aligned to one schema even after quarantine")
    frame = frame.with_columns(pl.Series(LINE, [line for line, _ in good], dtype=pl.Int64))
    rejects.sort()
    reject_frame = pl.DataFrame(
        {LINE: [r[0] for r in rejects], REASON: [str(r[1]) for r in rejects], DETAIL: [r[2] for r in rejects]},
        schema=REJECTS_SCHEMA,
    )
    return RawRecords(label=label, frame=frame, rejects=reject_frame, blank_lines=blank, record_text=record_text)


def _aligned_frame(good: list[tuple[int, dict]], max_line_bytes: int, rejects: list) -> pl.DataFrame | None:
    """The kept records as one frame. Should pyarrow still refuse them together, each is tried
    alone and the ones it refuses alone become ``invalid_json`` rejects (``good`` loses them)."""
    if not good:
        return pl.DataFrame()
    lines = [json.dumps(value) for _, value in good]
    frame = _fast_parse("\n".join(lines).encode(), max_line_bytes)
    if frame is not None and frame.height == len(good):
        return frame
    kept = []
    for (line, value), text in zip(good, lines, strict=True):
        alone = _fast_parse(text.encode(), max_line_bytes)
        if alone is None or alone.height != 1:
            rejects.append((line, RejectReason.INVALID_JSON, "a value the columnar reader cannot hold"))
        else:
            kept.append((line, value))
    good[:] = kept
    if not kept:
        return pl.DataFrame()
    frame = _fast_parse("\n".join(json.dumps(value) for _, value in kept).encode(), max_line_bytes)
    return frame if frame is not None and frame.height == len(kept) else None


def _json_kind(value: object) -> str:
    """The JSON type name of a parsed value: ``_json_kind([1]) == "array"``, ``_json_kind(1.5) == "number"``."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _kind_paths(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, JSON type) in a value: ``{"a": [{"b": 1}]}`` yields
    ``("", "object"), ("a", "array"), ("a[]", "object"), ("a[].b", "number")``."""
    kind = _json_kind(value)
    if kind == "null":
        return
    yield path, kind
    if kind == "object":
        for key, item in value.items():  # type: ignore[union-attr]
            yield from _kind_paths(item, f"{path}.{key}" if path else key)
    elif kind == "array":
        for item in value:  # type: ignore[union-attr]
            yield from _kind_paths(item, f"{path}[]")


def _quarantine_type_conflicts(good: list[tuple[int, dict]]):
    """Rejects records whose value at some path has another JSON type than most records have there."""
    per_record = [set(_kind_paths(value)) for _, value in good]
    counts = Counter(pair for kinds in per_record for pair in kinds)
    by_path: dict[str, Counter] = {}
    for (path, kind), n in counts.items():
        by_path.setdefault(path, Counter())[kind] = n
    majority = {path: kinds.most_common(1)[0][0] for path, kinds in by_path.items() if len(kinds) > 1}
    if not majority:
        return good, []
    kept, rejects = [], []
    for (line, value), kinds in zip(good, per_record, strict=True):
        clash = sorted((p, k) for p, k in kinds if p in majority and majority[p] != k)
        if clash:
            path, kind = clash[0]
            detail = f"field '{path}' is a {kind} where other records have a {majority[path]}"
            rejects.append((line, RejectReason.WRONG_TYPE, detail))
        else:
            kept.append((line, value))
    return kept, rejects
