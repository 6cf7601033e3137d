"""Token-level audit: one fixture per error class, each with its reason and counts, and lint's token
ids checked against TRL's own dataset preparation."""

import json
import tempfile
import types

import pytest
from click.testing import CliRunner

from prefkit.cli import main
from prefkit.lm.lint import LintConfig, lint
from prefkit.lm.pair_tokens import tokenize_pairs
from prefkit.lm.token_audit import audit_pairs
from tests.conftest import write_canonical

CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def user(text):
    return [{"role": "user", "content": text}]


def reply(text):
    return [{"role": "assistant", "content": text}]


@pytest.fixture
def tokenizer_with(bundled_model_dir):
    """The bundled tokenizer with another chat template."""
    from transformers import AutoTokenizer

    def make(template: str | None = None):
        tok = AutoTokenizer.from_pretrained(bundled_model_dir)
        if template is not None:
            tok.chat_template = template
        return tok

    return make


def run_audit(tokenizer, pairs, max_length=512, mode="keep_start", long_prompts="drop"):
    prompts, chosen, rejected = (list(x) for x in zip(*pairs, strict=True))
    return audit_pairs(tokenizer, prompts, chosen, rejected, max_length, mode, long_prompts)


SOUND = [(user("What is 2 + 2?"), reply("2 + 2 = 4."), reply("2 + 2 = 5."))]


def test_the_bundled_template_is_sound(tokenizer_with):
    result = run_audit(tokenizer_with(), SOUND * 3)
    assert (result.pairs, result.ok, result.errors, result.kept) == (3, 3, 0, [0, 1, 2])


def test_a_template_that_adds_bos_where_the_text_has_it(tokenizer_with):
    result = run_audit(tokenizer_with("{{ bos_token }}" + CHATML), SOUND)
    assert result.reasons == {"double_bos": 1} and result.kept == [0]  # trains, wrongly
    assert result.error_records[0].detail == "the sequence starts with BOS twice (token 1)"


def test_a_template_whose_prompt_is_not_a_prefix(tokenizer_with):
    thinking = CHATML.replace("'<|im_start|>assistant\\n'", "'<|im_start|>assistant\\n<think>\\n'")
    result = run_audit(tokenizer_with(thinking), SOUND * 2)
    assert result.reasons == {"prompt_not_prefix": 2}
    assert result.error_records[0].detail.startswith("the last ")


def test_an_over_long_prompt_is_dropped_and_trim_turns_saves_it(tokenizer_with):
    history = user("tell me a long story " * 20) + reply("once upon a time " * 20)
    long_pair = (history + user("and now?"), reply("The end."), reply("More."))
    result = run_audit(tokenizer_with(), [*SOUND, long_pair], max_length=64)
    assert result.reasons == {"prompt_fills_max_length": 1} and result.kept == [0]
    assert result.dropped == 1 and (result.long_prompts.kept.drop, result.long_prompts.kept.trim_turns) == (1, 2)
    trimmed = run_audit(tokenizer_with(), [*SOUND, long_pair], max_length=64, long_prompts="trim_turns")
    assert trimmed.errors == 0 and trimmed.kept == [0, 1]
    assert [(t["index"], t["turns_removed"]) for t in trimmed.trimmed] == [(1, 1)]
    assert (
        trimmed.tokens.prompt_ids[1]
        == tokenize_pairs(tokenizer_with(), [user("and now?")], [reply("x")], [reply("y")]).prompt_ids[0]
    )


def test_replies_that_differ_only_after_max_length(tokenizer_with):
    tok = tokenizer_with()
    words = "one two three four five six seven eight nine ten "
    pair = (user("Count."), reply(words + "eleven"), reply(words + "twelve"))
    prompt_tokens = len(tokenize_pairs(tok, *([x] for x in pair)).prompt_ids[0])
    result = run_audit(tok, [pair], max_length=prompt_tokens + 5)
    assert result.reasons == {"identical_after_truncation": 1} and result.kept == []
    assert run_audit(tok, [pair], max_length=prompt_tokens + 40).errors == 0


