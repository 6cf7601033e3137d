import polars as pl
import pytest

from prefkit.data.adapters.hh_rlhf import parse_transcript, transcript_messages
from prefkit.data.reasons import RejectReason
from tests.conftest import hh


def reasons_of(rejects):
    return {r["line"]: r["reason"] for r in rejects}


def test_multi_turn_pair_becomes_prompt_and_final_replies(write_jsonl, run_convert):
    path = write_jsonl(
        "hh.jsonl",
        [
            {
                "chosen": hh("Hi", "Hello", "How are you?", "Great!"),
                "rejected": hh("Hi", "Hello", "How are you?", "Go away."),
            }
        ],
    )
    result, rows, rejects = run_convert(path)
    assert result.sources[0].format == "hh-rlhf" and result.written == 1 and rejects == []
    assert rows[0]["prompt"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "How are you?"},
    ]
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "Great!"}]
    assert rows[0]["rejected"] == [{"role": "assistant", "content": "Go away."}]


def test_each_broken_transcript_gets_its_own_reason(write_jsonl, run_convert):
    good = {"chosen": hh("Q", "good"), "rejected": hh("Q", "bad")}
    records = [
        good,
        {"chosen": hh("Q", "A", "Q2", "good"), "rejected": hh("Q", "other A", "Q2", "bad")},  # diverged
        {"chosen": hh("Q"), "rejected": hh("Q")},  # no assistant turn at all
        {"chosen": hh("Q", "A", "more?"), "rejected": hh("Q", "A", "more?", "x")},  # ends with Human
        {"chosen": hh("Q", "A") + "\n\nAssistant: inside", "rejected": hh("Q", "B")},  # Assistant: in reply
        {"chosen": hh("Q", "A"), "rejected": hh("Q", "A", "Q2", "B")},  # prefix
        {"chosen": hh("Q", "   "), "rejected": hh("Q", "bad")},  # whitespace-only reply
        {"chosen": hh("Q", "same"), "rejected": hh("Q", "same ")},  # identical after strip
        {"chosen": "intro" + hh("Q", "a"), "rejected": hh("Q", "b")},  # text before first turn
        {"chosen": hh("", "a"), "rejected": hh("", "b")},  # empty prompt turn
    ]
    result, rows, rejects = run_convert(write_jsonl("hh.jsonl", records))
    assert result.read == 10 and result.written == 1 and result.rejected == 9
    assert reasons_of(rejects) == {
        2: RejectReason.DIVERGED_BEFORE_LAST_TURN,
        3: RejectReason.NO_ASSISTANT_TURN,
        4: RejectReason.NO_ASSISTANT_TURN,
        5: RejectReason.NON_ALTERNATING_TURNS,
        6: RejectReason.TRANSCRIPT_IS_PREFIX,
        7: RejectReason.EMPTY_RESPONSE,
        8: RejectReason.IDENTICAL_RESPONSES,
        9: RejectReason.MALFORMED_TRANSCRIPT,
        10: RejectReason.EMPTY_PROMPT,
    }
    by_line = {r["line"]: r for r in rejects}
    assert by_line[4]["detail"] == "chosen transcript ends with a Human turn"
    assert by_line[3]["record"] == records[2]  # the original record, unchanged


def test_variant_with_prompt_column(write_jsonl, run_convert):
    path = write_jsonl(
        "hh.jsonl", [{"prompt": hh("Q", "A", "Q2") + "\n\nAssistant:", "chosen": " good", "rejected": " bad"}]
    )
    result, rows, _ = run_convert(path)
    assert result.sources[0].format == "hh-rlhf"
    assert [m["content"] for m in rows[0]["prompt"]] == ["Q", "A", "Q2"]
    assert rows[0]["chosen"][0]["content"] == "good"


def test_wrong_and_missing_fields(write_jsonl, run_convert):
    records = [
        {"chosen": hh("Q", "a"), "rejected": hh("Q", "b")},
        {"chosen": hh("Q", "a")},
        {"chosen": hh("Q", "a"), "rejected": None},
    ]
    result, _, rejects = run_convert(write_jsonl("hh.jsonl", records))
    assert result.written == 1
    assert reasons_of(rejects) == {2: RejectReason.MISSING_FIELD, 3: RejectReason.MISSING_FIELD}


TRANSCRIPTS = [
    hh("Hi", "Hello!"),
    hh("What is 2+2?", "4", "Sure?", "Yes, 4."),
    hh("a", "b") + "\n\nAssistant: c",  # literal Assistant: inside a reply
    "preamble" + hh("x", "y"),
    "Human: no leading blank line\n\nAssistant: ok",
    hh("trailing empty", ""),
]


@pytest.mark.parametrize("text", TRANSCRIPTS)
def test_vectorized_transcript_parse_matches_single_example(text):
    lead, msgs = transcript_messages(pl.col("t"))
    got = pl.DataFrame({"t": [text]}).select(lead.alias("lead"), msgs.alias("msgs")).row(0)
    expected_text = "\n\n" + text if text.startswith("Human:") else text
    assert got == parse_transcript(expected_text)


def test_parse_transcript_strips_marker_spacing():
    assert parse_transcript(hh("Hi", "Hello!")) == (
        "",
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    )
