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


def read(source: Path | HubSource) -> RawRecords:
    """Reads one resolved source whole (``validate`` needs every row at once to check id uniqueness)."""
    return merged(list(iter_batches(source)))


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


def iter_batches(source: Path | HubSource, batch_bytes: int | None = None) -> Iterator[RawRecords]:
    """Streams a source in batches so memory stays bounded whatever the input size.

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
        yield _read_json_array(_read_bytes(source), label)
        return
    yield from _jsonl_batches(source, batch_bytes or BATCH_BYTES)


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


def _jsonl_batches(path: Path, batch_bytes: int) -> Iterator[RawRecords]:
    """Cuts the byte stream at line ends into batches of about ``batch_bytes``."""
    label, lines_before, carry, yielded = str(path), 0, b"", False
    try:
        with _open(path) as handle:
            while block := handle.read(batch_bytes):
                cut = block.rfind(b"\n") + 1
                if cut == 0:
                    carry += block
                    continue
                # One copy per batch: the carried partial line joined to the block's whole lines.
                data = b"".join((carry, memoryview(block)[:cut])) if carry or cut < len(block) else block
                carry = block[cut:]
                batch = read_jsonl_bytes(data, label, lines_before)
                lines_before += batch.lines
                yielded = True
                yield batch
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise SourceError(f"{path}: cannot read ({err})") from err
    if carry or not yielded:
        yield read_jsonl_bytes(carry, label, lines_before)


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


def _read_json_array(data: bytes, label: str) -> RawRecords:
    try:
        items = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SourceError(f"{label}: not a valid JSON array ({err})") from err
    # Re-serialized one per line, the array takes the same strict path as JSON Lines,
    # with each element's 1-based position as its line.
    return read_jsonl_bytes("\n".join(json.dumps(item) for item in items).encode(), label, 0)


def _line_bounds(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 0x0A)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(data)]))
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 0x0D) if len(buf) else np.zeros(len(ends), bool)
    return starts, ends - has_cr


def read_jsonl_bytes(data: bytes, label: str, lines_before: int = 0) -> RawRecords:
    """Parses JSON Lines whose first line is line ``lines_before + 1`` of the file.

    Handles a UTF-8 BOM, CRLF line ends and blank lines. The common case (valid UTF-8, one object
    per line, no blank lines) costs one vectorized parse; anything else falls back to locating
    records line by line.
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

    frame = _fast_parse(data)
    if frame is not None and frame.height == n_lines:
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
    if frame is not None and frame.height == len(line_index):
        frame = frame.with_columns(pl.Series(LINE, line_index + lines_before + 1, dtype=pl.Int64))
        return RawRecords(label=label, frame=frame, blank_lines=blank, lines=n_lines, record_text=record_text)
    raw = _parse_line_by_line(data, starts, ends, line_index, lines_before, label, blank, record_text)
    raw.lines = n_lines
    return raw


def _fast_parse(data: bytes) -> pl.DataFrame | None:
    try:
        table = pa_json.read_json(io.BytesIO(data), read_options=pa_json.ReadOptions(block_size=1 << 24))
        table.validate(full=True)  # the JSON reader lets invalid UTF-8 through; full validation does not
    except pa.ArrowInvalid:
        return None
    return pl.from_arrow(table) if table.num_columns else pl.DataFrame({"__empty": [None] * table.num_rows})


def _parse_line_by_line(data, starts, ends, line_index, lines_before, label, blank, record_text) -> RawRecords:
    rejects: list[tuple[int, str, str]] = []
    good: list[tuple[int, dict]] = []
    for i in line_index:
        line = int(i) + lines_before + 1
        raw = data[starts[i] : ends[i]]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            rejects.append((line, RejectReason.INVALID_UTF8, f"byte {err.start}: {err.reason}"))
            continue
        text = text.lstrip("\ufeff")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            rejects.append((line, RejectReason.INVALID_JSON, f"{err.msg} at column {err.colno}"))
            continue
        if not isinstance(value, dict):
            rejects.append((line, RejectReason.NOT_AN_OBJECT, f"got a JSON {_json_kind(value)}"))
            continue
        good.append((line, value))

    good, type_rejects = _quarantine_type_conflicts(good)
    rejects.extend(type_rejects)
    payload = "\n".join(json.dumps(value) for _, value in good).encode()
    frame = _fast_parse(payload) if good else pl.DataFrame()
    if frame is None or frame.height != len(good):
        raise SourceError(f"{label}: records could not be aligned to one schema even after quarantine")
    frame = frame.with_columns(pl.Series(LINE, [line for line, _ in good], dtype=pl.Int64))
    reject_frame = pl.DataFrame(
        {LINE: [r[0] for r in rejects], REASON: [str(r[1]) for r in rejects], DETAIL: [r[2] for r in rejects]},
        schema=REJECTS_SCHEMA,
    )
    return RawRecords(label=label, frame=frame, rejects=reject_frame, blank_lines=blank, record_text=record_text)


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
