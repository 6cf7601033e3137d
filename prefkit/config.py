"""Config dataclasses: one definition of each option, read from YAML strictly.

Each option is a dataclass field whose metadata carries its help, and where it has them its
``choices`` and numeric bounds (``min``, ``max``, ``min_open``, ``max_open``). The field's default
is the only default: the CLI derives its options from the fields (:mod:`prefkit.cli.options`, as
``HfArgumentParser`` does for TRL's configs), recipes are read into the same dataclasses, and
:func:`check_fields`, called from each config's ``__post_init__``, checks the values of library
callers too. Every mistake raises :class:`ConfigError` with one line naming the key path and what
was expected: an unknown key (with the nearest valid one), a value of the wrong type or out of
range, a removed key (with its replacement).

Recipes are plain YAML, read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from prefkit.errors import ConfigError

# Keys that used to exist elsewhere (TRL, older prefkit) and what replaced them; a class may set
# ``__renamed_keys__`` to its own mapping.
RENAMED_KEYS_ATTR = "__renamed_keys__"
DEFAULT_SEED = 0
"""The default seed of every config with a ``seed`` field (each command's ``--seed`` comes from its config)."""


def load_yaml(path: str | Path) -> dict:
    """Reads a YAML mapping with ``yaml.safe_load``; anything else is a :class:`ConfigError`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read recipe ({err.strerror})") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys to values, got {type(data).__name__}")
    return data


def option(default: Any = dataclasses.MISSING, help: str = "", **metadata: Any) -> Any:
    """A config field: ``option(0.7, "Similarity threshold.", min=0, min_open=True, max=1)``.

    A list or dict default becomes a ``default_factory``; ``metadata`` may hold ``choices``,
    ``min``, ``max``, ``min_open``, ``max_open`` (checked by :func:`check_fields`), and the CLI's
    ``flags`` and ``metavar``.
    """
    metadata["help"] = help
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def config_field(cls: type, name: str) -> dataclasses.Field:
    """The field ``name`` of dataclass ``cls``."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name}")


def check_fields(config: Any) -> None:
    """Checks every field of a config against its ``choices`` and bounds; raises :class:`ConfigError`.

    >>> from prefkit.data.dedupe import DedupeConfig
    >>> DedupeConfig(near_threshold=1.5)
    Traceback (most recent call last):
    ...
    prefkit.errors.ConfigError: near_threshold: expected a number in (0, 1], got 1.5
    """
    for f in dataclasses.fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if value is None:
            continue
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{f.name}: expected one of {', '.join(map(str, choices))}, got '{value}'")
        if ("min" in meta or "max" in meta) and isinstance(value, int | float) and not isinstance(value, bool):
            low, high = meta.get("min"), meta.get("max")
            below = low is not None and (value <= low if meta.get("min_open") else value < low)
            above = high is not None and (value >= high if meta.get("max_open") else value > high)
            if below or above:
                kind = "a whole number" if isinstance(value, int) else "a number"
                raise ConfigError(f"{f.name}: expected {kind} {_bounds_phrase(meta)}, got {value:g}")


def _bounds_phrase(meta: dict) -> str:
    """``{"min": 0, "min_open": True, "max": 1}`` gives ``"in (0, 1]"``; one side only gives ``">= 1"``."""
    low, high = meta.get("min"), meta.get("max")
    if low is not None and high is not None:
        return f"in {'(' if meta.get('min_open') else '['}{low:g}, {high:g}{')' if meta.get('max_open') else ']'}"
    if low is not None:
        return f"{'>' if meta.get('min_open') else '>='} {low:g}"
    return f"{'<' if meta.get('max_open') else '<='} {high:g}"


def from_mapping(cls: type, data: Any, path: str = "") -> Any:
    """Builds dataclass ``cls`` from ``data``, checking every key and value.

    ``from_mapping(Point, {"x": 1, "y": 2})`` gives ``Point(x=1, y=2)``; ``{"x": 1, "z": 2}`` raises
    ``ConfigError("z: unknown key (expected one of x, y)")``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{path or '<recipe>'}: expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    renamed = getattr(cls, RENAMED_KEYS_ATTR, {})
    values = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key in renamed:
            raise ConfigError(f"{where}: removed key; {renamed[key]}")
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"did you mean '{near[0]}'?" if near else f"expected one of {', '.join(fields)}"
            raise ConfigError(f"{where}: unknown key ({hint})")
        values[key] = _coerce(hints[key], value, where)
    missing = [
        name
        for name, f in fields.items()
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = f"{path}.{missing[0]}" if path else missing[0]
        raise ConfigError(f"{where}: required key is missing")
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(f"{path}.{err}" if path else str(err)) from err
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path or '<recipe>'}: {err}") from err


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false", type(None): "nothing"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as err:
                errors.append(err)
        raise errors[-1]
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_kind(value)}")
        return [_coerce(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_kind(value)}")
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {_kind(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_kind(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_kind(value)}")
        return value
    if hint is Any:
        return value
    raise ConfigError(f"{where}: unsupported type {hint}")