def test_a_reply_with_no_tokens(tokenizer_with):
    drops_last_reply = CHATML.replace(
        "{{'<|im_start|>' + message['role']",
        "{% if not (loop.last and message['role'] == 'assistant') %}{{'<|im_start|>' + message['role']",
    ).replace("+ '\\n'}}{% endfor %}", "+ '\\n'}}{% endif %}{% endfor %}")
    result = run_audit(tokenizer_with(drops_last_reply), SOUND)
    assert result.reasons == {"reply_without_tokens": 1} and result.kept == []
    assert result.error_records[0].detail == "chosen has no tokens left (0 before truncation)"


def test_a_doubled_eos_and_a_missing_end_of_turn(tokenizer_with):
    doubled = CHATML.replace("+ '<|im_end|>' + '\\n'}}", "+ '<|im_end|><|im_end|>' + '\\n'}}")
    assert run_audit(tokenizer_with(doubled), SOUND).reasons == {"double_eos": 1}
    open_end = CHATML.replace(
        "+ '<|im_end|>' + '\\n'}}",
        "+ ('' if loop.last and message['role'] == 'assistant' else '<|im_end|>\\n')}}",
    )
    result = run_audit(tokenizer_with(open_end), SOUND)
    assert result.reasons == {"missing_end_of_turn": 1} and result.kept == [0]
    assert result.error_records[0].detail == "chosen does not end with the end-of-turn token 2"


def test_statistics_count_truncation_and_length_bias(tokenizer_with):
    tok = tokenizer_with()
    pairs = [
        (user("a"), reply("short"), reply("a much longer rejected reply than the chosen one")),
        (user("b"), reply("a much longer chosen reply than the rejected one"), reply("short")),
        (user("c"), reply("a much longer chosen reply than the rejected one"), reply("tiny")),
    ]
    lengths = [len(tokenize_pairs(tok, [p], [c], [r]).prompt_ids[0]) for p, c, r in pairs]
    result = audit_pairs(tok, *(list(x) for x in zip(*pairs, strict=True)), max(lengths) + 4, sources=["x", "y", "y"])
    assert (result.truncated.pairs, result.truncated.chosen, result.truncated.rejected) == (3, 2, 1)
    assert result.length_bias["x"].chosen_longer == 0.0 and result.length_bias["y"].chosen_longer == 1.0
    chosen = [len(ids) for ids in result.tokens.chosen_ids]
    assert result.lengths.chosen.max == max(chosen)


def test_twelve_pairs_three_too_long_lint_names_them(tmp_path, bundled_model_dir):
    pairs = [
        (user(("a long question " * 30) if i in (2, 5, 9) else f"Question {i}?"), reply("Yes."), reply("No."))
        for i in range(12)
    ]
    data = write_canonical(tmp_path / "pairs.jsonl", pairs)
    rejects = tmp_path / "token_rejects.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "lint",
            str(data),
            "--model",
            str(bundled_model_dir),
            "--max-length",
            "64",
            "--rejects",
            str(rejects),
            "--json",
        ],
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["pairs"], report["ok"], report["errors"], report["dropped"]) == (12, 9, 3, 3)
    assert report["reasons"] == {"prompt_fills_max_length": 3}
    records = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["id"], r["reason"]) for r in records] == [
        (3, "p2", "prompt_fills_max_length"),
        (6, "p5", "prompt_fills_max_length"),
        (10, "p9", "prompt_fills_max_length"),
    ]
    ok = CliRunner().invoke(main, ["lint", str(data), "--model", str(bundled_model_dir), "--max-length", "512"])
    assert ok.exit_code == 0 and "pairs training keeps: 12 with long_prompts drop" in ok.output


