"""One registry of scorer kinds: what ``--scorer SPEC`` means to ``score``, ``eval --generate`` and ``audit``.

A spec is ``[NAME=]KIND:TARGET``. Each kind is one :class:`ScorerKind` in :data:`SCORER_KINDS`:

- ``verify:NAME`` (``exact``, ``number``, ``sample_task``), ``verify:MODULE:FUNCTION`` or
  ``verify:PATH.py:FUNCTION``: a function ``(prompt, completion, reference) -> number | bool | None``,
  the shape of TRL's reward functions (``True`` scores 1.0; ``None`` leaves the completion unscored);
- ``reward-model:NAME|DIR``: an ``AutoModelForSequenceClassification`` reward model, batched, each
  conversation rendered with the reward model's own chat template (not the policy's);
- ``implicit:RUN[:REF]``: the DPO implicit reward ``beta * (log pi - log pi_ref)`` of a completion;
  ``RUN`` is an adapter (its base, adapters disabled, is the reference) or a model with ``REF`` given;
- ``judge:MODEL`` or ``judge:MODULE:FUNCTION`` / ``judge:PATH.py:FUNCTION``: a pairwise judge that
  reads both replies of a pair (in both orders) and names the better; it votes on pairs, so only
  ``audit`` takes it.

A scorer that fails on one completion (a user's verifier raising, a NaN) leaves that completion
unscored with its reason (``scorer_error``, ``invalid_score``) and the run goes on; a new kind is one
entry here plus its tests.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from prefkit.config import option
from prefkit.errors import DataError, UsageError
from prefkit.lm.serving import Ledger

SCORER_HELP = (
    "verify:NAME|MODULE:FUNCTION|PATH.py:FUNCTION, reward-model:NAME|DIR, implicit:RUN[:REF] or "
    "rate:MODEL[@URL] (a model behind an OpenAI-compatible server rates each completion); NAME=SPEC names it."
)
JUDGE_HELP = (
    "verify:NAME|MODULE:FUNCTION|PATH.py:FUNCTION, reward-model:NAME|DIR, implicit:RUN[:REF], rate:MODEL[@URL], "
    "or a pairwise judge:MODEL|MODULE:FUNCTION|openai:MODEL[@URL] (both orders; verdicts that do not survive "
    "the swap do not count); NAME=SPEC names it."
)
FAIL_ON_SCORER_ERROR_HELP = (
    "Stop (exit 1) at the first completion a scorer fails on; default: leave it unscored with the reason."
)
JUDGE_QUESTION = (
    "Which response answers the user better? Reply with the letter only.\n\n"
    "User: {prompt}\n\nResponse A: {first}\n\nResponse B: {second}\n\nThe better response is"
)


@dataclass(frozen=True)
class ScorerSpec:
    """One parsed ``--scorer``: its name, kind, target and (``implicit``) reference model."""

    name: str
    kind: str
    target: str
    reference: str | None = None
    text: str = field(default="", compare=False, repr=False)
    """The spec as the user wrote it (reports quote it)."""

    @property
    def pairwise(self) -> bool:
        """Whether the scorer votes on pairs (a judge) rather than scoring completions."""
        return SCORER_KINDS[self.kind].pairwise


@dataclass(frozen=True)
class ModelScoring:
    """How model scorers run: batch size, length limit, remote code; whether a scorer error stops the run."""

    batch_size: int = 16
    max_length: int = 1024
    trust_remote_code: bool = False
    fail_on_scorer_error: bool = False
    http: HttpScoring | None = None
    """How the server-backed kinds (``rate:``, ``judge:openai:``) ask their server."""


@dataclass(frozen=True)
class HttpScoring:
    """The client settings of the server-backed scorers, their rubric and their response cache."""

    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 5
    timeout: float = 120.0
    cache: str | None = None
    rubric: str | None = None
    """A file holding the rating prompt, with ``{prompt}``, ``{completion}`` and ``{reference}``."""


@dataclass(frozen=True)
class Unscored:
    """A completion a scorer left without a score, and why (``scorer_error``, ``invalid_score``)."""

    id: str
    completion: int
    reason: str
    detail: str
    row: int = field(default=-1, repr=False, compare=False)
    """The record's position in the batch scored (ids need not be unique in a user's file)."""


@dataclass
class Scores:
    """One scorer's scores, ``values[record][completion]`` (None: unscored), and the failures among them."""

    values: list[list[float | None]]
    failures: list[Unscored] = field(default_factory=list)
    ledger: Ledger | None = None
    """A server-backed scorer's requests, retries, cache hits and tokens."""


