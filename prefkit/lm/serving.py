"""Any OpenAI-compatible server as an engine: every request paid once, nothing lost, nothing secret written.

``prefkit generate --engine openai`` (and the ``rate:`` and ``judge:openai:`` scorers) talk to
``/v1/chat/completions`` of a server prefkit does not run: ``vllm serve``, SGLang, ``transformers
serve``, or a hosted API. The client here holds what those callers share:

- **concurrency**: at most ``concurrency`` requests in flight (an ``asyncio`` semaphore over one
  ``httpx.AsyncClient``);
- **retries**: a 429, a 5xx, a timeout, a dropped connection or a body that is not JSON is retried
  up to ``max_retries`` times with exponential backoff and full jitter, waiting what a
  ``Retry-After`` header asks when the server sends one; any other 4xx (a prompt longer than the
  context, a bad request) is final at once and becomes the caller's reject with the server's message;
- **a response cache**: each answered request is kept in a SQLite file under a key made of
  everything that decides the answer (model, messages, sampling parameters, seed, sample index)
  and nothing secret, committed as it arrives, so a killed run re-sends only what it lacks;
- **a ledger**: requests sent, retries, cache hits, prompt and completion tokens, wall time, and
  the cost at a given price;
- **secrets**: the API key is read from the environment variable the caller names, sent as a
  header, and scrubbed from every message that could carry it (a server echoing a request, say).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from prefkit.errors import UsageError

RETRIED_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
"""Statuses a later try may cure; any other 4xx is final (the request itself is wrong)."""
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
SECRET_MARK = "***"


@dataclass(frozen=True)
class ServerSettings:
    """Where the server is and how to talk to it; the key itself is only ever read from ``api_key_env``."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 5
    timeout: float = 120.0

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def endpoint(self) -> str:
        """The chat completions URL of ``base_url`` (with or without its ``/v1``).

        >>> ServerSettings("http://127.0.0.1:8000", "m").endpoint(), ServerSettings("http://h/v1/", "m").endpoint()
        ('http://127.0.0.1:8000/v1/chat/completions', 'http://h/v1/chat/completions')
        """
        base = self.base_url.rstrip("/")
        return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


def resolve_base_url(base_url: str | None) -> str:
    """``--base-url``, else ``OPENAI_BASE_URL``; neither is a usage error naming both."""
    url = base_url or os.environ.get("OPENAI_BASE_URL")
    if not url:
        raise UsageError("--engine openai needs --base-url URL (or OPENAI_BASE_URL): the server to ask")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url {url}: expected an http:// or https:// URL")
    return url


def scrub(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced, so no message carries the key.

    >>> scrub("bad key sk-123 given", "sk-123")
    'bad key *** given'
    """
    return text.replace(secret, SECRET_MARK) if secret else text


@dataclass
class Ledger:
    """What a run asked of the server, and what it cost: ``requests`` are HTTP attempts (each retry
    is one), ``cache_hits`` answers read from the cache instead."""

    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cost: float | None = None
    """With a price (per million prompt and completion tokens): the requests sent, in that currency."""

    def priced(self, price: tuple[float, float] | None) -> Ledger:
        if price is not None:
            self.cost = round((self.prompt_tokens * price[0] + self.completion_tokens * price[1]) / 1e6, 6)
        return self

    def line(self) -> str:
        """The ledger as one line, as the CLI's last line shows it.

        >>> Ledger(requests=12, retries=2, cache_hits=4, prompt_tokens=300, completion_tokens=90, seconds=3.2).line()
        'requests 12 (retries 2), cache hits 4, tokens 300 in / 90 out, 3.2 s'
        """
        text = (
            f"requests {self.requests:,} (retries {self.retries:,}), cache hits {self.cache_hits:,}, "
            f"tokens {self.prompt_tokens:,} in / {self.completion_tokens:,} out, {self.seconds:.1f} s"
        )
        return text + (f", cost {self.cost:.4f}" if self.cost is not None else "")


def parse_price(text: str | None) -> tuple[float, float] | None:
    """``--price IN,OUT`` (per million tokens) as two numbers.

    >>> parse_price("0.15,0.6")
    (0.15, 0.6)
    """
    if text is None:
        return None
    try:
        prompt, completion = (float(p) for p in text.split(","))
    except ValueError as err:
        raise UsageError(f"--price {text}: expected IN,OUT per million tokens, e.g. 0.15,0.6") from err
    return prompt, completion


def cache_key(payload: dict, sample: int) -> str:
    """The cache key of one sample of a request: a hash of everything that decides the answer (the
    payload: model, messages, sampling parameters, seed) and the sample's index; no header, so no key.

    >>> a = cache_key({"model": "m", "messages": [], "seed": 1}, 0)
    >>> a == cache_key({"seed": 1, "messages": [], "model": "m"}, 0), a == cache_key({"model": "m", "messages": [], "seed": 1}, 1)
    (True, False)
    """
    text = json.dumps({"payload": payload, "sample": sample}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseCache:
    """Answers by :func:`cache_key`, in SQLite (WAL: one commit per answer, so a killed run keeps
    every answer it had received). ``path=None`` keeps nothing (``--no-cache``)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._db = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")
            self._db.commit()

    def get(self, key: str) -> dict | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, answer: dict) -> None:
        if self._db is None:
            return
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)", (key, json.dumps(answer)))
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


