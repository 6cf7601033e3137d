"""The token audit: what the chat template and truncation do to each pair before training.

Pairs are tokenized by :func:`prefkit.lm.pair_tokens.tokenize_pairs`, the tokenization ``train`` and
``eval`` use, and truncated as TRL's collator truncates them. Each pair gets at most one fault, the
first of:

- ``prompt_fills_max_length``: the prompt alone reaches ``max_length``; training drops the pair;
- ``reply_without_tokens``: a reply has no tokens left after truncation (or none at all);
- ``identical_after_truncation``: both sequences are the same after truncation, so the pair
  teaches nothing;
- ``prompt_not_prefix``: the prompt rendered alone is not a prefix of prompt + reply rendered (the
  template rewrites history, e.g. strips reasoning); the reply boundary moves;
- ``double_bos``: the sequence starts with two BOS tokens (template and tokenizer both add one);
- ``double_eos``: a reply's last EOS follows another EOS;
- ``missing_end_of_turn``: a reply that was not truncated does not end with the template's
  end-of-turn token (or EOS for plain text), so the model does not learn to stop.

The first three carry no learning signal, and ``train`` leaves those pairs out (listing them in
``dropped.jsonl``); the others train, wrongly, and are errors so a CI gate can stop them.
``long_prompts: trim_turns`` removes the earliest whole turns of a prompt that does not fit
(keeping a system message and the last user turn) instead of letting the pair be truncated or
dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from prefkit.data.columns import FILE, LINE
from prefkit.lm.pair_tokens import TokenizedPairs, paused_gc, tokenize_pairs, truncate
from prefkit.results import Result, TokenReject, count_reasons

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TRUNCATION_MODES = ("keep_start", "keep_end")
LONG_PROMPTS = ("drop", "trim_turns")
_END_PROBE = "prefkit-end-of-turn-probe"
END_WINDOW = 3
"""How close to a reply's end its end-of-turn token must stand (ChatML puts a newline after it)."""


class TokenReason(StrEnum):
    PROMPT_FILLS_MAX_LENGTH = "prompt_fills_max_length"
    REPLY_WITHOUT_TOKENS = "reply_without_tokens"
    IDENTICAL_AFTER_TRUNCATION = "identical_after_truncation"
    PROMPT_NOT_PREFIX = "prompt_not_prefix"
    DOUBLE_BOS = "double_bos"
    DOUBLE_EOS = "double_eos"
    MISSING_END_OF_TURN = "missing_end_of_turn"


NO_SIGNAL = {
    TokenReason.PROMPT_FILLS_MAX_LENGTH,
    TokenReason.REPLY_WITHOUT_TOKENS,
    TokenReason.IDENTICAL_AFTER_TRUNCATION,
}
"""Errors that leave a pair nothing to learn from: training leaves these pairs out."""


@dataclass
class Truncation:
    """Of the pairs training keeps: how many lose tokens to ``max_length``, on which side, and how many tokens."""

    pairs: int = 0
    chosen: int = 0
    """Pairs whose chosen sequence alone is cut."""
    rejected: int = 0
    """Pairs whose rejected sequence alone is cut."""
    both: int = 0
    tokens_lost: int = 0


@dataclass
class LengthQuantiles:
    """Token length quantiles of one part of the pairs (None when there are no pairs)."""

    p5: int | None = None
    p25: int | None = None
    p50: int | None = None
    p75: int | None = None
    p95: int | None = None
    max: int | None = None


@dataclass
class TokenLengths:
    """Length quantiles of the prompt, each reply, and the longer whole sequence of each pair."""

    prompt: LengthQuantiles
    chosen: LengthQuantiles
    rejected: LengthQuantiles
    pair: LengthQuantiles


@dataclass
class LengthBias:
    """One source's length bias: a model can learn "longer is better" from it when ``chosen_longer`` is far from 0.5."""

    pairs: int
    chosen_longer: float
    """Share of pairs whose chosen reply has more tokens than the rejected one."""
    mean_difference: float
    """Mean of chosen minus rejected reply tokens."""


