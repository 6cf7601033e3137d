"""Prompts from prompt files and from preference data: every record accounted for."""

from __future__ import annotations

import json

import polars as pl

from prefkit.data.prompts import prompt_id, read_prompts
from tests.conftest import write_canonical


def test_prompt_file_accounting_with_every_reason(tmp_path):
    text = tmp_path / "prompts.jsonl"
    lines = [
        json.dumps({"prompt": "What is 2 + 2?", "reference": "4", "metadata": {"task": "add"}}),
        json.dumps({"prompt": "Name a colour."}),
        json.dumps({"prompt": "What is 2 + 2?"}),  # duplicate of line 1
        json.dumps({"prompt": "   "}),  # empty_prompt
        json.dumps({"prompt": None}),  # missing_field
        json.dumps({"question": "no prompt key"}),  # missing_field
        "{not json",  # invalid_json
        json.dumps({"prompt": [{"role": "user", "content": "Hi"}]}),  # wrong_type: the file's prompts are text
    ]
    text.write_text("\n".join(lines) + "\n")
    messages = tmp_path / "messages.jsonl"
    messages.write_text(
        json.dumps({"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})
        + "\n"
        + json.dumps({"prompt": [{"role": "user", "content": ""}]})  # empty_prompt
        + "\n"
    )
    found = read_prompts([str(text), str(messages)])
    assert (found.read, found.prompts, found.duplicates, found.rejected) == (10, 3, 1, 6)
    assert found.read == found.prompts + found.duplicates + found.rejected
    assert found.reasons == {"empty_prompt": 2, "missing_field": 2, "invalid_json": 1, "wrong_type": 1}
    assert len(found.reject_lines) == 6
    assert sorted(json.loads(line)["line"] for line in found.reject_lines) == [2, 4, 5, 6, 7, 8]
    rows = found.frame.select("prompt", "reference").to_dicts()
    # A text prompt is one user turn; the first of two equal prompts keeps its reference.
    assert rows[0] == {"prompt": [{"role": "user", "content": "What is 2 + 2?"}], "reference": "4"}
    assert rows[1]["prompt"] == [{"role": "user", "content": "Name a colour."}]
    assert rows[2]["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert found.frame["metadata"].struct.field("task").to_list() == ["add", None, None]


def test_pairs_give_their_prompts_deduplicated_with_the_chosen_reply_as_reference(tmp_path):
    user = lambda text: [{"role": "user", "content": text}]
    reply = lambda text: [{"role": "assistant", "content": text}]
    pairs = [("Q1", "good 1", "bad 1"), ("Q2", "good 2", "bad 2"), ("Q1", "other", "worse")]
    path = write_canonical(tmp_path / "pairs.jsonl", [(user(p), reply(c), reply(r)) for p, c, r in pairs])
    found = read_prompts([str(path)])
    assert (found.read, found.prompts, found.duplicates, found.rejected) == (3, 2, 1, 0)
    assert found.frame["reference"].to_list() == ["good 1", "good 2"]
    assert (
        found.frame["id"].to_list()
        == pl.DataFrame({"p": [[{"role": "user", "content": q}] for q in ("Q1", "Q2")]})
        .select(prompt_id(pl.col("p")))
        .to_series()
        .to_list()
    )


def test_raw_preference_formats_are_converted_first(tmp_path):
    from prefkit.data.sample_data import SampleConfig, write_sample

    raw = write_sample(tmp_path, SampleConfig(train=20, heldout=4))
    found = read_prompts([str(raw["train"])])
    # 20 pairs and the 3 broken lines the sample carries: each broken line is one reject.
    assert (found.read, found.prompts, found.rejected) == (23, 20, 3)
    assert all(
        r.startswith(("What", "Put", "Convert", "Reply"))
        for r in found.frame["prompt"].list.last().struct.field("content")
    )