def test_lint_streams_a_file_of_many_batches_with_the_report_of_one(tmp_path, bundled_model_dir, monkeypatch):
    from prefkit.data import sources

    pairs = [
        (user(("a long question " * 30) if i % 50 == 7 else f"Question {i}?"), reply("Yes."), reply("No."))
        for i in range(300)
    ]
    data = write_canonical(tmp_path / "pairs.jsonl", pairs)
    config = LintConfig([str(data)], model=str(bundled_model_dir), max_length=64)
    whole = lint(config).to_dict()
    monkeypatch.setattr(sources, "BATCH_BYTES", 4096)  # about 20 batches
    streamed = lint(config)
    assert streamed.to_dict() == whole
    assert (streamed.audit.pairs, streamed.audit.errors) == (300, 6)
    assert [r.line for r in streamed.audit.error_records] == [8, 58, 108, 158, 208, 258]


def test_usage_errors_write_nothing(tmp_path, bundled_model_dir):
    data = write_canonical(tmp_path / "pairs.jsonl", SOUND)
    too_short = CliRunner().invoke(main, ["lint", str(data), "--max-length", "1", "--report", str(tmp_path / "r.json")])
    assert too_short.exit_code == 2 and "--max-length" in too_short.output
    missing = CliRunner().invoke(
        main, ["lint", str(data), "--model", str(tmp_path / "nope"), "--report", str(tmp_path / "r.json")]
    )
    assert missing.exit_code == 2 and "no such folder" in missing.output
    raw = tmp_path / "raw.jsonl"
    raw.write_text('{"chosen": "a", "rejected": "b"}\n')
    not_canonical = CliRunner().invoke(main, ["lint", str(raw), "--model", str(bundled_model_dir)])
    assert not_canonical.exit_code == 1 and "column is present" in not_canonical.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl", "raw.jsonl"]


def test_validate_with_a_model_checks_schema_and_tokens(tmp_path, bundled_model_dir):
    long_pair = (user("a long question " * 30), reply("Yes."), reply("No."))
    data = write_canonical(tmp_path / "pairs.jsonl", [*SOUND, long_pair])
    args = ["validate", str(data), "--model", str(bundled_model_dir)]
    assert CliRunner().invoke(main, [*args, "--max-length", "512"]).exit_code == 0
    failed = CliRunner().invoke(main, [*args, "--max-length", "64", "--json"])
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["tokens"]["reasons"] == {"prompt_fills_max_length": 1}


def test_validate_with_a_model_reports_token_failures_the_same_everywhere(tmp_path, bundled_model_dir, monkeypatch):
    """Only the tokens fail: the report file, stdout, the exit code and the GitHub output all say so."""
    long_pair = (user("a long question " * 30), reply("Yes."), reply("No."))
    data = write_canonical(tmp_path / "pairs.jsonl", [*SOUND, long_pair])
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    args = ["validate", str(data), "--model", str(bundled_model_dir), "--max-length", "64"]
    result = CliRunner().invoke(main, [*args, "--report", str(tmp_path / "r.json"), "--github", "--json"])
    assert result.exit_code == 1
    printed = json.loads(result.stdout.splitlines()[0])
    written = json.loads((tmp_path / "r.json").read_text())
    assert printed == written
    assert (written["ok"], written["failing"], written["gates_failed"]) == (False, 1, ["tokens"])
    assert written["tokens"]["reasons"] == {"prompt_fills_max_length": 1}
    line = len(SOUND) + 1
    assert f"::error file={data},line={line}::prompt_fills_max_length: prompt has" in result.stdout
    assert "## prefkit validate: failed" in summary.read_text()
    assert "1 failing" in summary.read_text() and "**Token check:** 1 pairs with token errors" in summary.read_text()
    assert outputs.read_text() == "ok=false\nfailing=1\n"


def trl_tokenization(tokenizer, frame, max_length=None):
    """What DPOTrainer's own dataset preparation gives (TRL 1.x), called without building a trainer."""
    import datasets
    from trl import DPOConfig, DPOTrainer

    dataset = datasets.Dataset.from_list(frame.select("prompt", "chosen", "rejected").to_dicts())
    args = DPOConfig(output_dir=tempfile.mkdtemp(), max_length=max_length, bf16=False, report_to=[])
    return DPOTrainer._prepare_dataset(types.SimpleNamespace(_tokenizer=tokenizer), dataset, tokenizer, args, "train")