@dataclass
class KeptByChoice:
    """Pairs training keeps under each ``long_prompts`` choice."""

    drop: int
    trim_turns: int


@dataclass
class LongPrompts:
    """The ``long_prompts`` choice made, and how many pairs each choice would let training keep."""

    choice: str
    kept: KeptByChoice
    trimmed: int
    """Prompts trimmed under the choice made (0 under ``drop``)."""


@dataclass
class TokenAudit(Result):
    """The audit of a set of pairs; ``pairs == ok + errors``. ``kept`` indexes the pairs training uses."""

    pairs: int
    ok: int
    errors: int
    reasons: dict[str, int]
    truncated: Truncation
    lengths: TokenLengths
    length_bias: dict[str, LengthBias]
    """Per source."""
    long_prompts: LongPrompts
    trimmed: list[dict]
    """Each trimmed prompt: ``{index, turns_removed, prompt_tokens_before, prompt_tokens_after}`` (and
    ``id`` and ``line`` where known)."""
    error_records: list[TokenReject] = field(repr=False)
    """Each pair with an error, as the rejects file writes it."""
    kept: list[int] = field(repr=False)
    tokens: TokenizedPairs = field(repr=False)

    derived_fields = ("dropped",)

    @property
    def dropped(self) -> int:
        """Pairs training leaves out: ``pairs == len(kept) + dropped``."""
        return self.pairs - len(self.kept)


