"""``prefkit mix``: combine sources into train/test splits, deduped, decontaminated, traceable.

The pipeline, each step a function of its own:

1. load every source through the adapters (rejects recorded with reasons);
2. dedupe across all sources (exact, per-prompt, near), earlier sources winning;
3. decontaminate against evaluation prompts;
4. sample each source (seeded and shuffled, never the first rows) by weight, fraction or max_rows;
5. split grouped by normalized prompt, so one prompt never sits in both splits;
6. write the splits, rejects, removals, a manifest with per-row lineage, and a dataset card.

The pairs wait on disk (a :class:`~prefkit.data.pool.SpilledPool` in the output folder, removed at
the end) while dedupe, sampling and the split work on one row of keys per pair; the splits are
written a bucket at a time. Memory grows with the keys, not with the text.

Dedupe and decontamination run before sampling, so their counts do not depend on the seed and the
weights are exact shares of the output: another seed draws another sample with the same counts.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from prefkit import __version__
from prefkit.atomic_files import atomic_path, check_outputs, line_sink
from prefkit.config import DEFAULT_SEED, check_fields, from_mapping, load_yaml, option
from prefkit.data.adapters import BY_NAME, AdaptOptions
from prefkit.data.adapters.base import PAIRING_FIELDS, PairingOptions
from prefkit.data.card import TokenCounter, card_rows, concat_card_rows, write_card
from prefkit.data.columns import COPY, FILE, LINE, ROW, SOURCE
from prefkit.data.convert import SourceCounts, read_pairs, resolve_all, to_style
from prefkit.data.dedupe import (
    DecontaminateConfig,
    DedupeConfig,
    removal_frame,
    removal_info,
    remove_duplicates,
    removed_counts,
    write_removals,
)
from prefkit.data.pool import PROMPT, ReadJob, SpilledPool, spill_folder
from prefkit.data.schema import STYLES
from prefkit.data.sources import HUB_PREFIX, HubSource, display_names, file_sha256, resolve
from prefkit.data.splits import grouped_test_mask
from prefkit.data.writers import pair_sink
from prefkit.errors import ConfigError, SourceError
from prefkit.progress import ReportProgress
from prefkit.results import Result


@dataclass
class MixSource(PairingOptions):
    """One input of a mix: where it is, how to read it, and how much of it to use."""

    path: str = option(help="File, folder of shards, or hf:ORG/NAME[@revision][:split].")
    format: str | None = option(
        None, "Input format; detected from the keys when unset.", choices=tuple(sorted(BY_NAME))
    )
    fields: dict[str, str] = option({}, "Custom mapping KEY: PATH, as convert's --field.")
    weight: float | None = option(
        None, "Share of the output (all sources then need weights summing to 1).", min=0, min_open=True, max=1
    )
    fraction: float | None = option(None, "Share of this source to draw.", min=0, min_open=True, max=1)
    max_rows: int | None = option(None, "At most this many pairs from this source.", min=1)
    allow_repeat: bool = option(False, "Repeat pairs when the source is too small for its weight.")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class MixConfig:
    """A mix recipe (``recipes/*.yaml``) or the flags of ``prefkit mix`` without one."""

    sources: list[MixSource] = option(help="The inputs, in priority order: duplicates keep the earlier source's copy.")
    total: int | None = option(None, "Output size when sources have weights.", min=1)
    seed: int = option(DEFAULT_SEED, "Seed for sampling, splitting and seeded choices.")
    test_size: float = option(0.1, "Share of the output that goes to test.", min=0, max=1, max_open=True)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig, metadata={"help": "Duplicate removal."})
    decontaminate: DecontaminateConfig = field(
        default_factory=DecontaminateConfig, metadata={"help": "Evaluation sets to keep out."}
    )
    keep_ties: bool = option(False, "Keep pairs whose scores are equal.")
    style: str = option("conversational", "conversational or standard output.", choices=STYLES)
    parquet: bool = option(False, "Write train/test as Parquet instead of JSON Lines.")

    def __post_init__(self) -> None:
        check_fields(self)

    def check(self) -> None:
        """Raises :class:`ConfigError` naming the key path of the first mistake."""
        if not self.sources:
            raise ConfigError("sources: expected at least one source")
        weighted = [s.weight is not None for s in self.sources]
        for i, s in enumerate(self.sources):
            where = f"sources[{i}]"
            given = [k for k in ("weight", "fraction", "max_rows") if getattr(s, k) is not None]
            if len(given) > 1:
                raise ConfigError(f"{where}: give one of weight, fraction, max_rows, not {' and '.join(given)}")
            if any(weighted) and not weighted[i]:
                raise ConfigError(f"{where}.weight: every source needs a weight when one has a weight")
        if any(weighted):
            total_weight = sum(s.weight for s in self.sources)
            if abs(total_weight - 1) > 1e-6:
                raise ConfigError(f"sources: weights sum to {total_weight:g}, expected 1")
            if self.total is None or self.total < 1:
                raise ConfigError("total: expected a positive whole number when sources have weights")
        elif self.total is not None:
            raise ConfigError("total: only used with weights; give each source a weight, or drop total")

    @classmethod
    def from_sources(
        cls,
        paths: list[str],
        weights: list[float] | None = None,
        near: bool = False,
        decontaminate: list[str] = (),
        **options,
    ) -> MixConfig:
        """The quick form, without a recipe: each path a source read as it is (format detected),
        ``weights`` one per source, ``near`` MinHash dedupe, ``decontaminate`` evaluation files.
        ``options`` are other :class:`MixConfig` fields, or :class:`MixSource` pairing fields given to every source.

        >>> config = MixConfig.from_sources(["a.jsonl", "b.jsonl"], weights=[0.7, 0.3], total=100, near=True)
        >>> [(s.path, s.weight) for s in config.sources], config.total, config.dedupe.near
        ([('a.jsonl', 0.7), ('b.jsonl', 0.3)], 100, True)
        """
        weights = list(weights) if weights is not None else [None] * len(paths)
        if len(weights) != len(paths):
            raise ConfigError(f"weights: {len(weights)} weights for {len(paths)} sources")
        pairing = {k: options.pop(k) for k in list(options) if k in PAIRING_FIELDS}
        config = cls(
            sources=[MixSource(path=str(p), weight=w, **pairing) for p, w in zip(paths, weights, strict=True)],
            dedupe=DedupeConfig(near=near),
            decontaminate=DecontaminateConfig(files=[str(f) for f in decontaminate]),
            **options,
        )
        config.check()
        return config


def load_mix_recipe(path: str | Path, seed: int | None = None) -> MixConfig:
    """Reads and checks a mix recipe; ``seed`` overrides the recipe's. ``decontaminate: [files]`` is
    short for ``{files: [...]}``.

    >>> import tempfile, pathlib
    >>> recipe = pathlib.Path(tempfile.mkdtemp()) / "mix.yaml"
    >>> _ = recipe.write_text("sources: [{path: a.jsonl, weight: 0.5}, {path: b.jsonl, weight: 0.5}]\\ntotal: 10\\n")
    >>> config = load_mix_recipe(recipe, seed=3)
    >>> [s.weight for s in config.sources], config.total, config.seed
    ([0.5, 0.5], 10, 3)
    """
    data = load_yaml(path)
    if isinstance(data.get("decontaminate"), list):
        data["decontaminate"] = {"files": data["decontaminate"]}
    config = from_mapping(MixConfig, data)
    if seed is not None:
        config.seed = seed
    config.check()
    return config


@dataclass
class MixCounts(SourceCounts):
    """What happened to one source's candidate pairs, through every step of the mix; they add up to
    ``candidates`` (``read`` for sources with one pair per record).

    ``written`` counts the pairs the adapter produced (``candidates - rejected``); the later steps
    take from those.
    """

    files: list[str] = field(default_factory=list)
    deduped: int = 0
    decontaminated: int = 0
    not_sampled: int = 0
    sampled: int = 0
    repeated: int = 0
    kept: int = 0

    def adds_up(self) -> bool:
        unique_kept = self.kept - self.repeated
        return self.candidates == self.rejected + self.deduped + self.decontaminated + self.not_sampled + unique_kept


@dataclass
class MixResult(Result):
    out_dir: str
    train: int
    test: int
    sources: list[MixCounts]
    removed: dict[str, int]
    files: dict[str, str]


@dataclass
class LoadedSources:
    labels: list[str]  # file names, indexed by __file
    rejects: list[str]  # rejects-file lines
    counts: list[MixCounts]
    inputs: list[dict]


def load_sources(config: MixConfig, pool: SpilledPool, progress: ReportProgress | None = None) -> LoadedSources:
    """Reads every source through its adapter into ``pool``, a batch at a time (a
    :class:`~prefkit.data.ray_pool.RayPool` reads its files in Ray tasks); rejected records go to
    the rejects lines.

    Outputs name each source by :func:`display_names` (a file name, and its sha256 in the
    manifest's inputs), so a mix made on one machine names nothing of that machine's folders.
    """
    resolved = []
    for i, src in enumerate(config.sources):
        try:
            resolved.append(resolve_all([src.path]))
        except SourceError as err:
            raise ConfigError(f"sources[{i}].path: {err}") from err
    names = display_names([p for files in resolved for _, p in files])
    jobs, first_file = [], 0
    for i, (src, files) in enumerate(zip(config.sources, resolved, strict=True)):
        count = MixCounts(source=source_name(src.path), files=[names[str(p)] for _, p in files])
        options = AdaptOptions(
            fields=tuple(src.fields.items()), seed=config.seed, keep_ties=config.keep_ties, **src.pairing()
        )
        format_name = src.format or ("custom" if src.fields else None)
        jobs.append(ReadJob(i, files, format_name, options, config.keep_ties, first_file, names, count))
        first_file += len(files)
    pool.read(jobs, progress)
    for i, (src, job) in enumerate(zip(config.sources, jobs, strict=True)):
        if job.counts.written == 0:
            count = job.counts
            raise ConfigError(
                f"sources[{i}] ({src.path}): yields no pairs (read {count.read}, rejected {count.rejected}; "
                "see the rejects for why)"
            )
    return LoadedSources(
        labels=[name for job in jobs for name in job.counts.files],
        rejects=[line for job in jobs for line in job.rejects],
        counts=[job.counts for job in jobs],
        inputs=[_describe_input(path, names[str(path)]) for job in jobs for _, path in job.files],
    )


def source_name(spec: str) -> str:
    """A SOURCE argument as outputs name it: ``hf:`` ids as they are, local paths by their last part."""
    return spec if spec.startswith(HUB_PREFIX) else Path(spec).name


def _describe_input(path: Path | HubSource, name: str) -> dict:
    if isinstance(path, HubSource):
        return {"file": name, "revision": path.revision or "default branch"}
    return {"file": name, "sha256": file_sha256(path)}


def quotas(config: MixConfig, available: list[int]) -> list[int]:
    """Rows to draw per source: weights by largest remainder so they sum to ``total`` exactly."""
    if config.total is not None:
        raw = [s.weight * config.total for s in config.sources]
        floors = [int(x) for x in raw]
        order = sorted(range(len(raw)), key=lambda i: (floors[i] - raw[i], i))
        for i in order[: config.total - sum(floors)]:
            floors[i] += 1
        return floors
    out = []
    for s, n in zip(config.sources, available, strict=True):
        if s.fraction is not None:
            out.append(round(s.fraction * n))
        elif s.max_rows is not None:
            out.append(min(s.max_rows, n))
        else:
            out.append(n)
    return out


def sample_sources(alive: pl.DataFrame, config: MixConfig, counts: list[SourceCounts]) -> pl.DataFrame:
    """Seeded, shuffled draws per source from the pool's keys (``__row``, ``__source``, ``id``, ...);
    a source too small for its quota repeats only if allowed."""
    available = [alive.filter(pl.col(SOURCE) == i).height for i in range(len(config.sources))]
    drawn = []
    for i, (src, want, have) in enumerate(zip(config.sources, quotas(config, available), available, strict=True)):
        if want > have and (have == 0 or not src.allow_repeat):
            if have == 0:
                c = counts[i]
                raise ConfigError(
                    f"sources[{i}].weight: needs {want} pairs but dedupe and decontamination left none of "
                    f"{src.path} (deduped {c.deduped}, decontaminated {c.decontaminated})"
                )
            raise ConfigError(
                f"sources[{i}].weight: needs {want} pairs but {src.path} has {have} after rejects and dedupe; "
                "lower the weight or set allow_repeat: true"
            )
        if have == 0:
            counts[i].sampled = counts[i].kept = counts[i].repeated = counts[i].not_sampled = 0
            continue
        rng = np.random.default_rng([config.seed, i])
        copies, rest = divmod(want, have)
        picks = [rng.permutation(have) for _ in range(copies)] + [rng.choice(have, size=rest, replace=False)]
        index = np.concatenate(picks).astype(np.int64)
        copy = np.repeat(np.arange(copies + 1), [have] * copies + [rest])
        rows = alive.filter(pl.col(SOURCE) == i)[index].with_columns(pl.Series(COPY, copy, pl.Int32))
        drawn.append(rows)
        counts[i].sampled = want
        counts[i].kept = want
        counts[i].repeated = max(0, want - have)
        counts[i].not_sampled = have - min(want, have)
    sampled = pl.concat(drawn)
    # A pair drawn twice keeps its content id with a suffix, so ids stay unique within a split.
    return sampled.with_columns(
        pl.when(pl.col(COPY) > 0)
        .then(pl.format("{}-r{}", pl.col("id"), pl.col(COPY)))
        .otherwise(pl.col("id"))
        .alias("id")
    )


def split(sampled: pl.DataFrame, config: MixConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Grouped by normalized prompt (its hash in the keys), then each side shuffled with the seed."""
    test = grouped_test_mask(sampled[PROMPT], config.test_size, config.seed)
    train_rows = sampled.filter(~test).sample(fraction=1.0, shuffle=True, seed=config.seed)
    test_rows = sampled.filter(test).sample(fraction=1.0, shuffle=True, seed=config.seed + 1)
    return train_rows, test_rows


def _load_eval(config: MixConfig) -> tuple[pl.DataFrame | None, list[str]]:
    if not config.decontaminate.files:
        return None, []
    try:
        files = resolve_all(config.decontaminate.files)
    except SourceError as err:
        raise ConfigError(f"decontaminate.files: {err}") from err
    pairs, _ = read_pairs(files, None, AdaptOptions(), True, SourceCounts(source="decontaminate"))
    names = display_names([p for _, p in files])
    return pairs.with_row_index(ROW), [names[str(p)] for _, p in files]


def mix(
    config: MixConfig,
    out_dir: str | Path,
    progress: ReportProgress | None = None,
    token_counter: TokenCounter | None = None,
    tokenizer: str | None = None,
    ray: str | None = None,
) -> MixResult:
    """Runs a mix and writes its outputs into ``out_dir``; see the module docstring for the steps.

    ``token_counter`` (named ``tokenizer``) counts the card's token lengths; words by default.
    ``ray`` (a cluster address, ``auto`` or ``local``) reads the files and signs the near-duplicate
    batches in Ray tasks (:mod:`prefkit.data.ray_pool`); the outputs are the same.
    """
    config.check()
    out = Path(out_dir)
    suffix = ".parquet" if config.parquet else ".jsonl"
    files = {"train": out / f"train{suffix}", "test": out / f"test{suffix}"}
    written = [
        *files.values(),
        *(out / n for n in ("rejects.jsonl", "removed.jsonl", "manifest.json", "README.md", "lengths.png")),
    ]
    sources = [
        path for spec in [s.path for s in config.sources] + config.decontaminate.files for path in _local_files(spec)
    ]
    check_outputs([("-o", p) for p in written], sources)
    if ray:
        from prefkit.data.ray_pool import RayPool

        spilled = RayPool(spill_folder(out), ray)
    else:
        spilled = SpilledPool(spill_folder(out))
    with spilled as pool:
        loaded = load_sources(config, pool, progress)
        eval_pool, eval_labels = _load_eval(config)
        removed = remove_duplicates(pool, config.dedupe, config.seed, eval_pool, config.decontaminate)
        info = removal_info(pool, removed)
        # Only what sampling, the split, the lineage and the writing read: one copy of the keys is enough.
        alive = pool.keys.filter(~pl.col(ROW).is_in(removed[ROW].implode())).select(
            ROW, SOURCE, "id", PROMPT, FILE, LINE
        )
        by_source = removed.join(pool.keys.select(ROW, SOURCE), on=ROW).group_by(SOURCE, "method").len()
        for source, method, n in by_source.iter_rows():
            c = loaded.counts[source]
            if method.startswith("decontaminate"):
                c.decontaminated += n
            else:
                c.deduped += n
        pool.drop_keys()  # alive and info hold all that the rest reads of them
        sampled = sample_sources(alive, config, loaded.counts)
        del alive
        train, test = split(sampled, config)
        del sampled
        cards = {
            "train": write_split(pool, train, files["train"], config.style, token_counter),
            "test": write_split(pool, test, files["test"], config.style, token_counter),
        }
        removals = removal_frame(removed, info, loaded.labels, eval_pool, eval_labels)
    with line_sink(out / "rejects.jsonl") as write:
        write(loaded.rejects)
    write_removals(removals, out / "removed.jsonl")
    write_manifest(_manifest(config, loaded, train, test, removed), out / "manifest.json")

    write_card(
        cards,
        out / "README.md",
        source_counts=[dataclasses.asdict(c) for c in loaded.counts],
        removed=removals,
        data_files={"train": files["train"].name, "test": files["test"].name},
        tokenizer=tokenizer,
    )
    return MixResult(
        out_dir=str(out),
        train=train.height,
        test=test.height,
        sources=loaded.counts,
        removed=removed_counts(removed),
        files={k: str(v) for k, v in files.items()}
        | {"manifest": str(out / "manifest.json"), "card": str(out / "README.md")},
    )


def write_split(
    pool: SpilledPool, rows: pl.DataFrame, path: Path, style: str, token_counter: TokenCounter | None
) -> pl.DataFrame:
    """Writes the pool's ``rows`` (keys in output order, ``id`` as drawn) to ``path`` a bucket at a
    time; returns their card rows."""
    parts = []
    with pair_sink(path, None) as write:
        for chunk in pool.gather(rows.select(ROW, "id", COPY)):
            write(to_style(chunk, style))
            parts.append(card_rows(chunk, token_counter))
    return concat_card_rows(parts)


def _local_files(spec: str) -> list[Path]:
    """The local files a source names (none for a hub id, or a path that does not exist: reading reports that)."""
    if spec.startswith(HUB_PREFIX):
        return []
    try:
        return [p for p in resolve(spec) if isinstance(p, Path)]
    except SourceError:
        return []


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("polars", "pyarrow", "polars-hash", "rensa", "datasets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _recipe_without_paths(config: MixConfig) -> dict:
    """The recipe as run, with each local path by its name (the inputs list has their sha256)."""
    recipe = dataclasses.asdict(config)
    for source in recipe["sources"]:
        source["path"] = source_name(source["path"])
    recipe["decontaminate"]["files"] = [source_name(f) for f in recipe["decontaminate"]["files"]]
    return recipe


def _manifest(config: MixConfig, loaded: LoadedSources, train: pl.DataFrame, test: pl.DataFrame, removed: pl.DataFrame):
    """The manifest; its ``lineage.rows`` is a frame (``id``, ``split``, ``__file``, ``__line``) that
    :func:`write_manifest` writes row by row."""
    lineage = pl.concat(
        [
            train.select("id", pl.lit("train").alias("split"), FILE, LINE),
            test.select("id", pl.lit("test").alias("split"), FILE, LINE),
        ]
    )
    return {
        "prefkit_version": __version__,
        "libraries": _versions(),
        "recipe": _recipe_without_paths(config),
        "inputs": loaded.inputs,
        "sources": [dataclasses.asdict(c) for c in loaded.counts],
        "splits": {"train": train.height, "test": test.height},
        "removed": removed_counts(removed),
        "lineage": {"columns": ["id", "split", "file", "line"], "rows": lineage, "files": loaded.labels},
    }


LINEAGE_PLACE = "@@prefkit: the lineage rows go here@@"


def write_manifest(manifest: dict, path: Path) -> None:
    """Writes the manifest as ``json.dumps(indent=2)`` would, its lineage rows (one per output pair)
    streamed from their frame a slice at a time instead of built as one list of lists."""
    lineage = manifest["lineage"]
    rows, labels = lineage["rows"], lineage.pop("files")
    lineage["rows"] = LINEAGE_PLACE
    head, tail = json.dumps(manifest, indent=2, ensure_ascii=False).split(json.dumps(LINEAGE_PLACE))
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(head)
        if rows.height == 0:
            handle.write("[]")
        for i, chunk in enumerate(rows.iter_slices(50_000)):
            listed = [[id_, split, labels[f], line] for id_, split, f, line in chunk.iter_rows()]
            # The rows sit three levels deep (manifest, lineage, rows): their own dump indented by 4 more.
            inner = json.dumps(listed, indent=2, ensure_ascii=False)[2:-2]
            handle.write(("[\n" if i == 0 else ",\n") + textwrap.indent(inner, "    "))
        if rows.height:
            handle.write("\n    ]")
        handle.write(tail + "\n")
