"""``prefkit generate``: the model's own answers to prompts, every prompt and sample accounted for.

Prompts come from any source prefkit reads (:mod:`prefkit.data.prompts`) and are rendered exactly
as training renders them (:func:`prefkit.lm.pair_tokens.prompt_token_ids`). One output record per
prompt: ``id``, ``prompt``, ``reference`` (where known), ``completions`` (``text``,
``finish_reason``, ``tokens``), the source's ``metadata``, and ``generation`` (model, adapter,
engine and sampling settings). ``read == prompts + duplicates + rejected``, and a prompt that
cannot be answered is a reject with its reason (``empty_prompt``; ``prompt_too_long`` when the
prompt and ``max_new_tokens`` do not fit the model's context).

Generation is the expensive step, so each finished batch is kept under ``OUTPUT.resume/``; a run
that is killed continues with ``resume=True`` from its last finished batch and writes what an
uninterrupted run writes (each batch is seeded by its own index). The output is written whole at
the end, never in part, and the resume folder is removed.

Where one machine is not enough, ``ray="auto"`` (or a cluster address) runs the same batches on a
Ray cluster through Ray Data: each batch is one row, answered by a worker that loads the model once,
seeded by the batch's index as here, so the output equals the single-process output.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from prefkit.cluster import connect_ray, require_ray
from prefkit.config import DEFAULT_SEED, check_fields, option
from prefkit.errors import ExtraMissing, UsageError
from prefkit.lm.loading import TRUST_REMOTE_CODE_HELP
from prefkit.lm.sampling import Completion, SamplingSettings
from prefkit.lm.serving import Ledger, resolve_base_url
from prefkit.progress import ReportProgress
from prefkit.results import Result

ENGINES = ("transformers", "vllm", "openai")


@dataclass
class GenerateConfig:
    """Options of ``prefkit generate``."""

    sources: list[str] = option(help="Prompt files, preference data in any format, or hf:ORG/NAME[:split].")
    output: str = option(help="Output file (.jsonl): one record per prompt.", flags=("-o", "--output"))
    model: str = option(help="Model: a bundled name, a model folder, a hub id, or a prefkit run (an adapter).")
    adapter: str | None = option(None, "A PEFT adapter to load onto --model.")
    n: int = option(1, "Completions per prompt.", min=1)
    temperature: float = option(0.0, "Sampling temperature; 0 is greedy decoding.", min=0)
    top_p: float = option(
        1.0,
        "Nucleus sampling: keep the smallest set of tokens with this much probability.",
        min=0,
        min_open=True,
        max=1,
    )
    max_new_tokens: int = option(128, "Longest completion, in tokens.", min=1)
    seed: int = option(DEFAULT_SEED, "Seed: the same seed gives the same completions on a CPU.")
    engine: str = option(
        "transformers",
        "transformers (CPU or GPU), vllm (a GPU, pip install vllm), or openai: any OpenAI-compatible server "
        "(--base-url; --model is the served name).",
        choices=ENGINES,
    )
    batch_size: int = option(
        64, "Sequences per model.generate call: batch_size // n prompts, each answered n times.", min=1
    )
    resume: bool = option(False, "Continue an interrupted run from its last finished batch.")
    ray: str | None = option(
        None,
        "Run the batches on a Ray cluster through Ray Data: its address, auto (the running cluster), "
        "or local (start one here). pip install 'ray[data]'.",
        metavar="ADDRESS",
    )
    ray_workers: int = option(2, "Ray workers at once, each loading the model once (one GPU each with vllm).", min=1)
    rejects: str | None = option(None, "Rejects file; default NAME.rejects.jsonl beside the output.")
    report: str | None = option(None, "Report file; default NAME.report.json beside the output.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)
    round: int | None = option(
        None,
        "The loop round these answers belong to (prefkit loop sets it); kept, like the policy, in the pairs made of them.",
        min=1,
    )
    base_url: str | None = option(None, "With --engine openai: the server's URL; default $OPENAI_BASE_URL.")
    api_key_env: str = option(
        "OPENAI_API_KEY", "With --engine openai: the environment variable that holds the API key (never the key)."
    )
    concurrency: int = option(8, "With --engine openai: requests in flight at once.", min=1)
    max_retries: int = option(
        5, "With --engine openai: retries of a 429, 5xx, timeout or dropped connection (backoff, Retry-After).", min=0
    )
    timeout: float = option(120.0, "With --engine openai: seconds a request may take.", min=0, min_open=True)
    cache: str | None = option(
        None, "With --engine openai: the response cache (SQLite); default NAME.cache.sqlite beside the output."
    )
    no_cache: bool = option(False, "With --engine openai: keep no response cache (every request sent again).")
    price: str | None = option(
        None, "With --engine openai: IN,OUT price per million tokens, for the ledger's cost.", metavar="IN,OUT"
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.engine == "openai" and (self.adapter or self.ray):
            raise UsageError(
                "--engine openai asks a server: --adapter and --ray do not apply (serve the adapter there)"
            )
        if self.n > 1 and self.temperature == 0:
            raise UsageError(
                f"n={self.n} with temperature 0 gives {self.n} identical greedy answers; set a temperature"
            )

    def sampling(self) -> SamplingSettings:
        return SamplingSettings(self.n, self.temperature, self.top_p, self.max_new_tokens, self.seed)


@dataclass
class GenerateResult(Result):
    """What ``generate`` read, answered and rejected; ``read == prompts + duplicates + rejected``."""

    output: str
    read: int
    prompts: int
    duplicates: int
    rejected: int
    reasons: dict[str, int]
    completions: int
    finish_reasons: dict[str, int]
    mean_tokens: float
    resumed_batches: int
    engine: str
    model: str
    ledger: Ledger | None = None
    """``--engine openai``: requests, retries, cache hits, tokens, time (and cost with ``--price``)."""
    notes: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list, repr=False)


def _sidecar(output: Path, kind: str, given: str | None) -> Path:
    from prefkit.data.writers import sidecar

    return Path(given) if given else sidecar(output, kind)


def resume_folder(output: Path) -> Path:
    return output.with_name(output.name + ".resume")


def run_key(config: GenerateConfig, model_id: str, prompt_ids: list[list[int]]) -> str:
    """What a resumed run must share with the run it continues: model, settings, prompts, batching."""
    settings = {
        k: getattr(config, k) for k in ("n", "temperature", "top_p", "max_new_tokens", "seed", "batch_size", "engine")
    }
    digest = hashlib.sha256(json.dumps([model_id, config.adapter, settings, prompt_ids]).encode())
    return digest.hexdigest()[:16]


def context_length(model_config, tokenizer) -> int | None:
    """The longest sequence the model takes: its config's position limit, else the tokenizer's."""
    limit = getattr(model_config, "max_position_embeddings", None)
    if limit is None:
        limit = getattr(tokenizer, "model_max_length", None)
    return limit if limit and limit < 10**8 else None


def load_prompt_side(config: GenerateConfig):
    """``(tokenizer, model config)``: what rendering and checking prompts needs, without the weights
    (the engine that answers them, vLLM or Ray workers, loads those where it runs)."""
    from transformers import AutoConfig

    from prefkit.lm.loading import load_tokenizer, resolve_model

    path = resolve_model(config.model)
    base = path
    if (Path(path) / "adapter_config.json").exists():
        from peft import PeftConfig

        base = resolve_model(PeftConfig.from_pretrained(path).base_model_name_or_path)
        if not (Path(path) / "tokenizer_config.json").exists():
            path = base
    return load_tokenizer(path, config.trust_remote_code), AutoConfig.from_pretrained(
        base, trust_remote_code=config.trust_remote_code
    )


def load_generator(config: GenerateConfig):
    """``(model, tokenizer, model description)`` for the transformers engine."""
    from prefkit.lm.loading import load_policy

    model, tokenizer, _ = load_policy(config.model, config.trust_remote_code)
    if config.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.adapter)
    return model, tokenizer


@dataclass
class Answered:
    """What an engine made of the prompts: ``completions[j]`` answers prompt ``rows[j]``; each prompt
    not answered is in ``failures`` as ``(row, reason, detail)``."""

    rows: list[int]
    completions: list[list[Completion]]
    failures: list[tuple[int, str, str]] = field(default_factory=list)
    resumed_batches: int = 0
    ledger: Ledger | None = None
    notes: list[str] = field(default_factory=list)


def generate(config: GenerateConfig, progress: ReportProgress | None = None) -> GenerateResult:
    """Answers every prompt of ``config.sources`` ``n`` times; writes the output, rejects and report."""
    from prefkit.atomic_files import check_outputs, line_sink, write_json
    from prefkit.data.prompts import read_prompts
    from prefkit.data.sources import resolve

    output = Path(config.output)
    if not output.name.endswith(".jsonl"):
        raise UsageError(f"{output}: generate writes JSON Lines; the output must end in .jsonl")
    rejects_path, report_path = (
        _sidecar(output, "rejects.jsonl", config.rejects),
        _sidecar(output, "report.json", config.report),
    )
    cache_path = http_cache_path(config, output)
    inputs = [p for spec in config.sources for p in resolve(spec) if isinstance(p, Path)]
    named = [("-o", output), ("--rejects", rejects_path), ("--report", report_path), ("--cache", cache_path)]
    check_outputs([(flag, path) for flag, path in named if path is not None], inputs)
    folder = resume_folder(output)
    if folder.exists() and not config.resume:
        raise UsageError(f"{folder} holds an interrupted run: add --resume to continue it, or delete the folder")
    if config.engine == "vllm":
        _require_vllm()
    if config.ray:
        require_ray()
    if progress:
        progress("reading prompts", 0, None)
    found = read_prompts(config.sources)
    records = found.frame.to_dicts()
    if config.engine == "openai":
        answered = answer_over_http(config, records, cache_path, progress)
    else:
        answered = answer_locally(config, found.frame, folder, progress)
    out = answer_records([records[i] for i in answered.rows], answered.completions, config)
    with line_sink(output) as write:
        write(json.dumps(r, ensure_ascii=False) for r in out)
    with line_sink(rejects_path) as write:
        write([*found.reject_lines, *prompt_rejects(records, answered.failures, found.files)])
    reasons = dict(found.reasons)
    for _, reason, _ in answered.failures:
        reasons[reason] = reasons.get(reason, 0) + 1
    flat = [c for answers in answered.completions for c in answers]
    result = GenerateResult(
        output=str(output),
        read=found.read,
        prompts=len(out),
        duplicates=found.duplicates,
        rejected=found.rejected + len(answered.failures),
        reasons=reasons,
        completions=len(flat),
        finish_reasons={r: sum(c.finish_reason == r for c in flat) for r in ("stop", "length")},
        mean_tokens=round(sum(c.tokens for c in flat) / len(flat), 2) if flat else 0.0,
        resumed_batches=answered.resumed_batches,
        engine=config.engine,
        model=config.model,
        ledger=answered.ledger,
        notes=answered.notes,
        records=out,
    )
    write_json(result.to_dict(), report_path)
    shutil.rmtree(folder, ignore_errors=True)
    return result


def answer_locally(config: GenerateConfig, frame, folder: Path, progress) -> Answered:
    """The in-process engines (transformers, vLLM, either on Ray): the prompts tokenized here, the
    ones too long for the model's context left out as ``prompt_too_long``, the rest answered in
    seeded batches that a killed run resumes from."""
    from prefkit.lm.pair_tokens import prompt_token_ids

    if config.engine == "transformers" and not config.ray:
        model, tokenizer = load_generator(config)
        model_config = model.config
    else:
        model = None
        tokenizer, model_config = load_prompt_side(config)
    token_ids = prompt_token_ids(tokenizer, frame["prompt"].to_list())
    limit = context_length(model_config, tokenizer)
    failures = [
        (
            i,
            "prompt_too_long",
            f"{len(ids)} prompt tokens + max_new_tokens {config.max_new_tokens} > the model's context of {limit}",
        )
        for i, ids in enumerate(token_ids)
        if limit is not None and len(ids) + config.max_new_tokens > limit
    ]
    skipped = {i for i, _, _ in failures}
    rows = [i for i in range(len(token_ids)) if i not in skipped]
    completions, resumed = _generate(config, model, tokenizer, [token_ids[i] for i in rows], folder, progress)
    return Answered(rows, completions, failures, resumed)


def http_cache_path(config: GenerateConfig, output: Path) -> Path | None:
    """Where ``--engine openai`` keeps its answers: ``--cache``, else ``NAME.cache.sqlite`` beside
    the output; None for the local engines and with ``--no-cache``."""
    if config.engine != "openai" or config.no_cache:
        return None
    return Path(config.cache) if config.cache else _sidecar(output, "cache.sqlite", None)


def answer_over_http(config: GenerateConfig, records: list[dict], cache_path: Path | None, progress) -> Answered:
    """``--engine openai``: each prompt's messages sent to the server (:mod:`prefkit.lm.serving`),
    answers read from the cache where it has them; a prompt whose request still fails after the
    retries is left out as ``request_failed`` with the server's message."""
    from prefkit.lm.reward import as_messages
    from prefkit.lm.serving import ResponseCache, SampleRequest, ServerSettings, answer_all, parse_price, run_async

    settings = ServerSettings(
        resolve_base_url(config.base_url),
        config.model,
        config.api_key_env,
        config.concurrency,
        config.max_retries,
        config.timeout,
    )
    requests = [
        SampleRequest(
            config.model, as_messages(r["prompt"]), config.temperature, config.top_p, config.max_new_tokens, config.seed
        )
        for r in records
    ]
    cache = ResponseCache(cache_path)
    try:
        answered, ledger = run_async(answer_all(settings, cache, requests, config.n, progress))
    finally:
        cache.close()
    rows = [i for i, a in enumerate(answered) if a.samples is not None]
    completions = [[Completion(s["text"], s["finish_reason"], s["tokens"]) for s in answered[i].samples] for i in rows]
    failures = [(i, a.failure.reason, a.failure.detail) for i, a in enumerate(answered) if a.failure is not None]
    notes = []
    one_at_a_time = sum(a.one_at_a_time for a in answered)
    if one_at_a_time:
        notes.append(
            f"the server returned fewer than n={config.n} choices: {one_at_a_time:,} samples were asked one "
            "request each, with seed + k"
        )
    return Answered(rows, completions, failures, ledger=ledger.priced(parse_price(config.price)), notes=notes)