def end_of_turn_token(tokenizer, conversational: bool) -> int | None:
    """The token a template closes an assistant turn with (``<|im_end|>`` for ChatML); EOS for plain text.

    Read from an assistant turn that is not the last one, so a template that leaves the final turn
    open (the fault this looks for) still shows its end-of-turn token; None when the template closes
    turns without a special token.
    """
    if not conversational:
        return tokenizer.eos_token_id
    text = tokenizer.apply_chat_template(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": _END_PROBE},
            {"role": "user", "content": "Bye"},
        ],
        tokenize=False,
    )
    if _END_PROBE not in text:
        return None
    tail = tokenizer(text[text.index(_END_PROBE) + len(_END_PROBE) :], add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    return next((i for i in tail if i in special), None)


def _double_eos(ids: list[int], eos: int | None) -> bool:
    if eos is None or eos not in ids:
        return False
    last = len(ids) - 1 - ids[::-1].index(eos)
    return last > 0 and ids[last - 1] == eos


def pair_fault(
    prompt: list[int],
    chosen: list[int],
    rejected: list[int],
    cut: int,
    max_length: int | None,
    mode: str,
    special: dict,
) -> tuple[TokenReason, str] | None:
    """The first error of one tokenized pair, with a detail, or None.

    >>> special = {"bos": 1, "eos": 2, "end": 2}
    >>> pair_fault([1, 5, 6], [7, 2], [8, 2], 0, 3, "keep_start", special)
    (<TokenReason.PROMPT_FILLS_MAX_LENGTH: 'prompt_fills_max_length'>, 'prompt has 3 tokens, max_length is 3')
    >>> pair_fault([1, 5], [7, 9, 2], [7, 9, 3, 2], 0, 4, "keep_start", special)[0]
    <TokenReason.IDENTICAL_AFTER_TRUNCATION: 'identical_after_truncation'>
    >>> pair_fault([1, 5], [7, 2], [8, 2], 0, 8, "keep_start", special) is None
    True
    """
    if max_length is not None and mode == "keep_start" and len(prompt) >= max_length:
        return TokenReason.PROMPT_FILLS_MAX_LENGTH, f"prompt has {len(prompt)} tokens, max_length is {max_length}"
    cut_c, cut_r = truncate(prompt, chosen, max_length, mode), truncate(prompt, rejected, max_length, mode)
    for side, (_, reply), original in (("chosen", cut_c, chosen), ("rejected", cut_r, rejected)):
        if not reply:
            return TokenReason.REPLY_WITHOUT_TOKENS, f"{side} has no tokens left ({len(original)} before truncation)"
    if cut_c[0] + cut_c[1] == cut_r[0] + cut_r[1] and len(cut_c[1]) == len(cut_r[1]):
        return (
            TokenReason.IDENTICAL_AFTER_TRUNCATION,
            f"the replies differ only after max_length {max_length} ({len(chosen)} and {len(rejected)} reply tokens)",
        )
    if cut:
        return TokenReason.PROMPT_NOT_PREFIX, f"the last {cut} tokens of the prompt render differently before a reply"
    bos = special["bos"]
    if bos is not None and (prompt + chosen)[:2] == [bos, bos]:
        return TokenReason.DOUBLE_BOS, f"the sequence starts with BOS twice (token {bos})"
    for side, reply in (("chosen", chosen), ("rejected", rejected)):
        if _double_eos(reply, special["eos"]):
            return TokenReason.DOUBLE_EOS, f"{side} ends with EOS twice (token {special['eos']})"
    end = special["end"]
    for side, reply, kept in (("chosen", chosen, cut_c[1]), ("rejected", rejected, cut_r[1])):
        # Within the last few tokens: ChatML closes with <|im_end|> and a newline after it.
        if end is not None and len(kept) == len(reply) and end not in reply[-END_WINDOW:]:
            return TokenReason.MISSING_END_OF_TURN, f"{side} does not end with the end-of-turn token {end}"
    return None


def trim_candidates(prompt: list[dict]) -> list[list[dict]]:
    """The prompt with its earliest whole turns removed, one more turn each time; a system message
    and the last user turn always stay.

    >>> p = [{"role": "system", "content": "s"}, {"role": "user", "content": "a"},
    ...      {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    >>> [[m["content"] for m in c] for c in trim_candidates(p)]
    [['s', 'c']]
    """
    system = prompt[:1] if prompt and prompt[0]["role"] == "system" else []
    turns = prompt[len(system) :]
    return [system + turns[k:] for k in range(2, len(turns), 2)]


def _fits(prompt: int, chosen: int, rejected: int, max_length: int | None) -> bool:
    return max_length is None or prompt + max(chosen, rejected) <= max_length


def _quantiles(values: np.ndarray) -> LengthQuantiles:
    if not len(values):
        return LengthQuantiles()
    found = {f"p{round(q * 100)}": int(np.quantile(values, q)) for q in QUANTILES}
    return LengthQuantiles(**found, max=int(values.max()))


def _pair_faults(tokens: TokenizedPairs, max_length, mode: str, special: dict, where: list[dict], only=None):
    """Every pair's verdict: ``{index: (reason, detail)}`` for the pairs with an error (of ``only``'s
    indices when given)."""
    verdicts = {}
    for i in range(len(tokens)) if only is None else only:
        found = pair_fault(
            tokens.prompt_ids[i],
            tokens.chosen_ids[i],
            tokens.rejected_ids[i],
            tokens.prompt_cut[i],
            max_length,
            mode,
            special,
        )
        if found is not None:
            verdicts[i] = found
    return verdicts


def _records_and_kept(verdicts: dict, n: int, where: list[dict]) -> tuple[list[TokenReject], list[int]]:
    records = [
        TokenReject(**where[i], reason=str(reason), detail=detail, dropped=reason in NO_SIGNAL)
        for i, (reason, detail) in sorted(verdicts.items())
    ]
    kept = [i for i in range(n) if i not in verdicts or verdicts[i][0] not in NO_SIGNAL]
    return records, kept


def audit_pairs(
    tokenizer,
    prompts: list,
    chosen: list,
    rejected: list,
    max_length: int | None,
    truncation_mode: str = "keep_start",
    long_prompts: str = "drop",
    sources: list[str] | None = None,
    where: list[dict] | None = None,
) -> TokenAudit:
    """Tokenizes and audits pairs; ``where`` gives each pair's ``{source, line, id}`` for the records.

    Both choices of ``long_prompts`` are checked, so the report says how many pairs each keeps; the
    records, kept pairs and tokens are those of the choice made.
    """
    n = len(prompts)
    sources = sources or ["-"] * n
    where = where or [{"source": "-", "line": i + 1, "id": None} for i in range(n)]
    with paused_gc():
        chunk = _audit(tokenizer, prompts, chosen, rejected, max_length, truncation_mode, long_prompts, sources, where)
    return _summary([chunk], max_length, long_prompts)


def _audit(tokenizer, prompts, chosen, rejected, max_length, truncation_mode, long_prompts, sources, where):
    n = len(prompts)
    special = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "end": None}
    tokens = tokenize_pairs(tokenizer, prompts, chosen, rejected)
    if n:
        special["end"] = end_of_turn_token(tokenizer, isinstance(prompts[0], list))
    verdicts = _pair_faults(tokens, max_length, truncation_mode, special, where)
    records, kept = _records_and_kept(verdicts, n, where)
    trimmed_tokens = TokenizedPairs()
    trimmed_tokens.extend(tokens)
    trimmed = _trim_turns(tokenizer, list(prompts), chosen, rejected, trimmed_tokens, max_length)
    # Only a trimmed pair can change its verdict.
    changed = {t["index"] for t in trimmed}
    trim_verdicts = {i: v for i, v in verdicts.items() if i not in changed}
    trim_verdicts |= _pair_faults(trimmed_tokens, max_length, truncation_mode, special, where, only=sorted(changed))
    trim_records, trim_kept = _records_and_kept(trim_verdicts, n, where)
    kept_by_choice = {"drop": len(kept), "trim_turns": len(trim_kept)}
    if long_prompts == "trim_turns":
        tokens, records, kept = trimmed_tokens, trim_records, trim_kept
    else:
        trimmed = []
    lengths = {
        name: np.array([len(x) for x in getattr(tokens, f"{name}_ids")], dtype=np.int32)
        for name in ("prompt", "chosen", "rejected")
    }
    return _Chunk(n, lengths, list(sources), records, kept, trimmed, kept_by_choice, tokens)


