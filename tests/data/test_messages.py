import polars as pl

from prefkit.data.messages import (
    alternates_from_user,
    is_blank,
    messages_text,
    render_standard_prompt,
    serialize_pair,
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


def test_messages_text_keeps_roles_and_is_blank_sees_whitespace():
    frame = pl.DataFrame(
        {"m": [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]], "s": [" \t"]}
    )
    assert frame.select(messages_text(pl.col("m"))).item() == "system: Be brief.\nuser: Hi"
    assert frame.select(is_blank(pl.col("s"))).item() is True


def test_serialization_distinguishes_where_a_boundary_falls():
    def m(*contents):
        return [{"role": "user", "content": c} for c in contents]

    frame = pl.DataFrame({"p": [m("ab"), m("a", "b")], "c": [m("x"), m("x")], "r": [m("y"), m("y")]})
    a, b = frame.select(serialize_pair(pl.col("p"), pl.col("c"), pl.col("r"))).to_series().to_list()
    assert a != b
