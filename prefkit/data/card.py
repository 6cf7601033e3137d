"""Hugging Face style dataset cards for canonical preference data.

A card is a README.md with a YAML header (license, task categories, size category, configs with the
splits) and statistics computed with polars: rows per source and split, length quantiles of
prompt/chosen/rejected in characters and tokens (plus a PNG histogram beside the card), the score
margin distribution, the share of ties, and the largest duplicate clusters with examples. An
unpaired file's card gives its records per source and label, the class balance with the KTO
weights it calls for, and completion lengths by label.

Tokens are counted as words and punctuation marks (``\\w+|[^\\w\\s]``) unless a token counter is
given: ``prefkit card --model`` and ``prefkit mix --model`` pass one built on the model's tokenizer and
chat template (:func:`prefkit.lm.token_audit.token_counter`), so the card shows the lengths training sees and
the length bias in real tokens. The data side stays free of model libraries: it only calls the counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from prefkit.atomic_files import atomic_path, check_outputs
from prefkit.data.lengths import (
    FIELDS,
    LengthGap,
    TokenCounter,
    gap_of_counts,
    interval_name,
    text_of,
    word_counts,
)
from prefkit.data.schema import frame_schema
from prefkit.results import Result

LICENSES = {"hh-rlhf": "mit", "ultrafeedback": "mit"}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def size_category(n: int) -> str:
    """The Hub's size bucket: ``size_category(2500) == "1K<n<10K"``."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    return next((label for bound, label in bounds if n < bound), "1M<n<10M")


def license_of(source: str) -> str:
    """``"hh-rlhf:train.jsonl.gz"`` gives ``"mit"``; sources of unknown license give ``"other"``."""
    fmt = source.split(":", 1)[0]
    return next((lic for prefix, lic in LICENSES.items() if fmt.startswith(prefix)), "other")


CARD_METADATA = ("audit", "round", "policy", "chosen_origin")
"""The metadata fields a card reads (the audit's marks and the loop's lineage); the rest stays in the file."""


def card_rows(frame: pl.DataFrame, counter: TokenCounter | None) -> pl.DataFrame:
    """What a card needs of each pair, without its text: ``source``, the scores and ``margin``, the
    metadata fields of :data:`CARD_METADATA`, and each field's characters (``__chars_*``) and tokens
    (``__tokens_*``, from ``counter``; words and punctuation by default). A card streams a file
    through this a batch at a time and holds only these rows.

    >>> frame = pl.DataFrame({"source": ["s"], "prompt": ["2 + 2?"], "chosen": ["It is 4."], "rejected": ["5"]})
    >>> card_rows(frame, None).row(0, named=True)
    {'source': 's', '__chars_prompt': 6, '__chars_chosen': 8, '__chars_rejected': 1, '__tokens_prompt': 4, '__tokens_chosen': 4, '__tokens_rejected': 1}
    """
    counts = (counter or word_counts)(frame)
    kept = [c for c in ("source", "score_chosen", "score_rejected", "margin") if c in frame.columns]
    metadata = frame.schema.get("metadata")
    present = {f.name for f in metadata.fields} if isinstance(metadata, pl.Struct) else set()
    fields = [
        pl.col("metadata").struct.field(name).alias(f"__meta_{name}") for name in CARD_METADATA if name in present
    ]
    chars = [text_of(c, frame.schema[c]).str.len_chars().alias(f"__chars_{c}") for c in FIELDS]
    tokens = [pl.Series(f"__tokens_{c}", counts[c], pl.Int64) for c in FIELDS]
    return frame.select(*kept, *fields, *chars).with_columns(tokens)


def concat_card_rows(batches: list[pl.DataFrame]) -> pl.DataFrame:
    """Card rows of several batches as one frame, their metadata fields gathered into ``metadata`` again."""
    rows = pl.concat(batches, how="diagonal_relaxed") if len(batches) != 1 else batches[0]
    meta = [c for c in rows.columns if c.startswith("__meta_")]
    if not meta:
        return rows
    struct = pl.struct([pl.col(c).alias(c.removeprefix("__meta_")) for c in meta]).alias("metadata")
    return rows.with_columns(struct).drop(meta)