@dataclass
class _Chunk:
    """One batch of pairs audited: what :func:`_summary` needs of it, indices local to the batch."""

    pairs: int
    lengths: dict[str, np.ndarray]
    sources: list[str]
    records: list[dict]
    kept: list[int]
    trimmed: list[dict]
    kept_by_choice: dict[str, int]
    tokens: TokenizedPairs


def _summary(chunks: list[_Chunk], max_length: int | None, long_prompts: str) -> TokenAudit:
    """The audit of the batches together: counts added, lengths joined, indices made global. The
    tokens are kept only for a single batch (what training needs); a streamed lint keeps none."""
    offsets = np.cumsum([0] + [c.pairs for c in chunks])
    kept = [int(i + offset) for c, offset in zip(chunks, offsets, strict=False) for i in c.kept]
    trimmed = [
        t | {"index": t["index"] + int(offset)} for c, offset in zip(chunks, offsets, strict=False) for t in c.trimmed
    ]
    records = [r for c in chunks for r in c.records]
    lengths = {
        name: np.concatenate([c.lengths[name] for c in chunks]) if chunks else np.zeros(0, np.int32)
        for name in ("prompt", "chosen", "rejected")
    }
    pair = lengths["prompt"] + np.maximum(lengths["chosen"], lengths["rejected"])
    n = int(offsets[-1])
    return TokenAudit(
        pairs=n,
        ok=n - len(records),
        errors=len(records),
        reasons=reason_counts(records),
        truncated=_truncation({k: v[kept] for k, v in lengths.items()}, max_length),
        lengths=TokenLengths(**{k: _quantiles(v) for k, v in lengths.items()}, pair=_quantiles(pair)),
        length_bias=_length_bias(lengths, [s for c in chunks for s in c.sources]),
        long_prompts=LongPrompts(
            choice=long_prompts,
            kept=KeptByChoice(**{k: sum(c.kept_by_choice[k] for c in chunks) for k in LONG_PROMPTS}),
            trimmed=len(trimmed),
        ),
        trimmed=trimmed,
        error_records=records,
        kept=kept,
        tokens=chunks[0].tokens if len(chunks) == 1 else TokenizedPairs(),
    )