@dataclass
class Verdicts:
    """A pairwise judge's vote on each pair, and the pairs it failed on (``scorer_error``)."""

    votes: np.ndarray
    failures: list[Unscored] = field(default_factory=list)
    ledger: Ledger | None = None


@dataclass(frozen=True)
class ScorerKind:
    """A kind of scorer: whether it votes on pairs, and the function that scores a batch of records."""

    name: str
    default_name: Callable[[str], str]
    """The scorer's name when the spec gives none, from its target."""
    score: Callable[[ScorerSpec, list[dict], ModelScoring], Scores] | None = None
    """Completion scorers: every completion of the records scored."""
    vote: Callable[[ScorerSpec, list[dict], ModelScoring], Verdicts] | None = None
    """Pairwise judges: every pair's vote (``chosen``, ``rejected``, ``inconsistent``, ``none``)."""

    @property
    def pairwise(self) -> bool:
        return self.vote is not None


def parse_scorer(text: str) -> ScorerSpec:
    """A ``--scorer`` value as its parts; the name defaults to the verifier's function name, or the kind.

    >>> parse_scorer("verify:sample_task")
    ScorerSpec(name='sample_task', kind='verify', target='sample_task', reference=None)
    >>> parse_scorer("rm=reward-model:runs/rm")
    ScorerSpec(name='rm', kind='reward-model', target='runs/rm', reference=None)
    >>> parse_scorer("implicit:runs/dpo:base-model")
    ScorerSpec(name='implicit', kind='implicit', target='runs/dpo', reference='base-model')
    >>> parse_scorer("judge:my_judges.py:prefer_short").pairwise
    True
    """
    name, sep, spec = text.partition("=")
    if not sep or ":" in name:
        name, spec = "", text
    kind, sep, target = spec.partition(":")
    if kind not in SCORER_KINDS or not sep or not target:
        raise UsageError(f"--scorer {text}: expected KIND:TARGET with KIND one of {', '.join(SCORER_KINDS)}")
    reference = None
    if kind == "implicit" and ":" in target:
        target, reference = target.split(":", 1)
    return ScorerSpec(name or SCORER_KINDS[kind].default_name(target), kind, target, reference, text)


def parse_scorers(texts: list[str], pairwise: bool = False) -> list[ScorerSpec]:
    """Every ``--scorer``, parsed; two with one name are a usage error (name them ``NAME=SPEC``), and
    so is a pairwise judge where only completion scorers fit (``pairwise=False``).

    >>> [s.name for s in parse_scorers(["verify:number", "rm=reward-model:runs/rm"])]
    ['number', 'rm']
    >>> parse_scorers(["verify:number", "verify:number"])
    Traceback (most recent call last):
    prefkit.errors.UsageError: two scorers are both named number: name them, NAME=SPEC
    """
    specs = [parse_scorer(text) for text in texts]
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"two scorers are both named {name}: name them, NAME=SPEC")
    for spec in specs:
        if spec.pairwise and not pairwise:
            raise UsageError(
                f"--scorer {spec.text}: a pairwise judge votes on pairs, not completions; use prefkit audit"
            )
    return specs


def run_scorer(spec: ScorerSpec, records: list[dict], config: ModelScoring) -> Scores:
    """Every completion's score under one scorer, in record and completion order; a non-finite score
    is unscored as ``invalid_score`` (or, with ``fail_on_scorer_error``, a :class:`DataError`)."""
    if spec.pairwise:
        raise UsageError(f"--scorer {spec.text}: a pairwise judge votes on pairs, not completions")
    scores = SCORER_KINDS[spec.kind].score(spec, records, config)
    for r, row in enumerate(scores.values):
        for i, value in enumerate(row):
            if value is not None and not math.isfinite(value):
                row[i] = None
                _fail(
                    scores, spec.name, (r, records[r]["id"]), i, "invalid_score", f"the scorer returned {value}", config
                )
    return scores


def _fail(scores, name: str, record: tuple[int, str], k: int, reason: str, detail: str, config: ModelScoring):
    """Records one failure in ``scores`` (``Scores`` or ``Verdicts``), or stops the run when asked to."""
    row, record_id = record
    if config.fail_on_scorer_error:
        raise DataError(f"scorer {name}: {reason} on {record_id} completion {k}: {detail}")
    scores.failures.append(Unscored(str(record_id), k, reason, detail, row))


