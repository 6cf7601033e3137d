"""The canonical schema as pandera DataFrameModels on polars, used by ``validate``.

Column dtypes are declared here; the row-level checks are the :class:`~prefkit.data.schema.RowCheck`
expressions of :mod:`prefkit.data.schema`, attached as pandera dataframe checks, so the rules exist once.
Validate with ``lazy=True`` to collect every failure, not the first.
"""

from __future__ import annotations

from typing import Optional

import pandera.polars as pa
import polars as pl

from prefkit.data.messages import MESSAGES
from prefkit.data.schema import (
    CONVERSATIONAL_CHECKS,
    STANDARD_CHECKS,
    UNPAIRED_CONVERSATIONAL_CHECKS,
    UNPAIRED_STANDARD_CHECKS,
    RowCheck,
)


class _RecordFields(pa.DataFrameModel):
    """What pairs and unpaired records share."""

    id: str = pa.Field(unique=True, str_length={"min_value": 1})
    source: str = pa.Field(str_length={"min_value": 1})
    metadata: Optional[pl.Struct] = pa.Field(nullable=True)  # optional: a file may leave it out

    class Config:
        strict = True
        ordered = False


class _PairFields(_RecordFields):
    score_chosen: Optional[float] = pa.Field(nullable=True)
    score_rejected: Optional[float] = pa.Field(nullable=True)
    margin: Optional[float] = pa.Field(nullable=True)  # optional

    @pa.check("margin", name="margin_finite")
    def _margin_finite(cls, data) -> pl.LazyFrame:
        # A margin of another dtype fails the dtype check; this one only judges numbers.
        return data.lazyframe.select(pl.col(data.key).cast(pl.Float64, strict=False).is_finite().fill_null(True))


class _ConversationalFields(_PairFields):
    prompt: MESSAGES = pa.Field()  # type: ignore[valid-type]
    chosen: MESSAGES = pa.Field()  # type: ignore[valid-type]
    rejected: MESSAGES = pa.Field()  # type: ignore[valid-type]


class _StandardFields(_PairFields):
    prompt: str = pa.Field()
    chosen: str = pa.Field()
    rejected: str = pa.Field()


class _UnpairedFields(_RecordFields):
    label: bool = pa.Field()
    # Null for a record that was never a pair; a file in TRL's unpaired layout may leave it out.
    pair_id: Optional[str] = pa.Field(nullable=True)


class _UnpairedConversationalFields(_UnpairedFields):
    prompt: MESSAGES = pa.Field()  # type: ignore[valid-type]
    completion: MESSAGES = pa.Field()  # type: ignore[valid-type]


class _UnpairedStandardFields(_UnpairedFields):
    prompt: str = pa.Field()
    completion: str = pa.Field()


def _as_dataframe_check(check: RowCheck):
    def run(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(check.passes().fill_null(False))

    return pa.dataframe_check(name=check.name)(run)


def _with_row_checks(name: str, fields: type[pa.DataFrameModel], checks: tuple[RowCheck, ...]):
    # pandera collects checks from class attributes at class creation, so the shared RowChecks
    # become a subclass here instead of being restated as methods.
    namespace = {check.name: _as_dataframe_check(check) for check in checks}
    namespace["__module__"] = __name__
    namespace["__doc__"] = f"The canonical schema: {name}."
    return type(name, (fields,), namespace)


ConversationalPairs = _with_row_checks("ConversationalPairs", _ConversationalFields, CONVERSATIONAL_CHECKS)
StandardPairs = _with_row_checks("StandardPairs", _StandardFields, STANDARD_CHECKS)
ConversationalUnpaired = _with_row_checks(
    "ConversationalUnpaired", _UnpairedConversationalFields, UNPAIRED_CONVERSATIONAL_CHECKS
)
StandardUnpaired = _with_row_checks("StandardUnpaired", _UnpairedStandardFields, UNPAIRED_STANDARD_CHECKS)


def model_for(style: str, kind: str = "pairs") -> type[pa.DataFrameModel]:
    if kind == "unpaired":
        return ConversationalUnpaired if style == "conversational" else StandardUnpaired
    return ConversationalPairs if style == "conversational" else StandardPairs