def _truncation(lengths: dict[str, np.ndarray], max_length: int | None) -> Truncation:
    """Of the pairs training keeps (``lengths`` of those only): how many lose tokens, on which side."""
    if max_length is None:
        return Truncation()
    over = {side: np.maximum(lengths["prompt"] + lengths[side] - max_length, 0) for side in ("chosen", "rejected")}
    c, r = over["chosen"] > 0, over["rejected"] > 0
    return Truncation(
        pairs=int((c | r).sum()),
        chosen=int((c & ~r).sum()),
        rejected=int((r & ~c).sum()),
        both=int((c & r).sum()),
        tokens_lost=int(over["chosen"].sum() + over["rejected"].sum()),
    )


def _length_bias(lengths: dict[str, np.ndarray], sources: list[str]) -> dict[str, LengthBias]:
    """Per source: share of pairs whose chosen reply has more tokens than the rejected, and the mean difference."""
    out = {}
    source_array = np.array(sources, dtype=object)
    for source in dict.fromkeys(sources):
        mask = source_array == source
        diff = lengths["chosen"][mask] - lengths["rejected"][mask]
        out[source] = LengthBias(
            pairs=int(mask.sum()),
            chosen_longer=round(float((diff > 0).mean()), 4),
            mean_difference=round(float(diff.mean()), 2),
        )
    return out


def _trim_turns(tokenizer, prompts, chosen, rejected, tokens: TokenizedPairs, max_length: int | None) -> list[dict]:
    """Replaces, in ``tokens`` and ``prompts``, each pair that does not fit by the shortest trim of
    its prompt that fits (or the most trimmed one); returns what was trimmed."""
    if max_length is None or not prompts or not isinstance(prompts[0], list):
        return []
    todo = [
        i
        for i in range(len(prompts))
        if not _fits(len(tokens.prompt_ids[i]), len(tokens.chosen_ids[i]), len(tokens.rejected_ids[i]), max_length)
        and trim_candidates(prompts[i])
    ]
    flat = [(i, c) for i in todo for c in trim_candidates(prompts[i])]
    if not flat:
        return []
    candidates = tokenize_pairs(
        tokenizer, [c for _, c in flat], [chosen[i] for i, _ in flat], [rejected[i] for i, _ in flat]
    )
    best: dict[int, int] = {}
    for k, (i, _) in enumerate(flat):
        if i in best and _fits(*(len(x[best[i]]) for x in candidates.as_columns().values()), max_length):
            continue  # an earlier (shorter) trim already fits
        best[i] = k
    trimmed = []
    for i, k in best.items():
        before = len(tokens.prompt_ids[i])
        for name in ("prompt_ids", "chosen_ids", "rejected_ids", "prompt_cut"):
            getattr(tokens, name)[i] = getattr(candidates, name)[k]
        trimmed.append(
            {
                "index": i,
                "turns_removed": (len(prompts[i]) - len(flat[k][1])) // 2,
                "prompt_tokens_before": before,
                "prompt_tokens_after": len(tokens.prompt_ids[i]),
            }
        )
        prompts[i] = flat[k][1]  # the caller's copy: a later trim starts from here
    return trimmed


LINT_BATCH = 4096
"""Pairs ``lint`` tokenizes and checks at a time."""