def error_line(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message.

    >>> error_line(ValueError("bad input\\nmore"))
    'ValueError: bad input'
    """
    message = str(err).strip().splitlines()
    return f"{type(err).__name__}: {message[0]}" if message else type(err).__name__


def user_text(prompt) -> str:
    """The last user turn of a prompt: what a verifier reads as the question.

    >>> user_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2?"}])
    '2 + 2?'
    """
    from prefkit.lm.reward import as_messages

    return next(m["content"] for m in reversed(as_messages(prompt)) if m["role"] == "user")


# ---------------------------------------------------------------- verify


def verifier_scores(function: Callable, records: list[dict], config: ModelScoring, name: str = "verify") -> Scores:
    """Runs a verifier over every completion; a bool becomes 1.0/0.0, None stays None. A verifier
    that raises, or returns what is not a number, leaves that completion unscored with the reason.

    >>> def picky(prompt, completion, reference):
    ...     return {"4": True, "5": False}[completion]
    >>> records = [{"id": "a", "prompt": "2 + 2?", "completions": [{"text": "4"}, {"text": "5"}, {"text": "x"}]}]
    >>> scores = verifier_scores(picky, records, ModelScoring())
    >>> scores.values, [(f.completion, f.reason, f.detail) for f in scores.failures]
    ([[1.0, 0.0, None]], [(2, 'scorer_error', "KeyError: 'x'")])
    """
    scores = Scores([])
    for r, record in enumerate(records):
        question, reference = user_text(record["prompt"]), record.get("reference")
        row = []
        for k, completion in enumerate(record["completions"]):
            try:
                value = function(question, completion["text"], reference)
            except Exception as err:  # noqa: BLE001 (the user's verifier failing on one completion)
                row.append(None)
                _fail(scores, name, (r, record["id"]), k, "scorer_error", error_line(err), config)
                continue
            if value is not None and not isinstance(value, bool | int | float | np.number):
                row.append(None)
                detail = f"returned {type(value).__name__}; expected a number or bool"
                _fail(scores, name, (r, record["id"]), k, "invalid_score", detail, config)
                continue
            row.append(None if value is None else float(value))
        scores.values.append(row)
    return scores


def _verify(spec: ScorerSpec, records: list[dict], config: ModelScoring) -> Scores:
    from prefkit.data.verifiers import load_verifier

    return verifier_scores(load_verifier(spec.target), records, config, spec.name)


# ---------------------------------------------------------------- implicit and reward-model


def completion_pairs(records: list[dict]) -> list[tuple[int, int, int]]:
    """Completions two at a time per prompt ``(record, first, second)`` (second -1 for an odd one out),
    so each prompt is run once per two completions through :func:`prefkit.lm.logprobs.reply_logps`.

    >>> completion_pairs([{"completions": [1, 2, 3]}, {"completions": [4]}])
    [(0, 0, 1), (0, 2, -1), (1, 0, -1)]
    """
    out = []
    for r, record in enumerate(records):
        n = len(record["completions"])
        out += [(r, i, i + 1 if i + 1 < n else -1) for i in range(0, n, 2)]
    return out


def implicit_scores(spec: ScorerSpec, records: list[dict], config: ModelScoring) -> Scores:
    """``beta * (log pi(c|x) - log pi_ref(c|x))`` of each completion (beta from the run's record)."""
    from prefkit.lm.loading import load_causal_lm, load_policy
    from prefkit.lm.logprobs import reply_logps
    from prefkit.lm.pair_tokens import tokenize_pairs
    from prefkit.lm.reward import as_messages
    from prefkit.lm.train import read_run_record

    policy, tokenizer, is_adapter = load_policy(spec.target, config.trust_remote_code)
    if spec.reference is None and not is_adapter:
        raise UsageError(f"implicit:{spec.target}: not an adapter, so give its reference: implicit:{spec.target}:REF")
    pairs = completion_pairs(records)
    reply = lambda r, i: [{"role": "assistant", "content": records[r]["completions"][i]["text"] if i >= 0 else ""}]
    tokens = tokenize_pairs(
        tokenizer,
        [as_messages(records[r]["prompt"]) for r, _, _ in pairs],
        [reply(r, a) for r, a, _ in pairs],
        [reply(r, b) for r, _, b in pairs],
    )
    tokenized = list(zip(tokens.prompt_ids, tokens.chosen_ids, tokens.rejected_ids, strict=True))
    scored = reply_logps(policy, tokenized, config.batch_size, config.max_length)
    if spec.reference is not None:
        base = reply_logps(
            load_causal_lm(spec.reference, config.trust_remote_code), tokenized, config.batch_size, config.max_length
        )
    else:
        with policy.disable_adapter():
            base = reply_logps(policy, tokenized, config.batch_size, config.max_length)
    beta = read_run_record(spec.target).get("beta", 0.1)
    out: list[list[float | None]] = [[None] * len(record["completions"]) for record in records]
    for k, (r, a, b) in enumerate(pairs):
        out[r][a] = float(beta * (scored.chosen[k] - base.chosen[k]))
        if b >= 0:
            out[r][b] = float(beta * (scored.rejected[k] - base.rejected[k]))
    return Scores(out)


def reward_model_scores(spec: ScorerSpec, records: list[dict], config: ModelScoring) -> Scores:
    """The reward model's score of each (prompt, completion), longest first in batches, each
    conversation rendered with the reward model's own chat template (:mod:`prefkit.lm.reward`)."""
    from prefkit.lm.reward import conversation_ids, load_reward_model, reward_scores

    model, tokenizer = load_reward_model(spec.target, config.trust_remote_code)
    items = [(r, i) for r, record in enumerate(records) for i in range(len(record["completions"]))]
    ids = [conversation_ids(tokenizer, records[r]["prompt"], records[r]["completions"][i]["text"]) for r, i in items]
    values = reward_scores(model, tokenizer, ids, config.batch_size, config.max_length)
    out: list[list[float | None]] = [[None] * len(record["completions"]) for record in records]
    for k, (r, i) in enumerate(items):
        out[r][i] = float(values[k])
    return Scores(out)


# ---------------------------------------------------------------- pairwise judges


def swap_votes(first_order: list[str | None], second_order: list[str | None]) -> np.ndarray:
    """A judge's vote per pair from its verdicts with the chosen reply shown first (``first_order``)
    and second (``second_order``): ``chosen`` or ``rejected`` when the two agree on the reply,
    ``inconsistent`` when they pick the same position (or differ otherwise), ``none`` when either
    is missing.

    >>> swap_votes(["A", "B", "A", None], ["B", "A", "A", "A"]).tolist()
    ['chosen', 'rejected', 'inconsistent', 'none']
    """
    out = []
    for one, two in zip(first_order, second_order, strict=True):
        if one is None or two is None:
            out.append("none")
        elif (one, two) == ("A", "B"):
            out.append("chosen")
        elif (one, two) == ("B", "A"):
            out.append("rejected")
        else:
            out.append("inconsistent")
    return np.array(out, dtype=object)


class ModelJudge:
    """A causal LM as a pairwise judge: the verdict is the more probable next token of " A" and " B"
    after :data:`JUDGE_QUESTION`, rendered with the judge's chat template."""

    def __init__(self, target: str, trust_remote_code: bool = False):
        from prefkit.lm.loading import load_policy

        self.model, self.tokenizer, _ = load_policy(target, trust_remote_code)
        self.model.eval()
        letters = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("A", "B")]
        if any(len(ids) != 1 for ids in letters):
            raise UsageError(f"judge:{target}: its tokenizer does not spell A and B as one token each")
        self.letters = [ids[0] for ids in letters]

    def __call__(self, prompt: str, first: str, second: str) -> str:
        import torch

        question = JUDGE_QUESTION.format(prompt=prompt, first=first, second=second)
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], add_generation_prompt=True, return_dict=False
            )
        else:
            ids = self.tokenizer(question)["input_ids"]
        with torch.inference_mode():
            logits = self.model(torch.tensor([list(ids)])).logits[0, -1]
        a, b = (float(logits[i]) for i in self.letters)
        return "A" if a >= b else "B"