@dataclass
class RequestFailure:
    """A request that did not come back answered: the reason and the server's (scrubbed) message."""

    reason: str
    detail: str


@dataclass
class ChatClient:
    """One async client for a run: concurrency, retries, the cache and the ledger (see the module)."""

    settings: ServerSettings
    cache: ResponseCache
    ledger: Ledger = field(default_factory=Ledger)
    sleep: Callable = asyncio.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    async def __aenter__(self) -> Self:
        import httpx

        headers = {"Content-Type": "application/json"}
        key = self.settings.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=self.settings.concurrency)
        self._http = httpx.AsyncClient(headers=headers, timeout=self.settings.timeout, limits=limits)
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._http.aclose()

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), BACKOFF_CAP * 3)
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        return self.rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))

    async def post(self, payload: dict) -> dict | RequestFailure:
        """The JSON answer to one chat completions request, retried as the module says; a final
        failure is returned, never raised."""
        import httpx

        secret = self.settings.api_key()
        failure = RequestFailure("request_failed", "no attempt made")
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                self.ledger.retries += 1
            retry_after = None
            async with self._slots:
                self.ledger.requests += 1
                try:
                    response = await self._http.post(self.settings.endpoint(), json=payload)
                except httpx.TimeoutException:
                    failure = RequestFailure("request_failed", f"timed out after {self.settings.timeout:g} s")
                    response = None
                except httpx.TransportError as err:
                    failure = RequestFailure("request_failed", scrub(f"connection failed: {err!r}", secret))
                    response = None
            if response is not None:
                if response.status_code == 200:
                    answer = _json_or_none(response)
                    if isinstance(answer, dict) and isinstance(answer.get("choices"), list):
                        return answer
                    failure = RequestFailure("request_failed", "HTTP 200 with a body that is not a chat completion")
                else:
                    message = server_message(_server_message(response), secret)
                    failure = RequestFailure("request_failed", f"HTTP {response.status_code}: {message}")
                    if response.status_code not in RETRIED_STATUS:
                        break
                    retry_after = response.headers.get("retry-after")
            if attempt < self.settings.max_retries:
                await self.sleep(self._backoff(attempt, retry_after))
        self.ledger.failed += 1
        return failure


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def _server_message(response) -> str:
    """The error message a server put in its body (OpenAI's ``{"error": {"message"}}`` and the
    common variants), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)
    return str(body)


MESSAGE_CHARS = 300
"""How much of a server's error message a reject keeps."""


def server_message(message: str, secret: str | None) -> str:
    """A server's error message as a reject keeps it: the key scrubbed first, then cut to
    :data:`MESSAGE_CHARS`, so a key that straddles the cut cannot leave its first part behind.

    >>> message = "x" * 290 + " bad key sk-abcdefghijklmnop"
    >>> "sk-abc" in server_message(message, "sk-abcdefghijklmnop"), len(server_message(message, None))
    (False, 300)
    """
    return scrub(message, secret)[:MESSAGE_CHARS]


# ---------------------------------------------------------------- generation over HTTP