def length_table(frame: pl.DataFrame) -> pl.DataFrame:
    """Quantiles of characters and tokens for prompt, chosen and rejected, from :func:`card_rows`."""
    rows = []
    for column in FIELDS:
        for unit, expr in (("chars", pl.col(f"__chars_{column}")), ("tokens", pl.col(f"__tokens_{column}"))):
            stats = frame.select(
                *[expr.quantile(q, interpolation="nearest").alias(f"p{int(q * 100)}") for q in QUANTILES],
                expr.max().alias("max"),
                expr.mean().round(1).alias("mean"),
            )
            rows.append({"field": column, "unit": unit, **stats.row(0, named=True)})
    return pl.DataFrame(rows)


def _markdown(frame: pl.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = [
        "| " + " | ".join("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |"
        for row in frame.iter_rows()
    ]
    return "\n".join([head, rule, *body])


def length_bias(frame: pl.DataFrame) -> pl.DataFrame:
    """Per source: how often the chosen reply has more tokens than the rejected, and the mean difference.

    A preference set where the chosen reply is usually the longer one teaches length as much as
    quality.
    """
    diff = pl.col("__tokens_chosen") - pl.col("__tokens_rejected")
    return (
        frame.group_by("source")
        .agg(
            pl.len().alias("pairs"),
            (diff > 0).mean().round(3).alias("chosen_longer"),
            diff.mean().round(1).alias("mean_difference"),
        )
        .sort("source")
    )


def write_histogram(frame: pl.DataFrame, path: Path, unit: str = "tokens (words and punctuation)") -> None:
    """Token-length histograms of prompt, chosen and rejected, one panel each."""
    from prefkit.plotting import pyplot, save_figure

    fig, axes = pyplot().subplots(1, 3, figsize=(12, 3.2), constrained_layout=True)
    for ax, column in zip(axes, FIELDS, strict=True):
        ax.hist(frame[f"__tokens_{column}"].to_numpy(), bins=50, color="#4c72b0")
        ax.set_title(f"{column} tokens")
        ax.set_xlabel(unit)
    axes[0].set_ylabel("pairs")
    save_figure(fig, path)


def front_matter(frame: pl.DataFrame, data_files: dict[str, str], tags: list[str]) -> str:
    """The card's YAML header: licenses of the sources, task, tags, size category and the configs."""
    header = {
        "license": sorted({license_of(s) for s in frame["source"].unique().to_list()}) or ["other"],
        "task_categories": ["text-generation"],
        "tags": tags,
        "size_categories": [size_category(frame.height)],
        "configs": [{"config_name": "default", "data_files": [{"split": s, "path": p} for s, p in data_files.items()]}],
    }
    return f"---\n{yaml.safe_dump(header, sort_keys=False)}---"


@dataclass
class PairStatistics:
    """What a pairs card reports, computed once: each table a polars frame, None where the data has
    nothing to show (no scores, no margins, not audited)."""

    pairs: int
    sources: pl.DataFrame | None
    per_split: pl.DataFrame
    lengths: pl.DataFrame
    length_bias: pl.DataFrame
    length_gap: LengthGap
    scored_pairs: int
    ties: float | None
    score_margins: pl.DataFrame | None
    margins: pl.DataFrame | None
    audit: pl.DataFrame | None
    lineage: pl.DataFrame | None = None


def pair_statistics(splits: dict[str, pl.DataFrame], source_counts: list[dict] | None = None) -> PairStatistics:
    """The statistics of :func:`card_text` for ``splits`` (each :func:`card_rows` of a split)."""
    everything = pl.concat([f.with_columns(pl.lit(name).alias("__split")) for name, f in splits.items()])
    sources = None
    if source_counts:
        sources = pl.DataFrame(source_counts).select(
            "source", "format", "read", "rejected", "deduped", "decontaminated", "not_sampled", "repeated", "kept"
        )
    per_split = (
        everything.group_by("source", "__split")
        .len()
        .pivot(on="__split", index="source", values="len")
        .fill_null(0)
        .select("source", *[name for name in splits if name in everything["__split"]])
        .sort("source")
    )
    scored = everything.filter(pl.col("score_chosen").is_not_null() & pl.col("score_rejected").is_not_null())
    margin = pl.col("score_chosen") - pl.col("score_rejected")
    has_margin = "margin" in everything.columns and everything["margin"].is_not_null().any()
    return PairStatistics(
        pairs=everything.height,
        sources=sources,
        per_split=per_split,
        lengths=length_table(everything),
        length_bias=length_bias(everything),
        length_gap=gap_of_counts(everything["__tokens_chosen"], everything["__tokens_rejected"]),
        scored_pairs=scored.height,
        ties=scored.select((margin == 0).mean()).item() if scored.height else None,
        score_margins=scored.select(
            *[margin.quantile(q, interpolation="nearest").alias(f"p{int(q * 100)}") for q in QUANTILES]
        )
        if scored.height
        else None,
        margins=margin_table(everything) if has_margin else None,
        audit=audit_table(everything),
        lineage=lineage_table(everything),
    )


def lineage_table(frame: pl.DataFrame) -> pl.DataFrame | None:
    """Pairs made from a model's own answers, per loop round and the policy that wrote them (and
    whether the chosen reply is the model's own or the reference); None when no pair says
    (no ``metadata.policy``: the pairs were not made by ``prefkit generate``).

    >>> frame = pl.DataFrame({"metadata": [{"round": "1", "policy": "model:m", "chosen_origin": "reference"},
    ...     {"round": "2", "policy": "adapter:ab", "chosen_origin": "model"}]})
    >>> lineage_table(frame).rows()
    [('1', 'model:m', 1, 1), ('2', 'adapter:ab', 1, 0)]
    """
    metadata = frame.schema.get("metadata")
    fields = {f.name for f in metadata.fields} if isinstance(metadata, pl.Struct) else set()
    if "policy" not in fields or frame.select(pl.col("metadata").struct.field("policy").is_null().all()).item():
        return None
    field = lambda name: pl.col("metadata").struct.field(name) if name in fields else pl.lit(None, pl.String)
    return (
        frame.group_by(round=field("round"), policy=field("policy"), maintain_order=True)
        .agg(pairs=pl.len(), chosen_is_reference=(field("chosen_origin") == "reference").sum())
        .sort("round", nulls_last=True)
    )


def card_text(
    splits: dict[str, pl.DataFrame],
    data_files: dict[str, str],
    source_counts: list[dict] | None = None,
    removed: pl.DataFrame | None = None,
    histogram: str | None = None,
    title: str = "Preference pairs",
    tokenizer: str | None = None,
    judges: list[dict] | None = None,
    loop_record: str | None = None,
) -> str:
    """The card's markdown; ``splits`` are each split's :func:`card_rows`, counted with ``tokenizer`` (None: words);
    ``judges`` are the audit report's pairwise judges (their bias goes on the card); ``loop_record``
    the ``loop.json`` of the ``prefkit loop`` that made the pairs."""
    everything = pl.concat(list(splits.values()))
    stats = pair_statistics(splits, source_counts)
    parts = [front_matter(everything, data_files, ["dpo", "preference", "rlhf", "prefkit"]), f"# {title}", ""]
    parts.append(
        f"{stats.pairs:,} preference pairs (prompt, chosen, rejected) in prefkit's canonical schema, TRL's "
        "preference format with an explicit prompt: `DPOTrainer` reads the files unchanged. "
        "Made with prefkit."
    )
    if stats.sources is not None:
        parts += ["", "## Sources", "", _markdown(stats.sources)]
    parts += ["", "## Rows per source and split", "", _markdown(stats.per_split)]
    parts += ["", "## Lengths", "", _length_unit(tokenizer), "", _markdown(stats.lengths)]
    if histogram:
        parts += ["", f"![token lengths]({histogram})"]
    parts += ["", "## Length bias", "", LENGTH_BIAS_INTRO, "", _markdown(stats.length_bias), ""]
    g = stats.length_gap
    parts.append(
        f"All {g.pairs:,} pairs: the chosen reply is the longer in {g.chosen_longer:.1%}; mean gap "
        f"{g.mean_gap:+.1f} ({g.gap_low:+.1f} to {g.gap_high:+.1f}, {interval_name(g.pairs)} 95% interval)."
        if g.pairs
        else "No pairs."
    )
    parts += ["", "## Scores", ""]
    if stats.score_margins is not None:
        parts += [
            f"{stats.scored_pairs:,} pairs carry scores; ties (equal scores): {stats.ties:.1%}.",
            "",
            "Score margin (chosen − rejected):",
            "",
            _markdown(stats.score_margins),
        ]
    else:
        parts.append("No pair carries scores.")
    parts += ["", "## Preference strength", ""]
    if stats.margins is not None:
        parts += [
            "The `margin` each source defines (a rating gap, a rank gap, a score ratio), per source:",
            "",
            _markdown(stats.margins),
        ]
    else:
        parts.append("No pair carries a margin.")
    parts += ["", "## Audit", ""]
    if stats.audit is not None:
        parts += ["Pairs `prefkit audit` marked (`metadata.audit`: flagged, or flipped), per source:", ""]
        parts.append(_markdown(stats.audit))
        parts += judge_lines(judges or [])
    else:
        parts.append("Not audited (no pair carries `metadata.audit`).")
    if stats.lineage is not None:
        parts += ["", "## Lineage", "", LINEAGE_INTRO, "", _markdown(stats.lineage)]
        if loop_record:
            parts += ["", f"The loop's record of every round (policies, scorers, counts, times): `{loop_record}`."]
    parts += ["", "## Largest duplicate clusters", "", _clusters(removed)]
    return "\n".join(parts) + "\n"


LINEAGE_INTRO = (
    "Pairs made from a model's own answers (`prefkit generate`, `score`, `convert`): the loop round and the "
    "policy that wrote the model's replies (`model:NAME`, or `adapter:` and its weights' sha256), and how many "
    "pairs have the reference as the chosen reply:"
)


LENGTH_BIAS_INTRO = (
    "Share of pairs whose chosen reply has more tokens than the rejected one, and the mean difference "
    "(chosen − rejected):"
)


def _length_unit(tokenizer: str | None) -> str:
    if tokenizer:
        return f"Tokens are {tokenizer}'s, with its chat template, as DPO training sees them."
    return "Tokens are words and punctuation marks, not a model tokenizer's tokens (`--model` counts real ones)."


def audit_table(frame: pl.DataFrame) -> pl.DataFrame | None:
    """Per source: pairs, and how many ``prefkit audit`` marked flagged or flipped; None when the
    file was not audited (no ``metadata.audit`` field).

    >>> frame = pl.DataFrame({"source": ["a", "a", "b"], "metadata": [{"audit": "flagged"}, {"audit": None}, {"audit": None}]})
    >>> audit_table(frame).rows()
    [('a', 2, 1, 0), ('b', 1, 0, 0)]
    """
    metadata = frame.schema.get("metadata")
    if not isinstance(metadata, pl.Struct) or "audit" not in {f.name for f in metadata.fields}:
        return None
    audit = pl.col("metadata").struct.field("audit")
    return (
        frame.group_by("source")
        .agg(
            pl.len().alias("pairs"),
            (audit == "flagged").sum().alias("flagged"),
            (audit == "flipped").sum().alias("flipped"),
        )
        .sort("source")
    )


def margin_table(frame: pl.DataFrame) -> pl.DataFrame:
    """Per source: pairs with a margin and the margin's quantiles."""
    margin = pl.col("margin")
    return (
        frame.filter(margin.is_not_null())
        .group_by("source")
        .agg(
            pl.len().alias("pairs"),
            *[margin.quantile(q, interpolation="nearest").alias(f"p{int(q * 100)}") for q in QUANTILES],
        )
        .sort("source")
    )


def _clusters(removed: pl.DataFrame | None, top: int = 5) -> str:
    """The largest duplicate clusters, from a :func:`~prefkit.data.dedupe.removal_frame`."""
    if removed is None:
        return "No duplicates were removed."
    dups = removed.filter(~pl.col("method").str.starts_with("decontaminate"))
    if dups.height == 0:
        return "No duplicates were removed."
    clusters = (
        dups.group_by("duplicate_of", maintain_order=True)
        .agg(pl.len().alias("size"), pl.col("method").unique().sort(), pl.col("prompt").first())
        .sort(["size", "duplicate_of"], descending=[True, False])
        .head(top)
    )
    lines = ["| kept pair | copies removed | methods | example removed prompt |", "| --- | --- | --- | --- |"]
    for kept_id, size, methods, prompt in clusters.iter_rows():
        example = prompt.replace("\n", " ").replace("|", "\\|")[:80]
        lines.append(f"| `{kept_id}` | {size} | {', '.join(methods)} | {example} |")
    decontaminated = removed.height - dups.height
    if decontaminated:
        lines += ["", f"{decontaminated:,} pairs were removed as matches of evaluation prompts."]
    return "\n".join(lines)


def class_balance(frame: pl.DataFrame) -> pl.DataFrame:
    """Per source, then in total: unpaired records, desirable (label true), undesirable, and the
    desirable share.

    >>> frame = pl.DataFrame({"source": ["a", "a", "b"], "label": [True, False, True]})
    >>> class_balance(frame).rows()
    [('a', 2, 1, 1, 0.5), ('b', 1, 1, 0, 1.0), ('all', 3, 2, 1, 0.667)]
    """

    def counts(grouped) -> pl.DataFrame:
        return grouped.agg(
            pl.len().alias("records"),
            pl.col("label").sum().cast(pl.UInt32).alias("desirable"),
            (~pl.col("label")).sum().cast(pl.UInt32).alias("undesirable"),
            pl.col("label").mean().round(3).alias("desirable_share"),
        )

    per_source = counts(frame.group_by("source")).sort("source")
    total = counts(frame.group_by(pl.lit("all").alias("source")))
    return pl.concat([per_source, total.select(per_source.columns)])


def kto_weights(desirable: int, undesirable: int) -> tuple[float, float, float, float] | None:
    """The ranges KTO's paper (Eq. 8) sets for ``desirable_weight`` (with ``undesirable_weight`` 1)
    and for ``undesirable_weight`` (with ``desirable_weight`` 1), as TRL's ``KTOTrainer`` checks them:
    ``(desirable low, desirable high, undesirable low, undesirable high)``; None when the classes
    are balanced (both weights 1) or one is empty.

    >>> kto_weights(100, 300)
    (3.0, 3.99, 0.25, 0.33)
    >>> kto_weights(50, 50) is None
    True
    """
    if desirable == undesirable or not desirable or not undesirable:
        return None
    ratio = undesirable / desirable
    return round(ratio, 2), round(ratio * 1.33, 2), round(1 / ratio / 1.33, 2), round(1 / ratio, 2)


@dataclass
class UnpairedStatistics:
    """What an unpaired card reports: records cut from pairs, the class balance per source, the KTO
    weight ranges it calls for (None when balanced or one class is empty), lengths by label, the audit."""

    records: int
    from_pairs: int
    balance: pl.DataFrame
    desirable: int
    undesirable: int
    kto_weights: tuple | None
    lengths_by_label: pl.DataFrame
    audit: pl.DataFrame | None


def unpaired_card_rows(frame: pl.DataFrame, counter: TokenCounter | None) -> pl.DataFrame:
    """What an unpaired card needs of each record, without its text: ``source``, ``label``,
    ``pair_id``, the audit mark and the completion's tokens (``__tokens``, from ``counter``; words by default).

    >>> turn = lambda role, text: [{"role": role, "content": text}]
    >>> frame = pl.DataFrame({"source": ["s"], "prompt": [turn("user", "2 + 2?")],
    ...                       "completion": [turn("assistant", "It is 4.")], "label": [True]})
    >>> unpaired_card_rows(frame, None).row(0)
    ('s', True, 4)
    """
    as_pairs = frame.select("prompt", pl.col("completion").alias("chosen"), pl.col("completion").alias("rejected"))
    counts = (counter or word_counts)(as_pairs)
    metadata = frame.schema.get("metadata")
    audited = isinstance(metadata, pl.Struct) and "audit" in {f.name for f in metadata.fields}
    kept = [c for c in ("source", "label", "pair_id") if c in frame.columns]
    audit = [pl.col("metadata").struct.field("audit").alias("__meta_audit")] if audited else []
    return frame.select(*kept, *audit).with_columns(__tokens=pl.Series(counts["chosen"], dtype=pl.Int64))


def unpaired_statistics(frame: pl.DataFrame) -> UnpairedStatistics:
    """The statistics of :func:`unpaired_card_text`, from the records' :func:`unpaired_card_rows`."""
    balance = class_balance(frame)
    desirable, undesirable = balance.row(-1)[2], balance.row(-1)[3]
    by_label = (
        frame.group_by(
            pl.when(pl.col("label")).then(pl.lit("desirable")).otherwise(pl.lit("undesirable")).alias("label")
        )
        .agg(
            pl.len().alias("records"),
            *[
                pl.col("__tokens").quantile(q, interpolation="nearest").cast(pl.Int64).alias(f"p{int(q * 100)}")
                for q in QUANTILES
            ],
            pl.col("__tokens").mean().round(1).alias("mean"),
        )
        .sort("label")
    )
    return UnpairedStatistics(
        records=frame.height,
        from_pairs=frame["pair_id"].is_not_null().sum() if "pair_id" in frame.columns else 0,
        balance=balance,
        desirable=desirable,
        undesirable=undesirable,
        kto_weights=kto_weights(desirable, undesirable),
        lengths_by_label=by_label,
        audit=audit_table(frame),
    )


def unpaired_card_text(frame: pl.DataFrame, data_files: dict[str, str], tokenizer: str | None) -> str:
    """The card of an unpaired file (``frame`` its :func:`unpaired_card_rows`): records per source and
    label, the class balance and the KTO weights it calls for, and completion lengths by label (a
    desirable class that is simply longer teaches length)."""
    stats = unpaired_statistics(frame)
    desirable, undesirable, weights = stats.desirable, stats.undesirable, stats.kto_weights
    parts = [
        front_matter(frame, data_files, ["kto", "unpaired-preference", "rlhf", "prefkit"]),
        "# Unpaired feedback",
        "",
    ]
    parts.append(
        f"{stats.records:,} records (prompt, completion, label) in prefkit's canonical unpaired schema, TRL's "
        f"unpaired preference format: `KTOTrainer` reads the files unchanged. {stats.from_pairs:,} of them were cut "
        "from preference pairs (`pair_id` names the pair). Made with prefkit."
    )
    parts += ["", "## Records per source and label", "", _markdown(stats.balance)]
    parts += ["", "## Class balance", ""]
    if weights is None:
        parts.append(
            f"{desirable:,} desirable and {undesirable:,} undesirable records: "
            + (
                "balanced, so KTO's `desirable_weight` and `undesirable_weight` stay 1."
                if desirable == undesirable
                else "one class is empty; KTO needs both."
            )
        )
    else:
        parts.append(
            f"{desirable:,} desirable and {undesirable:,} undesirable records. KTO's paper (Eq. 8) asks that "
            f"`desirable_weight × {desirable:,} / (undesirable_weight × {undesirable:,})` lie in [1, 4/3]: set "
            f"`desirable_weight` in [{weights[0]}, {weights[1]}] (undesirable 1) or `undesirable_weight` in "
            f"[{weights[2]}, {weights[3]}] (desirable 1), not both."
        )
    unit = f"{tokenizer} tokens" if tokenizer else "words and punctuation marks"
    parts += [
        "",
        "## Completion lengths by label",
        "",
        f"The completion's {unit}" + (" under the model's chat template:" if tokenizer else ":"),
        "",
        _markdown(stats.lengths_by_label),
    ]
    parts += ["", "## Audit", ""]
    audited = stats.audit
    parts.append(_markdown(audited) if audited is not None else "Not audited (no record carries `metadata.audit`).")
    return "\n".join(parts) + "\n"


def write_card(
    splits: dict[str, pl.DataFrame],
    path: Path,
    data_files: dict[str, str],
    source_counts: list[dict] | None = None,
    removed: pl.DataFrame | None = None,
    tokenizer: str | None = None,
    judges: list[dict] | None = None,
    loop_record: str | None = None,
) -> Path:
    """Writes the card and its histogram (``lengths.png`` beside it); ``splits`` are each split's
    :func:`card_rows`, their tokens counted with ``tokenizer`` (named in the card), else as words."""
    histogram = path.with_name("lengths.png")
    unit = f"{tokenizer} tokens" if tokenizer else "tokens (words and punctuation)"
    write_histogram(pl.concat(list(splits.values())), histogram, unit)
    # The title does not come from the folder name: the same mix written elsewhere stays byte-identical.
    text = card_text(
        splits,
        data_files,
        source_counts,
        removed,
        histogram.name,
        tokenizer=tokenizer,
        judges=judges,
        loop_record=loop_record,
    )
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def loop_record_of(file: Path) -> str | None:
    """``../loop.json`` when ``file`` is in a round folder of a ``prefkit loop`` (``DIR/round-K/pairs.jsonl``)."""
    folder = file.resolve().parent
    return "../loop.json" if folder.name.startswith("round-") and (folder.parent / "loop.json").is_file() else None


def audit_judges(file: Path) -> list[dict]:
    """The pairwise judges of the ``prefkit audit`` run that wrote ``file``, from the report it left
    beside it (``NAME.report.json``), each with its bias figures; none for any other file."""
    import json

    from prefkit.data.writers import sidecar

    report = sidecar(file, "report.json")
    try:
        found = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(found, dict) or "flagged_file" not in found:
        return []
    return [s for s in found.get("scorers", []) if isinstance(s, dict) and s.get("bias")]


def judge_lines(judges: list[dict]) -> list[str]:
    """The card's lines on the judges that audited the data: position flips, longer-wins, agreement.

    >>> judge_lines([{"name": "j", "spec": "judge:openai:m", "bias": {"judged": 10, "position_flip_rate": 0.1,
    ...     "decisive": 8, "longer_wins": 0.75, "agreement": {"number": 0.5}}}])[-1]
    '| j | `judge:openai:m` | 10.0% of 10 | 75.0% of 8 | number 50.0% |'
    """
    if not judges:
        return []

    def share(value) -> str:
        return "-" if value is None else f"{value:.1%}"

    lines = [
        "",
        (
            "The pairwise judges of that audit, measured on these pairs (a judge that follows the position or "
            "the length is a source of wrong labels):"
        ),
        "",
        "| judge | spec | position flips | picks the longer reply | agreement |",
        "| --- | --- | --- | --- | --- |",
    ]
    for j in judges:
        b = j["bias"]
        agree = ", ".join(f"{k} {share(v)}" for k, v in (b.get("agreement") or {}).items()) or "-"
        lines.append(
            f"| {j['name']} | `{j['spec']}` | {share(b['position_flip_rate'])} of {b['judged']:,} "
            f"| {share(b['longer_wins'])} of {b['decisive']:,} | {agree} |"
        )
    return lines


@dataclass
class CardResult(Result):
    """The card written for a file: its path, the length histogram beside it (None when the card has
    none), the file's kind (``pairs`` or ``unpaired``) and its records."""

    card: str
    histogram: str | None
    kind: str
    records: int


def card_for_file(
    file: str | Path, output: str | Path, token_counter: TokenCounter | None = None, tokenizer: str | None = None
) -> CardResult:
    """The same card for any canonical file (``prefkit card``), streamed: the file is validated and
    counted a batch at a time, and only each row's :func:`card_rows` are held."""
    from prefkit.data.validate import FileCheck

    file = Path(file)
    output = Path(output)
    histogram = output.with_name("lengths.png")
    check_outputs([("-o", output), ("the histogram", histogram)], [file])
    check = FileCheck(file)
    rows = []
    for frame, _ in check.batches():
        if frame.height and not check.failing:
            unpaired = check.kind == "unpaired"
            rows.append(unpaired_card_rows(frame, token_counter) if unpaired else card_rows(frame, token_counter))
    check.raise_unless(None, 0)  # not canonical: ValidationFailed (exit 1), as everywhere
    split_name = next((s for s in ("train", "test", "validation") if s in file.name), "train")
    if check.kind == "unpaired":
        table = concat_card_rows(rows) if rows else unpaired_card_rows(_no_records(check.style, "unpaired"), None)
        text = unpaired_card_text(table, {split_name: str(file)}, tokenizer)
        with atomic_path(output) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return CardResult(str(output), None, "unpaired", table.height)
    table = concat_card_rows(rows) if rows else card_rows(_no_records(check.style, "pairs"), None)
    write_card(
        {split_name: table},
        output,
        data_files={split_name: str(file)},
        tokenizer=tokenizer,
        judges=audit_judges(file),
        loop_record=loop_record_of(file),
    )
    return CardResult(str(output), str(histogram) if histogram.exists() else None, "pairs", table.height)


def _no_records(style: str | None, kind: str) -> pl.DataFrame:
    return pl.DataFrame(schema=frame_schema(style or "conversational", kind))