def load_judge(target: str, trust_remote_code: bool = False):
    """A ``judge:`` scorer: a function named ``MODULE:FUNCTION`` or ``PATH.py:FUNCTION``, else a model."""
    from prefkit.data.verifiers import load_verifier

    where = target.rpartition(":")[0]
    if where and (where.endswith(".py") or "/" not in where):
        return load_verifier(target)
    return ModelJudge(target, trust_remote_code)


def reply_as_text(reply) -> str:
    """A canonical reply (text, or its assistant messages) as the text a scorer reads.

    >>> reply_as_text([{"role": "assistant", "content": "4"}])
    '4'
    """
    return reply if isinstance(reply, str) else "\n".join(m["content"] for m in reply)


def judge_votes(
    judge: Callable, pairs: list[dict], config: ModelScoring = ModelScoring(), name: str = "judge"
) -> Verdicts:
    """Every pair read by ``judge`` in both orders: :func:`swap_votes` of the two verdicts. A judge
    that raises on a pair leaves it without a vote (``scorer_error``); an answer other than A or B
    is no verdict.

    >>> def first_wins(prompt, first, second):
    ...     return "A"
    >>> pairs = [{"id": "p", "prompt": "2 + 2?", "chosen": "4", "rejected": "5"}]
    >>> judge_votes(first_wins, pairs).votes.tolist()
    ['inconsistent']
    """
    verdicts: Verdicts = Verdicts(np.array([], dtype=object))

    def verdict(row: int, pair: dict, first: str, second: str) -> str | None:
        try:
            value = judge(user_text(pair["prompt"]), first, second)
        except Exception as err:  # noqa: BLE001 (the user's judge failing on one pair)
            _fail(verdicts, name, (row, pair["id"]), 0, "scorer_error", error_line(err), config)
            return None
        return value if value in ("A", "B") else None

    first, second = [], []
    for row, p in enumerate(pairs):
        chosen, rejected = reply_as_text(p["chosen"]), reply_as_text(p["rejected"])
        one = verdict(row, p, chosen, rejected)
        first.append(one)
        second.append(verdict(row, p, rejected, chosen) if one is not None else None)
    verdicts.votes = swap_votes(first, second)
    return verdicts


