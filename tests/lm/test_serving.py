"""``generate --engine openai`` against a real ``transformers serve``, through a proxy that injects faults.

Every case asserts where each prompt ended (answered, or rejected with its reason), that no run
crashed, and how many requests reached the proxy: the retries the client promises, and no more.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefkit.lm.generate import GenerateConfig, generate
from tests.conftest import read_jsonl
from tests.lm.serving_fixtures import FaultProxy, start_server

pytestmark = pytest.mark.serve

SENTINEL_KEY = "sk-prefkit-sentinel-9f2c41"


@pytest.fixture(scope="module")
def server(bundled_model_dir, tmp_path_factory):
    pytest.importorskip("fastapi")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    process, url = start_server(bundled_model_dir, log)
    yield url, str(bundled_model_dir)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def proxy(server):
    """A fault proxy before the server; ``proxy.model`` is the served name (the server is pinned to
    the bundled model's folder and answers only to that name)."""
    url, model = server
    found = FaultProxy(url, slow_seconds=4.0)
    found.model = model
    yield found
    found.close()


def prompts_file(folder: Path, count: int) -> Path:
    path = folder / "prompts.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": f"What is {i} + {i}? Answer with the number."}) + "\n" for i in range(count))
    )
    return path


def http_config(folder: Path, proxy: FaultProxy, **options) -> GenerateConfig:
    values = {"max_new_tokens": 6, "concurrency": 2, "max_retries": 2, "timeout": 60.0} | options
    return GenerateConfig(
        sources=[str(prompts_file(folder, values.pop("prompts", 3)))],
        output=str(folder / values.pop("name", "answers.jsonl")),
        model=proxy.model,
        engine="openai",
        base_url=proxy.url,
        **values,
    )


def test_every_prompt_is_answered_once_and_a_rerun_is_served_from_the_cache(proxy, tmp_path):
    proxy.reset()
    first = generate(http_config(tmp_path, proxy, prompts=4))
    assert (first.read, first.prompts, first.rejected, first.completions) == (4, 4, 0, 4)
    assert proxy.requests == 4 and first.ledger.requests == 4 and first.ledger.cache_hits == 0
    assert first.ledger.prompt_tokens > 0 and 0 < first.ledger.completion_tokens <= 4 * 6
    records = read_jsonl(tmp_path / "answers.jsonl")
    assert [len(r["completions"]) for r in records] == [1, 1, 1, 1]
    assert all(c["finish_reason"] in ("stop", "length") and c["text"] for r in records for c in r["completions"])
    proxy.reset()
    again = generate(
        http_config(tmp_path, proxy, prompts=4, name="again.jsonl", cache=str(tmp_path / "answers.cache.sqlite"))
    )
    assert proxy.requests == 0 and again.ledger.cache_hits == 4 and again.ledger.requests == 0
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "answers.jsonl").read_text()


def test_n_samples_where_the_server_returns_one_choice(proxy, tmp_path):
    """transformers serve ignores n: one request with n=3 returns one choice, and the two missing
    samples are asked one request each with seed + k; a rerun with n=4 asks only the fourth."""
    proxy.reset()
    result = generate(http_config(tmp_path, proxy, prompts=2, n=3, temperature=0.9))
    assert result.completions == 6 and proxy.requests == 2 * 3
    assert [json.loads(s["body"]).get("n") for s in proxy.seen[:1]] == [3]
    assert result.notes and "seed + k" in result.notes[0]
    proxy.reset()
    more = generate(
        http_config(
            tmp_path,
            proxy,
            prompts=2,
            n=4,
            temperature=0.9,
            name="more.jsonl",
            cache=str(tmp_path / "answers.cache.sqlite"),
        )
    )
    assert more.completions == 8 and proxy.requests == 2 and more.ledger.cache_hits == 6
    seeds = sorted(json.loads(s["body"])["seed"] for s in proxy.seen)
    assert seeds == [3, 3]
    first = read_jsonl(tmp_path / "answers.jsonl")
    assert read_jsonl(tmp_path / "more.jsonl")[0]["completions"][:3] == first[0]["completions"]


