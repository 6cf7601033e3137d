"""prefkit: preference data preparation and DPO, end to end.

>>> import prefkit
>>> sorted(set(prefkit.COMMANDS) - set(prefkit.__all__))
[]

Every command is a function here (:mod:`prefkit.api`), with its config and result types beside it.
Names load on first use, so ``import prefkit`` imports neither polars nor torch until a function
needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

COMMANDS = (
    "convert",
    "validate",
    "mix",
    "dedupe",
    "card",
    "sample",
    "lint",
    "train",
    "generate",
    "score",
    "audit",
    "evaluate",
    "compare",
    "quickstart",
    "loop",
)
"""The functions behind the commands of the same name (``evaluate`` is ``prefkit eval``); a test
checks this against the commands of ``prefkit --help``."""

_EXPORTS = {
    **{name: "prefkit.api" for name in (*COMMANDS, "load_recipe", "packaged_recipe")},
    "ConvertConfig": "prefkit.data.convert",
    "ConvertResult": "prefkit.data.convert",
    "SourceCounts": "prefkit.data.convert",
    "ValidateConfig": "prefkit.data.validate",
    "ValidationReport": "prefkit.data.validate",
    "FileValidation": "prefkit.data.validate",
    "MixConfig": "prefkit.data.mix",
    "MixSource": "prefkit.data.mix",
    "MixResult": "prefkit.data.mix",
    "DedupeConfig": "prefkit.data.dedupe",
    "DecontaminateConfig": "prefkit.data.dedupe",
    "DedupeResult": "prefkit.data.dedupe",
    "SampleConfig": "prefkit.data.sample_data",
    "SampleResult": "prefkit.data.sample_data",
    "CardResult": "prefkit.data.card",
    "LintConfig": "prefkit.lm.lint",
    "LintResult": "prefkit.lm.lint",
    "TokenAudit": "prefkit.lm.token_audit",
    "TrainConfig": "prefkit.lm.train",
    "TrainResult": "prefkit.lm.train",
    "TokenSummary": "prefkit.lm.train",
    "EvalConfig": "prefkit.lm.evaluate",
    "EvalResult": "prefkit.lm.evaluate",
    "PreferenceMetrics": "prefkit.lm.evaluate",
    "Estimate": "prefkit.lm.estimates",
    "AnswerMetrics": "prefkit.lm.answer_eval",
    "GenerateConfig": "prefkit.lm.generate",
    "GenerateResult": "prefkit.lm.generate",
    "ScoreConfig": "prefkit.lm.score",
    "ScoreResult": "prefkit.lm.score",
    "AuditConfig": "prefkit.lm.audit",
    "AuditResult": "prefkit.lm.audit",
    "CompareConfig": "prefkit.lm.compare",
    "Answers": "prefkit.lm.compare",
    "CompareResult": "prefkit.lm.compare",
    "QuickstartConfig": "prefkit.lm.quickstart",
    "QuickstartResult": "prefkit.lm.quickstart",
    "LoopRecipe": "prefkit.lm.loop_recipe",
    "LoopSettings": "prefkit.lm.loop_recipe",
    "LoopResult": "prefkit.lm.loop",
    "RoundResult": "prefkit.lm.loop",
    "SampleCounts": "prefkit.lm.loop",
    "PrefkitError": "prefkit.errors",
    "UsageError": "prefkit.errors",
    "DataError": "prefkit.errors",
    "ValidationFailed": "prefkit.errors",
}

__all__ = ["COMMANDS", "__version__", *_EXPORTS]  # noqa: PLE0604 (names known only as the keys above)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'prefkit' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup skips this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