def _judge(spec: ScorerSpec, pairs: list[dict], config: ModelScoring) -> Verdicts:
    if spec.target.startswith("openai:"):
        return http_judge_votes(spec, pairs, config)
    return judge_votes(load_judge(spec.target, config.trust_remote_code), pairs, config, spec.name)


# ---------------------------------------------------------------- over an OpenAI-compatible server

RATING_RUBRIC = """Here is an instruction and an answer to it. Judge the answer as a demanding teacher would, on
helpfulness, truthfulness, honesty (it admits what it does not know) and how closely it follows the
instruction. Write a few sentences of feedback, then rate the answer's overall quality from 1
(worst) to 10 (best) on a last line of the form "Overall Score: N".

Instruction:
{prompt}

Answer:
{completion}
"""
"""The default ``rate:`` rubric: UltraFeedback's overall-quality rating (its critique annotation,
an ``overall_score`` from 1 to 10 over the same four aspects; Cui et al., 2023), in prefkit's words."""


def parse_rating(text: str, low: float = 1, high: float = 10) -> float | None:
    """The rating a rater's reply gives (structured output's ``overall_score``, else its last
    ``Overall Score: N``, ``N/10`` allowed), or None when it gives none in ``[low, high]``: never guessed.

    >>> parse_rating("Clear and right.\\nOverall Score: 8"), parse_rating("Overall score: 7/10."), parse_rating("9")
    (8.0, 7.0, 9.0)
    >>> parse_rating('{"feedback": "Right.", "overall_score": 6}')
    6.0
    >>> parse_rating("I would rather not say.") is None, parse_rating("Overall Score: 42") is None
    (True, True)
    >>> parse_rating('{"feedback": "Fine.", "overall_score": true}') is None  # a boolean is not a rating
    True
    """
    import json
    import re

    try:
        structured = json.loads(text)
    except ValueError:
        structured = None
    score = structured.get("overall_score") if isinstance(structured, dict) else None
    if isinstance(score, int | float) and not isinstance(score, bool):
        value = float(structured["overall_score"])
        return value if low <= value <= high else None

    found = re.findall(r"overall\s+score\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?)", text, flags=re.IGNORECASE)
    if not found:
        found = re.findall(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*\.?\s*$", text)
    if not found:
        return None
    value = float(found[-1])
    return value if low <= value <= high else None


def http_target(target: str) -> tuple[str, str]:
    """``MODEL[@URL]`` as ``(model, url)``; the URL defaults to ``OPENAI_BASE_URL``.

    >>> http_target("gpt-4o-mini@http://127.0.0.1:8000")
    ('gpt-4o-mini', 'http://127.0.0.1:8000')
    """
    from prefkit.lm.serving import resolve_base_url

    model, at, url = target.rpartition("@")
    if not at or "://" not in url:
        model, url = target, None
    return model, resolve_base_url(url)


RATING_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "rating",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"feedback": {"type": "string"}, "overall_score": {"type": "integer"}},
            "required": ["feedback", "overall_score"],
            "additionalProperties": False,
        },
    },
}
"""Structured output for ``rate:``: a server that offers it (vLLM, SGLang, OpenAI) returns the
feedback and the score as JSON; one that ignores it (``transformers serve``) returns text, parsed
as text; one that refuses it (a 4xx) is asked again without it."""