@pytest.mark.parametrize(
    ("script", "prompts", "sent", "answered"),
    [
        (["429", "500"], 3, 3 + 2, 3),  # two retried answers, then every prompt answered
        (["drop"], 3, 3 + 1, 3),  # a dropped connection is retried
        (["garbage"], 3, 3 + 1, 3),  # a 200 whose body is not JSON is retried
        (["slow"], 3, 3 + 1, 3),  # slower than --timeout: retried
        (["400"], 3, 3, 2),  # a 4xx is the prompt's reject at once, not retried
        (["500", "500", "500"], 1, 3, 0),  # still failing after --max-retries 2: rejected
    ],
)
def test_faults_end_in_an_answer_or_a_reject_with_the_requests_counted(
    proxy, tmp_path, script, prompts, sent, answered
):
    proxy.reset(script)
    timeout = 2.0 if "slow" in script else 60.0
    result = generate(http_config(tmp_path, proxy, prompts=prompts, concurrency=1, timeout=timeout))
    assert result.read == result.prompts + result.rejected == prompts and result.prompts == answered
    assert proxy.requests == sent, proxy.script
    assert result.ledger.requests == sent and result.ledger.retries == sent - prompts
    rejects = read_jsonl(tmp_path / "answers.rejects.jsonl")
    assert len(rejects) == prompts - answered and all(r["reason"] == "request_failed" for r in rejects)
    if "400" in script:
        assert rejects[0]["detail"] == "HTTP 400: this prompt is too long"
    if script == ["500", "500", "500"]:
        assert rejects[0]["detail"] == "HTTP 500: the server broke" and result.reasons == {"request_failed": 1}


