"""Reason codes for rejected records.

Every input record that does not reach the output lands in the rejects file with exactly one of
these codes. The value is what appears in rejects files and reports, so values never change.
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    # Reading
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    LINE_TOO_LONG = "line_too_long"
    # Shape of the record
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_ROLE = "invalid_role"
    # Transcript structure
    MALFORMED_TRANSCRIPT = "malformed_transcript"
    NO_ASSISTANT_TURN = "no_assistant_turn"
    NON_ALTERNATING_TURNS = "non_alternating_turns"
    TRANSCRIPT_IS_PREFIX = "transcript_is_prefix"
    DIVERGED_BEFORE_LAST_TURN = "diverged_before_last_turn"
    TOO_FEW_COMPLETIONS = "too_few_completions"
    # Labels: which reply is better
    INVALID_LABEL = "invalid_label"
    CONFLICTING_LABELS = "conflicting_labels"
    WEAK_PREFERENCE = "weak_preference"
    FLAGGED_LABEL = "flagged_label"  # prefkit audit: the scorers agree the rejected reply is better
    # Content
    EMPTY_PROMPT = "empty_prompt"
    PROMPT_TOO_LONG = "prompt_too_long"
    REQUEST_FAILED = "request_failed"  # generate --engine openai: the server did not answer, after the retries
    EMPTY_RESPONSE = "empty_response"
    IDENTICAL_RESPONSES = "identical_responses"
    INVALID_SCORE = "invalid_score"
    TIE = "tie"
    DUPLICATE = "duplicate"
    CONTAMINATED = "contaminated"
    # Left out on purpose
    REMOVED_BY_SOURCE = "removed_by_source"
    FILTERED = "filtered"