def prompt_rejects(records: list[dict], failures: list[tuple[int, str, str]], files: list[str]) -> list[str]:
    """A reject line for each prompt an engine left out, with its reason and detail, naming its file and line."""
    from prefkit.data.columns import FILE, LINE
    from prefkit.data.writers import reject_line

    lines = []
    for i, reason, detail in failures:
        record = {k: v for k, v in records[i].items() if k not in (FILE, LINE)}
        text = json.dumps(record, ensure_ascii=False)
        lines.append(reject_line(files[records[i][FILE]], records[i][LINE], reason, detail, text, True))
    return lines


def answer_records(records: list[dict], completions: list[list[Completion]], config) -> list[dict]:
    """The output's records: each prompt with its completions and the settings that made them.

    >>> from prefkit.lm.sampling import Completion
    >>> config = GenerateConfig(sources=["p.jsonl"], output="a.jsonl", model="m")
    >>> (record,) = answer_records([{"id": "a", "prompt": "2 + 2?"}], [[Completion("4", "stop", 2)]], config)
    >>> record["completions"], record["generation"]["max_new_tokens"]
    ([{'text': '4', 'finish_reason': 'stop', 'tokens': 2}], 128)
    """
    from prefkit.lm.loading import policy_id

    settings = {"model": config.model, "adapter": config.adapter, "engine": config.engine} | {
        k: getattr(config, k) for k in ("n", "temperature", "top_p", "max_new_tokens", "seed")
    }
    # Lineage: which policy wrote these answers (the pairs made of them keep it), and in which loop round.
    settings |= {"policy": policy_id(config.model, config.adapter)} | ({"round": config.round} if config.round else {})
    return [
        {
            "id": record["id"],
            "prompt": record["prompt"],
            "reference": record.get("reference"),
            "completions": [c.to_dict() for c in answers],
            "metadata": record.get("metadata"),
            "generation": settings,
        }
        for record, answers in zip(records, completions, strict=True)
    ]