def audit_frame(
    tokenizer, frame, max_length, truncation_mode: str, long_prompts: str, batch: int | None = None
) -> TokenAudit:
    """:func:`audit_columns` over a canonical polars frame; with ``batch``, slice by slice, keeping
    each slice's verdicts and lengths but not its tokens (``tokens`` is then empty)."""
    if batch is None:
        return audit_columns(tokenizer, frame.to_dict(as_series=False), max_length, truncation_mode, long_prompts)
    return audit_frames(tokenizer, [frame], max_length, truncation_mode, long_prompts, batch)


def audit_frames(
    tokenizer, frames: Iterable, max_length, truncation_mode: str, long_prompts: str, batch: int
) -> TokenAudit:
    """:func:`audit_frame` over canonical frames that arrive one after another (a file's batches),
    ``batch`` rows at a time: memory holds one slice's tokens and every pair's verdict and lengths."""
    chunks, last = [], None
    with paused_gc():
        for frame in frames:
            last = frame
            for offset in range(0, frame.height, batch):
                columns = frame.slice(offset, batch).to_dict(as_series=False)
                chunk = _columns_chunk(tokenizer, columns, max_length, truncation_mode, long_prompts)
                chunk.tokens = TokenizedPairs()
                chunks.append(chunk)
        if not chunks and last is not None:  # no pairs at all: one empty slice gives the empty summary
            chunks.append(
                _columns_chunk(tokenizer, last.to_dict(as_series=False), max_length, truncation_mode, long_prompts)
            )
            chunks[0].tokens = TokenizedPairs()
    return _summary(chunks, max_length, long_prompts)


def audit_columns(tokenizer, columns: dict[str, list], max_length, truncation_mode: str, long_prompts: str):
    """:func:`audit` over canonical columns (``prompt``, ``chosen``, ``rejected``, and ``source``,
    ``id``, ``__file``, ``__line`` where known, which the error records and trims then name)."""
    with paused_gc():
        chunk = _columns_chunk(tokenizer, columns, max_length, truncation_mode, long_prompts)
    return _summary([chunk], max_length, long_prompts)


def _columns_chunk(tokenizer, columns: dict[str, list], max_length, truncation_mode: str, long_prompts: str):
    n = len(columns["prompt"])
    where = [
        {"source": f, "line": ln, "id": i}
        for f, ln, i in zip(
            columns.get(FILE, ["-"] * n),
            columns.get(LINE, range(1, n + 1)),
            columns.get("id", [None] * n),
            strict=True,
        )
    ]
    sources = columns.get("source") or ["-"] * n
    prompts, chosen, rejected = columns["prompt"], columns["chosen"], columns["rejected"]
    chunk = _audit(tokenizer, prompts, chosen, rejected, max_length, truncation_mode, long_prompts, sources, where)
    for t in chunk.trimmed:
        t |= {"id": where[t["index"]]["id"], "line": where[t["index"]]["line"]}
    return chunk


def reason_counts(records) -> dict[str, int]:
    """Rejected rows per reason, by reason name.

    >>> reason_counts([TokenReject("a", 1, "x", "tie", None, True), TokenReject("a", 2, "y", "tie", None, True)])
    {'tie': 2}
    """
    return count_reasons(r.reason for r in records)


def token_counter(model: str, trust_remote_code: bool = False):
    """A card's token counter (:data:`prefkit.data.card.TokenCounter`) on ``model``'s tokenizer and
    chat template: the lengths training sees, prompt rendered with its generation prompt."""
    from prefkit.lm.loading import load_tokenizer

    tokenizer = load_tokenizer(model, trust_remote_code)

    def count(frame) -> dict[str, list[int]]:
        tokens = tokenize_pairs(tokenizer, *(frame[c].to_list() for c in ("prompt", "chosen", "rejected")))
        return {
            name: [len(ids) for ids in column]
            for name, column in zip(("prompt", "chosen", "rejected"), tokens.as_columns().values(), strict=True)
        }

    return count