def _ask(target: str, prompts: list[str], config: ModelScoring, max_tokens: int, response_format=None):
    """Each prompt sent once as a user turn (greedy, seed 0) through the serving client; returns
    every :class:`~prefkit.lm.serving.PromptAnswers` and the ledger. With ``response_format``, a
    server that refuses it for every prompt (a 4xx) is asked again without it, the ledgers added."""
    from prefkit.lm.serving import ResponseCache, SampleRequest, ServerSettings, answer_all, run_async

    http = config.http or HttpScoring()
    model, url = http_target(target)
    settings = ServerSettings(url, model, http.api_key_env, http.concurrency, http.max_retries, http.timeout)
    cache = ResponseCache(http.cache)

    def ask(fmt):
        requests = [
            SampleRequest(model, [{"role": "user", "content": p}], 0.0, 1.0, max_tokens, 0, fmt) for p in prompts
        ]
        return run_async(answer_all(settings, cache, requests, 1))

    try:
        answered, ledger = ask(response_format)
        refused = all(a.failure is not None and a.failure.detail.startswith("HTTP 4") for a in answered)
        if response_format is not None and answered and refused:
            answered, plain_ledger = ask(None)
            for name in ("requests", "retries", "cache_hits", "failed", "prompt_tokens", "completion_tokens"):
                setattr(ledger, name, getattr(ledger, name) + getattr(plain_ledger, name))
            ledger.seconds = round(ledger.seconds + plain_ledger.seconds, 2)
        return answered, ledger
    finally:
        cache.close()


def rate_scores(spec: ScorerSpec, records: list[dict], config: ModelScoring) -> Scores:
    """``rate:MODEL[@URL]``: each completion rated by a model behind an OpenAI-compatible server with
    the rubric (:data:`RATING_RUBRIC`, or ``--rubric FILE``); a reply with no rating leaves the
    completion unscored as ``unparsed_rating``, a request that failed as ``request_failed``."""
    from pathlib import Path

    http = config.http or HttpScoring()
    rubric = Path(http.rubric).read_text(encoding="utf-8") if http.rubric else RATING_RUBRIC
    items = [(r, k) for r, record in enumerate(records) for k in range(len(record["completions"]))]
    prompts = [
        rubric.format(
            prompt=user_text(records[r]["prompt"]),
            completion=records[r]["completions"][k]["text"],
            reference=records[r].get("reference") or "",
        )
        for r, k in items
    ]
    answered, ledger = _ask(spec.target, prompts, config, max_tokens=512, response_format=RATING_FORMAT)
    scores = Scores([[None] * len(record["completions"]) for record in records], ledger=ledger)
    for (r, k), answer in zip(items, answered, strict=True):
        where = (r, records[r]["id"])
        if answer.failure is not None:
            _fail(scores, spec.name, where, k, answer.failure.reason, answer.failure.detail, config)
            continue
        value = parse_rating(answer.samples[0]["text"])
        if value is None:
            detail = "no rating in the reply: " + answer.samples[0]["text"][:120].replace("\n", " ")
            _fail(scores, spec.name, where, k, "unparsed_rating", detail, config)
        scores.values[r][k] = value
    return scores


def parse_verdict(text: str) -> str | None:
    """The letter a pairwise judge's reply names (its first standalone A or B), else None.

    >>> parse_verdict("B"), parse_verdict("Response A is better."), parse_verdict("Both are fine.")
    ('B', 'A', None)
    """
    import re

    found = re.search(r"\b([AB])\b", text)
    return found.group(1) if found else None