def test_token_ids_equal_trls_on_real_hh_pairs(shared_data, bundled_tokenizer, tmp_path):
    from prefkit.data.convert import ConvertConfig, convert
    from prefkit.data.validate import load_canonical

    convert(
        ConvertConfig(
            sources=[str(shared_data / "hh-rlhf-harmless-base-test.jsonl.gz")], output=str(tmp_path / "hh.jsonl")
        )
    )
    frame = load_canonical(tmp_path / "hh.jsonl").head(480)
    ours = tokenize_pairs(bundled_tokenizer, *(frame[c].to_list() for c in ("prompt", "chosen", "rejected")))
    theirs = trl_tokenization(bundled_tokenizer, frame)
    assert theirs["prompt_ids"] == ours.prompt_ids
    assert theirs["chosen_ids"] == ours.chosen_ids and theirs["rejected_ids"] == ours.rejected_ids
    # and the pairs TRL keeps at max_length 256 are exactly the ones the audit keeps
    frame.write_ndjson(tmp_path / "hh480.jsonl")
    result = lint(LintConfig([str(tmp_path / "hh480.jsonl")], max_length=256)).audit
    kept_by_trl = trl_tokenization(bundled_tokenizer, frame, max_length=256)
    assert len(kept_by_trl) == len(result.kept) == 419
    assert kept_by_trl["prompt_ids"] == [ours.prompt_ids[i] for i in result.kept]
    assert result.reasons == {"prompt_fills_max_length": 61}
    assert (result.long_prompts.kept.drop, result.long_prompts.kept.trim_turns) == (419, 480)


def test_card_with_a_model_counts_real_tokens_and_length_bias(tmp_path, bundled_model_dir, bundled_tokenizer):
    pairs = [
        (user("Name a colour."), reply("Blue, the colour of a clear sky."), reply("Blue.")),
        (user("Name a fruit."), reply("Apple."), reply("Apple, or maybe a pear, or a plum.")),
        (user("Name a river."), reply("The Danube, which runs through ten countries."), reply("Nile.")),
    ]
    data = write_canonical(tmp_path / "train.jsonl", pairs)
    result = CliRunner().invoke(
        main, ["card", str(data), "-o", str(tmp_path / "card" / "README.md"), "--model", str(bundled_model_dir)]
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "card" / "README.md").read_text()
    assert f"Tokens are {bundled_model_dir}'s, with its chat template" in text
    tokens = tokenize_pairs(bundled_tokenizer, *(list(x) for x in zip(*pairs, strict=True)))
    chosen = [len(ids) for ids in tokens.chosen_ids]
    row = next(line for line in text.splitlines() if line.startswith("| chosen | tokens |"))
    assert row.endswith(f"| {max(chosen)} | {round(sum(chosen) / 3, 1)} |")  # max and mean of the real counts
    longer = sum(len(c) > len(r) for c, r in zip(tokens.chosen_ids, tokens.rejected_ids, strict=True)) / 3
    assert f"| test | 3 | {round(longer, 3)} |" in text
    words = CliRunner().invoke(main, ["card", str(data), "-o", str(tmp_path / "words" / "README.md")])
    assert (
        words.exit_code == 0
        and "Tokens are words and punctuation marks" in (tmp_path / "words" / "README.md").read_text()
    )


def test_mix_with_a_model_writes_a_card_in_real_tokens(tmp_path, bundled_model_dir):
    rows = [
        (user(f"Question {i}?"), reply("A long and careful answer " * (i % 3 + 1)), reply("No.")) for i in range(10)
    ]
    data = write_canonical(tmp_path / "a.jsonl", rows)
    result = CliRunner().invoke(main, ["mix", str(data), "-o", str(tmp_path / "m"), "--model", str(bundled_model_dir)])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "m" / "README.md").read_text()
    assert f"Tokens are {bundled_model_dir}'s" in card
    assert "| test | 10 | 1.0 |" in card  # every chosen reply is the longer one here