def _generate(
    config: GenerateConfig, model, tokenizer, token_ids: list[list[int]], folder: Path, progress
) -> tuple[list[list[Completion]], int]:
    """Completions of each prompt, in order, and how many batches an earlier run had finished;
    finished batches are kept in ``folder`` as they come."""
    from prefkit.atomic_files import write_json

    if config.engine == "vllm" and not config.ray:
        return VllmEngine(config).answer(token_ids, config.seed), 0
    from prefkit.lm.sampling import generate_all, prompt_batches

    key = run_key(config, config.model, token_ids)
    if folder.exists():
        saved = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
        if saved.get("key") != key:
            raise UsageError(f"{folder} holds a run with other prompts, model or settings: delete it to start anew")
    folder.mkdir(parents=True, exist_ok=True)
    write_json({"key": key}, folder / "run.json")
    done = {int(p.stem.split("-")[1]) for p in folder.glob("batch-*.json")}
    results: list[list[Completion]] = [[] for _ in token_ids]
    total = len(token_ids)
    finished = sum(len(b) for i, b in enumerate(prompt_batches(token_ids, config.n, config.batch_size)) if i in done)
    if progress:
        progress("generating", finished, total)
    answered = (
        ray_generate(config, token_ids, skip=done.__contains__)
        if config.ray
        else generate_all(model, tokenizer, token_ids, config.sampling(), config.batch_size, skip=done.__contains__)
    )
    for index, rows, answers in answered:
        write_json(
            {"rows": rows, "completions": [[c.to_dict() for c in a] for a in answers]},
            folder / f"batch-{index:06d}.json",
        )
        finished += len(rows)
        if progress:
            progress("generating", finished, total)
    for path in sorted(folder.glob("batch-*.json")):
        saved = json.loads(path.read_text())
        for row, answers in zip(saved["rows"], saved["completions"], strict=True):
            results[row] = [Completion(**c) for c in answers]
    return results, len(done)


