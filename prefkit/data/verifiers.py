"""Verifiers: functions ``(prompt, completion, reference) -> score`` that check an answer.

Written the way TRL's reward functions are: plain Python over text, no model. ``prefkit score
--scorer verify:NAME`` runs one of these by name (``exact``, ``number``, ``sample_task``) or any
function of the same shape as ``verify:MODULE:FUNCTION`` or ``verify:PATH.py:FUNCTION``. A verifier
returns a number or a bool (``True`` scores 1.0), or ``None`` where it cannot judge the prompt: that
completion is reported as unscored, never guessed.
"""

from __future__ import annotations

import re

# A number as people write it: optional sign, thousands separators, decimals.
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    """Every number in ``text``, in order, with thousands separators removed.

    >>> numbers_in("5 km is 5,000 m, or 5000.0 m; -3 is negative, x2 is not a number.")
    [5.0, 5000.0, 5000.0, -3.0]
    """
    return [float(match.group().replace(",", "")) for match in _NUMBER.finditer(text) if match.group() != "-"]


def last_number(text: str) -> float | None:
    """The last number in ``text`` (the answer-extraction rule of GSM8K-style checks), or None.

    >>> last_number("27 + 82 = 109. So the answer is 109.")
    109.0
    >>> last_number("no digits here") is None
    True
    """
    found = numbers_in(text)
    return found[-1] if found else None


def exact(prompt: str, completion: str, reference: str | None) -> bool | None:
    """The completion equals the reference, ignoring surrounding whitespace.

    >>> exact("Capital of France?", " Paris ", "Paris"), exact("Capital of France?", "Lyon", "Paris")
    (True, False)
    """
    if reference is None:
        return None
    return completion.strip() == reference.strip()


def number(prompt: str, completion: str, reference: str | None) -> bool | None:
    """The completion's last number equals the reference's last number.

    >>> number("What is 2 + 3?", "2 + 3 = 5.", "5"), number("What is 2 + 3?", "It is 6.", "2 + 3 = 5.")
    (True, False)
    """
    expected = last_number(reference) if reference is not None else None
    if expected is None:
        return None
    return last_number(completion) == expected


# The prompts of prefkit's bundled sample (prefkit.data.sample_data), one pattern per task kind.
_ADDITION = re.compile(r"^What is (\d+) \+ (\d+)\?$")
_FORMAT = re.compile(r"^Reply with only the number, no words: what is (\d+) \+ (\d+)\?$")
_ORDERING = re.compile(r"^Put ([\d, ]+) in increasing order\.$")
_CONVERSION = re.compile(r"^Convert ([\d.]+) (\w+) to (\w+)\.$")
_FACTORS = {
    ("km", "m"): 1000,
    ("kg", "g"): 1000,
    ("m", "cm"): 100,
    ("hours", "minutes"): 60,
    ("minutes", "seconds"): 60,
}


def sample_task_kind(prompt: str) -> str | None:
    """Which of the bundled sample's four task kinds a prompt is, or None.

    >>> sample_task_kind("What is 27 + 82?"), sample_task_kind("Put 33, 16, 64 in increasing order.")
    ('addition', 'ordering')
    >>> sample_task_kind("Write a haiku.") is None
    True
    """
    for kind, pattern in (
        ("addition", _ADDITION),
        ("format", _FORMAT),
        ("ordering", _ORDERING),
        ("conversion", _CONVERSION),
    ):
        if pattern.match(prompt.strip()):
            return kind
    return None


def sample_task(prompt: str, completion: str, reference: str | None = None) -> bool | None:
    """Checks an answer to a prompt of the bundled sample from the prompt alone (the reference is
    not read, so the check is independent of the data's own labels):

    - addition: the answer's last number is the sum;
    - format: the answer is the sum and nothing else (a trailing full stop allowed);
    - ordering: the numbers of the answer, in order, are the three given ones sorted, and no others;
    - conversion: the answer's last number is the converted value.

    >>> sample_task("What is 27 + 82?", "27 + 82 = 109."), sample_task("What is 27 + 82?", "27 + 82 is 19.")
    (True, False)
    >>> sample_task("Put 33, 16, 64 in increasing order.", "16, 33, 64.")
    True
    >>> sample_task("Put 33, 16, 64 in increasing order.", "1, 2, 3, 4, 5, 6, 7, 8, 9")
    False
    >>> sample_task("Reply with only the number, no words: what is 2 + 40?", "The answer is 42.")
    False
    >>> sample_task("Convert 2.5 km to m.", "2.5 km is 2,500 m.")
    True
    """
    prompt, answer = prompt.strip(), completion.strip()
    if match := _ADDITION.match(prompt):
        return last_number(answer) == int(match[1]) + int(match[2])
    if match := _FORMAT.match(prompt):
        return answer.removesuffix(".") == str(int(match[1]) + int(match[2]))
    if match := _ORDERING.match(prompt):
        return numbers_in(answer) == sorted(numbers_in(match[1]))
    if match := _CONVERSION.match(prompt):
        factor = _FACTORS.get((match[2], match[3]))
        if factor is None:
            return None
        found = last_number(answer)
        return found is not None and abs(found - float(match[1]) * factor) < 1e-6
    return None


BUILTIN = {"exact": exact, "number": number, "sample_task": sample_task}
"""Verifiers known by name to ``--scorer verify:NAME``."""


def load_verifier(spec: str):
    """The function a ``verify:`` scorer names: a built-in (``sample_task``), ``MODULE:FUNCTION`` or
    ``PATH.py:FUNCTION``. Raises :class:`~prefkit.errors.UsageError` naming what is missing.

    >>> load_verifier("number") is number
    True
    >>> load_verifier("prefkit.data.verifiers:exact") is exact
    True
    """
    import importlib
    import importlib.util
    from pathlib import Path

    from prefkit.errors import UsageError

    if spec in BUILTIN:
        return BUILTIN[spec]
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        known = ", ".join(BUILTIN)
        raise UsageError(f"verify:{spec}: expected a built-in ({known}), MODULE:FUNCTION or PATH.py:FUNCTION")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise UsageError(f"verify:{spec}: no such file {where}")
        loader = importlib.util.spec_from_file_location(f"prefkit_verifier_{path.stem}", path)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise UsageError(f"verify:{spec}: cannot import {where} ({err})") from err
    function = getattr(module, name, None)
    if not callable(function):
        raise UsageError(f"verify:{spec}: {where} has no function {name}")
    return function