@dataclass
class SampleRequest:
    """What decides a prompt's samples: the served model, its messages and the sampling settings."""

    model: str
    messages: list[dict]
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    response_format: dict | None = None
    """Structured output (OpenAI's ``response_format``), for servers that offer it."""

    def payload(self, n: int = 1, seed: int | None = None) -> dict:
        body = {
            "model": self.model,
            "messages": self.messages,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed if seed is None else seed,
        }
        if self.response_format is not None:
            body["response_format"] = self.response_format
        return body | ({"n": n} if n > 1 else {})

    def key(self, sample: int) -> str:
        """Sample ``sample``'s cache key: the payload without ``n`` (a rerun with a larger ``--n``
        finds the samples it has) and with the run's seed."""
        return cache_key(self.payload(), sample)


@dataclass
class PromptAnswers:
    """One prompt's samples (``text``, ``finish_reason``, ``tokens`` each), or why it has none."""

    samples: list[dict] | None
    failure: RequestFailure | None = None
    one_at_a_time: int = 0
    """Samples asked one request each (seed + k) because the server returned fewer than ``n`` choices."""


def _choices(answer: dict) -> list[dict]:
    """A chat completion's choices as samples; completion tokens split evenly where one usage
    covers several choices (servers report usage per request, not per choice)."""
    choices = answer.get("choices") or []
    usage = answer.get("usage") or {}
    tokens = usage.get("completion_tokens")
    each = round(tokens / len(choices)) if tokens is not None and choices else None
    return [
        {
            "text": (c.get("message") or {}).get("content") or "",
            "finish_reason": c.get("finish_reason") or "stop",
            "tokens": each if each is not None else 0,
        }
        for c in sorted(choices, key=lambda c: c.get("index", 0))
    ]


async def answer_prompt(client: ChatClient, request: SampleRequest, n: int) -> PromptAnswers:
    """A prompt's ``n`` samples: from the cache where it has them, else one request with ``n`` (as
    the API intends), then one request per sample still missing with seed ``seed + k`` (servers that
    ignore ``n``, such as ``transformers serve``, return one choice)."""
    samples: list[dict | None] = [client.cache.get(request.key(k)) for k in range(n)]
    client.ledger.cache_hits += sum(s is not None for s in samples)
    one_at_a_time = 0

    async def ask(count: int, seed: int) -> list[dict] | RequestFailure:
        answer = await client.post(request.payload(count, seed))
        if isinstance(answer, RequestFailure):
            return answer
        usage = answer.get("usage") or {}
        client.ledger.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        client.ledger.completion_tokens += int(usage.get("completion_tokens") or 0)
        return _choices(answer)

    if all(s is None for s in samples):
        got = await ask(n, request.seed)
        if isinstance(got, RequestFailure):
            return PromptAnswers(None, got)
        for k, sample in enumerate(got[:n]):
            samples[k] = sample
            client.cache.put(request.key(k), sample)
    for k in range(n):
        if samples[k] is None:
            one_at_a_time += 1
            got = await ask(1, request.seed + k)
            if isinstance(got, RequestFailure):
                return PromptAnswers(None, got, one_at_a_time)
            if not got:
                return PromptAnswers(None, RequestFailure("request_failed", "the server returned no choice"))
            samples[k] = got[0]
            client.cache.put(request.key(k), got[0])
    return PromptAnswers([s for s in samples if s is not None], None, one_at_a_time)


def run_async(coroutine):
    """``asyncio.run``, also from inside a running event loop (a notebook): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def answer_all(
    settings: ServerSettings, cache: ResponseCache, requests: list[SampleRequest], n: int, progress=None
) -> tuple[list[PromptAnswers], Ledger]:
    """Every prompt's samples, ``settings.concurrency`` requests at a time, in prompt order."""
    import time

    started = time.perf_counter()
    async with ChatClient(settings, cache) as client:
        done = 0

        async def one(request: SampleRequest) -> PromptAnswers:
            nonlocal done
            answers = await answer_prompt(client, request, n)
            done += 1
            if progress:
                progress("asking the server", done, len(requests))
            return answers

        answered = await asyncio.gather(*(one(r) for r in requests))
    client.ledger.seconds = round(time.perf_counter() - started, 2)
    return list(answered), client.ledger
