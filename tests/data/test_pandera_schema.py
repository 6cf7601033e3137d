import pandera.errors
import polars as pl
import pytest

from prefkit.data.messages import MESSAGES
from prefkit.data.pandera_schema import ConversationalPairs, StandardPairs
from prefkit.data.schema import CONVERSATIONAL_CHECKS, frame_schema
from tests.conftest import canonical_row


def frame(*rows):
    return pl.DataFrame(list(rows), schema=frame_schema("conversational"))


def failed_checks(df, model=ConversationalPairs):
    try:
        model.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as err:
        return sorted(set(err.failure_cases["check"].to_list()))
    return []


def test_a_sound_frame_passes():
    assert failed_checks(frame(canonical_row(), canonical_row(id="b", score_chosen=1.0, score_rejected=0.5))) == []


def test_lazy_validation_reports_every_failing_check_at_once():
    df = frame(
        canonical_row(),
        canonical_row(id="a"),  # repeated id
        canonical_row(id="c", chosen=[{"role": "assistant", "content": " "}]),
        canonical_row(id="d", rejected=[{"role": "assistant", "content": "good"}]),
        canonical_row(id="e", score_chosen=float("inf"), score_rejected=1.0),
        canonical_row(id="f", prompt=[{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]),
        canonical_row(id="g", prompt=[]),
    )
    assert failed_checks(df) == [
        "field_uniqueness",
        "prompt_alternates_and_ends_with_user",
        "prompt_not_empty",
        "replies_differ",
        "replies_not_empty",
        "scores_finite",
    ]


def test_each_row_check_fails_exactly_the_rows_it_should():
    df = frame(canonical_row(), canonical_row(prompt=[{"role": "robot", "content": "Q"}]), canonical_row(chosen=[]))
    results = df.select([c.passes().alias(c.name) for c in CONVERSATIONAL_CHECKS])
    assert results["roles_valid"].to_list() == [True, False, True]
    assert results["chosen_is_one_assistant_reply"].to_list() == [True, True, False]


def test_standard_model_checks_strings_and_rejects_extra_columns():
    df = pl.DataFrame(
        {
            "id": ["a"],
            "source": ["s"],
            "prompt": ["Q"],
            "chosen": ["x"],
            "rejected": ["x"],
            "score_chosen": [None],
            "score_rejected": [None],
            "extra": [1],
        },
        schema_overrides={"score_chosen": pl.Float64, "score_rejected": pl.Float64},
    )
    assert failed_checks(df, StandardPairs) == ["column_in_schema", "replies_differ"]


def test_message_dtype_is_role_then_content():
    assert MESSAGES == pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
    with pytest.raises(pandera.errors.SchemaErrors):
        ConversationalPairs.validate(
            frame(canonical_row()).with_columns(pl.col("prompt").cast(pl.List(pl.Struct({"role": pl.String})))),
            lazy=True,
        )
