import polars as pl
import pytest

from prefkit.data.messages import (
    alternates_from_user,
    parse_transcript,
    render_standard_prompt,
    serialize_pair,
    transcript_messages,
)
from tests.conftest import hh

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


def test_alternation_allows_leading_system_only():
    def msgs(*roles):
        return [{"role": r, "content": "x"} for r in roles]

    frame = pl.DataFrame(
        {
            "m": [
                msgs("system", "user", "assistant", "user"),
                msgs("user", "user"),
                msgs("assistant", "user"),
                msgs("user", "system"),
                [],
            ]
        }
    )
    assert frame.select(alternates_from_user(pl.col("m"))).to_series().to_list() == [True, False, False, False, False]


def test_standard_prompt_single_turn_is_content_multi_turn_is_transcript():
    frame = pl.DataFrame(
        {
            "p": [
                [{"role": "user", "content": "Hi"}],
                [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hey"},
                    {"role": "user", "content": "Bye?"},
                ],
            ]
        }
    )
    out = frame.select(render_standard_prompt(pl.col("p"))).to_series().to_list()
    assert out == ["Hi", "\n\nHuman: Hi\n\nAssistant: Hey\n\nHuman: Bye?\n\nAssistant:"]


def test_serialization_distinguishes_where_a_boundary_falls():
    def m(*contents):
        return [{"role": "user", "content": c} for c in contents]

    frame = pl.DataFrame({"p": [m("ab"), m("a", "b")], "c": [m("x"), m("x")], "r": [m("y"), m("y")]})
    a, b = frame.select(serialize_pair(pl.col("p"), pl.col("c"), pl.col("r"))).to_series().to_list()
    assert a != b