def test_the_key_is_sent_as_a_header_and_written_nowhere(proxy, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from prefkit.cli import main

    monkeypatch.setenv("PREFKIT_TEST_KEY", SENTINEL_KEY)
    proxy.reset(["400", "500"])  # one prompt refused, one retried: both failures carry a message
    prompts = prompts_file(tmp_path, 2)
    args = ["generate", str(prompts), "-o", str(tmp_path / "a.jsonl"), "--engine", "openai", "--base-url", proxy.url]
    args += ["--model", proxy.model, "--api-key-env", "PREFKIT_TEST_KEY", "--max-retries", "2", "--max-new-tokens", "4"]
    done = CliRunner().invoke(main, [*args, "--json"])
    assert done.exit_code == 0, done.output
    assert all(s["headers"].get("Authorization") == f"Bearer {SENTINEL_KEY}" for s in proxy.seen)
    assert SENTINEL_KEY not in done.output
    written = [p for p in tmp_path.iterdir() if p.is_file()]
    assert {p.name for p in written} >= {"a.jsonl", "a.rejects.jsonl", "a.report.json", "a.cache.sqlite"}
    assert all(SENTINEL_KEY.encode() not in p.read_bytes() for p in written)
    assert json.loads(done.output)["reasons"] == {"request_failed": 1} and proxy.requests == 3


def test_a_killed_run_resends_only_what_it_lacks_and_writes_the_uninterrupted_file(proxy, tmp_path):
    """SIGKILL halfway through a run of 6 prompts (one request at a time); the rerun sends only the
    prompts without a cached answer and writes the same file as a run never stopped."""
    proxy.reset()
    whole = generate(http_config(tmp_path, proxy, prompts=6, concurrency=1, name="whole.jsonl"))
    assert whole.prompts == 6
    proxy.reset()
    killed = tmp_path / "killed"
    killed.mkdir()
    config = http_config(killed, proxy, prompts=6, concurrency=1)
    script = (
        "import sys; from prefkit.lm.generate import GenerateConfig, generate; "
        f"generate(GenerateConfig(**{json.dumps({k: getattr(config, k) for k in ('sources', 'output', 'model', 'engine', 'base_url', 'max_new_tokens', 'concurrency', 'max_retries', 'timeout')})}))"
    )
    running = subprocess.Popen([sys.executable, "-c", script], env=os.environ | {"PYTHONPATH": str(Path.cwd())})
    deadline = time.monotonic() + 120
    while proxy.requests < 3:
        assert running.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    running.send_signal(signal.SIGKILL)
    running.wait()
    assert not (killed / "answers.jsonl").exists()
    answered_before = proxy.requests - 1  # the request in flight when it died may not have been cached
    proxy.reset()
    rerun = generate(config)
    assert rerun.ledger.cache_hits >= answered_before - 1 and proxy.requests == 6 - rerun.ledger.cache_hits
    assert rerun.ledger.cache_hits + proxy.requests == 6
    assert (killed / "answers.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()


def answers_file(folder: Path, rows: list[tuple[str, list[str]]]) -> str:
    path = folder / "answers.jsonl"
    records = [
        {"id": f"q{i}", "prompt": prompt, "reference": None, "completions": [{"text": t} for t in texts]}
        for i, (prompt, texts) in enumerate(rows)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_a_rater_scores_or_leaves_unscored_every_completion_and_pays_each_request_once(proxy, tmp_path):
    """rate: through the server: one request per completion; a reply with no rating (injected) is
    unscored as unparsed_rating, never guessed; a rerun is served from the cache."""
    from prefkit.lm.score import ScoreConfig, score

    rubric = tmp_path / "rubric.txt"
    rubric.write_text("Rate this answer to '{prompt}' from 1 to 10. Answer: {completion}\nOverall Score:")
    source = answers_file(tmp_path, [("What is 2 + 2?", ["4", "5"]), ("Name a color.", ["Blue."])])
    spec = f"r=rate:{proxy.model}@{proxy.url}"
    proxy.reset(["no_rating"])
    config = {
        "generated": source,
        "output": str(tmp_path / "s.jsonl"),
        "scorers": [spec],
        "rubric": str(rubric),
        "concurrency": 1,
    }
    result = score(ScoreConfig(**config))
    (summary,) = result.scorers
    assert proxy.requests == 3 and summary.ledger.requests == 3
    # Structured output is asked for; transformers serve ignores it and answers text, parsed as text.
    assert all(json.loads(seen["body"])["response_format"]["type"] == "json_schema" for seen in proxy.seen)
    assert summary.scored + summary.unscored == 3 and summary.reasons.get("unparsed_rating", 0) >= 1
    assert set(summary.reasons) <= {"unparsed_rating"}
    scored = [c for r in read_jsonl(tmp_path / "s.jsonl") for c in r["completions"]]
    assert all((c["scores"]["r"] is None) == ("r" in c.get("unscored", {})) for c in scored)
    assert all(c["scores"]["r"] is None or 1 <= c["scores"]["r"] <= 10 for c in scored)
    assert "I would rather not say" in next(c["unscored"]["r"] for c in scored if "unscored" in c)
    proxy.reset()
    again = score(
        ScoreConfig(**(config | {"output": str(tmp_path / "t.jsonl"), "cache": str(tmp_path / "s.cache.sqlite")}))
    )
    assert proxy.requests == 0 and again.scorers[0].ledger.cache_hits == 3


def test_an_http_judge_reads_both_orders_and_its_bias_is_reported(proxy, tmp_path):
    from prefkit.lm.audit import AuditConfig, audit
    from tests.conftest import write_canonical

    user = lambda text: [{"role": "user", "content": text}]
    reply = lambda text: [{"role": "assistant", "content": text}]
    pairs = [(user(f"What is {i} + {i}?"), reply(f"{2 * i}"), reply(f"{2 * i + 1}, I think")) for i in range(3)]
    data = write_canonical(tmp_path / "pairs.jsonl", pairs)
    proxy.reset()
    spec = f"j=judge:openai:{proxy.model}@{proxy.url}"
    result = audit(AuditConfig(file=str(data), output=str(tmp_path / "a.jsonl"), scorers=[spec], concurrency=2))
    (votes,) = result.scorers
    assert proxy.requests == 6 and votes.ledger.requests == 6  # every pair, both orders
    assert votes.prefers_chosen + votes.prefers_rejected + votes.ties + votes.no_vote == 3
    bodies = [json.loads(s["body"])["messages"][0]["content"] for s in proxy.seen]
    firsts = sorted(b.split("Response A: ")[1].split("\n")[0] for b in bodies)
    assert firsts == sorted([str(2 * i) for i in range(3)] + [f"{2 * i + 1}, I think" for i in range(3)])
    assert (
        votes.bias is not None
        and votes.bias.judged == votes.prefers_chosen + votes.prefers_rejected + votes.inconsistent
    )


def test_eval_generate_rates_the_models_answers_through_the_server(proxy, tiny_model_dir, tiny_adapter_dir, tmp_path):
    """eval --generate with a rate: scorer: both models' answers (2 prompts, before and after) are
    rated by the served model, four requests, each rating or its reason in the answers file."""
    import shutil

    from prefkit.lm.evaluate import EvalConfig, evaluate
    from tests.conftest import write_canonical

    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_adapter_dir, adapter)
    settings = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(
        json.dumps(settings | {"base_model_name_or_path": str(tiny_model_dir)})
    )
    user = lambda text: [{"role": "user", "content": text}]
    reply = lambda text: [{"role": "assistant", "content": text}]
    data = write_canonical(
        tmp_path / "held.jsonl", [(user(f"What is {i} + 1?"), reply(f"{i + 1}"), reply("no")) for i in range(2)]
    )
    rubric = tmp_path / "rubric.txt"  # a short reply keeps the served model's generation short
    rubric.write_text("Question: {prompt}\nAnswer: {completion}\nRate the answer from 1 to 10. Overall Score:")
    proxy.reset()
    config = EvalConfig(
        model=str(adapter),
        data=str(data),
        generate=True,
        scorers=[f"rate:{proxy.model}@{proxy.url}"],
        max_new_tokens=4,
        report=str(tmp_path / "eval.json"),
        concurrency=2,
        rubric=str(rubric),
    )
    result = evaluate(config)
    assert proxy.requests == 4 and (tmp_path / "eval.answers.cache.sqlite").exists()
    written = read_jsonl(tmp_path / "eval.answers.jsonl")
    assert len(written) == 4 and all(set(w["scores"]) == {"rating"} for w in written)
    unparsed = sum("rating" in w.get("unscored", {}) for w in written)
    assert all((w["scores"]["rating"] is None) == ("rating" in w.get("unscored", {})) for w in written)
    assert result.answers.unscored.get("rating", {}).get("unparsed_rating", 0) == unparsed