def _require_vllm() -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise ExtraMissing("--engine vllm needs vLLM and a GPU: pip install vllm (or use --engine transformers)")


class VllmEngine:
    """The vLLM engine, kept thin: vLLM's own ``LLM.generate`` with ``SamplingParams(n=..., seed=...)``
    on the same rendered prompt tokens; a LoRA adapter goes in as a ``LoRARequest``."""

    def __init__(self, config: GenerateConfig):
        from vllm import LLM

        from prefkit.lm.loading import resolve_model

        self.config = config
        model_path, self.lora = resolve_model(config.model), None
        if (Path(model_path) / "adapter_config.json").exists() or config.adapter:
            from peft import PeftConfig
            from vllm.lora.request import LoRARequest

            adapter = config.adapter or model_path
            if not config.adapter:
                model_path = resolve_model(PeftConfig.from_pretrained(adapter).base_model_name_or_path)
            self.lora = LoRARequest("adapter", 1, adapter)
        self.llm = LLM(
            model=model_path,
            seed=config.seed,
            enable_lora=self.lora is not None,
            trust_remote_code=config.trust_remote_code,
        )

    def answer(self, token_ids: list[list[int]], seed: int) -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        config = self.config
        params = SamplingParams(
            n=config.n, temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_new_tokens, seed=seed
        )
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=ids) for ids in token_ids], params, lora_request=self.lora, use_tqdm=False
        )
        return [
            [
                Completion(o.text.strip(), "stop" if o.finish_reason == "stop" else "length", len(o.token_ids))
                for o in out.outputs
            ]
            for out in outputs
        ]