def http_judge_votes(spec: ScorerSpec, pairs: list[dict], config: ModelScoring) -> Verdicts:
    """``judge:openai:MODEL[@URL]``: every pair asked in both orders (:data:`JUDGE_QUESTION`) of a
    model behind an OpenAI-compatible server, all requests at once; :func:`swap_votes` of the two."""
    questions = []
    for p in pairs:
        prompt, chosen, rejected = user_text(p["prompt"]), reply_as_text(p["chosen"]), reply_as_text(p["rejected"])
        questions.append(JUDGE_QUESTION.format(prompt=prompt, first=chosen, second=rejected))
        questions.append(JUDGE_QUESTION.format(prompt=prompt, first=rejected, second=chosen))
    answered, ledger = _ask(spec.target.removeprefix("openai:"), questions, config, max_tokens=16)
    verdicts = Verdicts(np.array([], dtype=object), ledger=ledger)
    letters = []
    for i, answer in enumerate(answered):
        if answer.failure is not None:
            where = (i // 2, pairs[i // 2].get("id", str(i // 2)))
            _fail(verdicts, spec.name, where, i % 2, answer.failure.reason, answer.failure.detail, config)
            letters.append(None)
        else:
            letters.append(parse_verdict(answer.samples[0]["text"]))
    verdicts.votes = swap_votes(letters[0::2], letters[1::2])
    return verdicts


SCORER_KINDS: dict[str, ScorerKind] = {
    "verify": ScorerKind("verify", default_name=lambda target: target.rpartition(":")[2], score=_verify),
    "reward-model": ScorerKind("reward-model", default_name=lambda target: "reward_model", score=reward_model_scores),
    "implicit": ScorerKind("implicit", default_name=lambda target: "implicit", score=implicit_scores),
    "judge": ScorerKind("judge", default_name=lambda target: "judge", vote=_judge),
    "rate": ScorerKind("rate", default_name=lambda target: "rating", score=rate_scores),
}
"""Every scorer kind by the word a spec starts with."""


HTTP_HELP = {
    "rubric": "rate: scorers: a file holding the rating prompt, with {prompt}, {completion} and {reference}; "
    "default: UltraFeedback's overall-quality rating.",
    "cache": "Server-backed scorers (rate:, judge:openai:): the response cache (SQLite); default "
    "NAME.cache.sqlite beside the output.",
    "api_key_env": "Server-backed scorers: the environment variable that holds the API key (never the key).",
    "concurrency": "Server-backed scorers: requests in flight at once.",
    "max_retries": "Server-backed scorers: retries of a 429, 5xx, timeout or dropped connection.",
    "timeout": "Server-backed scorers: seconds a request may take.",
}


@dataclass(kw_only=True)
class ServerScorerOptions:
    """The options of the server-backed scorers (``rate:``, ``judge:openai:``), shared by the
    configs of ``score`` and ``audit``."""

    rubric: str | None = option(None, HTTP_HELP["rubric"])
    cache: str | None = option(None, HTTP_HELP["cache"])
    api_key_env: str = option(HttpScoring.api_key_env, HTTP_HELP["api_key_env"])
    concurrency: int = option(HttpScoring.concurrency, HTTP_HELP["concurrency"], min=1)
    max_retries: int = option(HttpScoring.max_retries, HTTP_HELP["max_retries"], min=0)
    timeout: float = option(HttpScoring.timeout, HTTP_HELP["timeout"], min=0, min_open=True)


SERVER_SCORER_OPTIONS = tuple(f.name for f in dataclasses.fields(ServerScorerOptions))
"""Their names, for the commands' option lists."""


def uses_a_server(specs: list[ScorerSpec]) -> bool:
    """Whether any scorer asks an OpenAI-compatible server (so a response cache is kept).

    >>> uses_a_server([parse_scorer("verify:number"), parse_scorer("rate:m@http://h")])
    True
    """
    return any(s.kind == "rate" or (s.kind == "judge" and s.target.startswith("openai:")) for s in specs)


def http_scoring(config, specs: list[ScorerSpec], output) -> HttpScoring | None:
    """The :class:`HttpScoring` of a command's config (its ``rubric``, ``cache``, ``api_key_env``,
    ``concurrency``, ``max_retries``, ``timeout``), the cache beside ``output`` unless named (none
    when there is no output to put it beside); None when no scorer asks a server."""
    from pathlib import Path

    from prefkit.data.writers import sidecar

    if not uses_a_server(specs):
        return None
    cache = config.cache or (str(sidecar(Path(output), "cache.sqlite")) if output else None)
    return HttpScoring(config.api_key_env, config.concurrency, config.max_retries, config.timeout, cache, config.rubric)