_LOADED_ENGINES: dict[str, object] = {}


def answer_batch(row: dict) -> dict:
    """One batch of a Ray Data run, answered in a Ray worker; each row carries the run's settings, and
    the worker process keeps the model it loaded for the batches that follow (a task, not an actor:
    Ray warns about every actor Ray Data starts, ray#57733)."""
    from prefkit.lm.sampling import batch_seed, generate_batch

    batch = json.loads(row["batch"])
    key = json.dumps(batch["config"], sort_keys=True)
    if key not in _LOADED_ENGINES:
        config = GenerateConfig(**batch["config"])
        if config.engine == "vllm":
            _LOADED_ENGINES[key] = (config, VllmEngine(config))
        else:
            model, tokenizer = load_generator(config)
            _LOADED_ENGINES[key] = (config, (model.eval(), tokenizer))
    config, engine = _LOADED_ENGINES[key]
    seed = batch_seed(config.seed, batch["index"])
    if config.engine == "vllm":
        answers = engine.answer(batch["prompts"], seed)
    else:
        answers = generate_batch(*engine, batch["prompts"], config.sampling(), seed)
    return {"index": batch["index"], "answers": json.dumps([[c.to_dict() for c in a] for a in answers])}


def ray_generate(config: GenerateConfig, token_ids: list[list[int]], skip=lambda index: False):
    """Yields ``(batch index, prompt indices, completions)`` as :func:`prefkit.lm.sampling.generate_all`
    does, the batches answered by ``config.ray_workers`` Ray workers in whatever order they finish."""
    import dataclasses
    import warnings

    import ray.data

    from prefkit.lm.sampling import prompt_batches

    connect_ray(config.ray)
    with warnings.catch_warnings():
        # Ray 2.60's DataContext() sets its own deprecated fields (use_push_based_shuffle, use_polars)
        # as it is built: nothing a caller can change.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data\.context")
        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    todo = [
        (index, rows)
        for index, rows in enumerate(prompt_batches(token_ids, config.n, config.batch_size))
        if not skip(index)
    ]
    if not todo:
        return
    rows_of = dict(todo)
    settings = dataclasses.asdict(config)
    items = [
        {"batch": json.dumps({"index": i, "config": settings, "prompts": [token_ids[r] for r in rows]})}
        for i, rows in todo
    ]
    answered = ray.data.from_items(items, override_num_blocks=len(items)).map(
        answer_batch,
        compute=ray.data.TaskPoolStrategy(size=min(config.ray_workers, len(items))),
        num_gpus=1 if config.engine == "vllm" else 0,
    )
    for row in answered.iter_rows():
        answers = [[Completion(**c) for c in a] for a in json.loads(row["answers"])]
        yield row["index"], rows_of[row["index"]], answers
