"""Click options derived from config dataclass fields, and the options several commands share.

A field's help, default, choices and bounds are stated once, in the dataclass
(:func:`prefkit.config.option`); :func:`options_from` turns fields into click options the way
``HfArgumentParser`` turns TRL's configs into arguments, so a flag cannot drift from the library.
Each option's parameter name is the field name, so a command builds its config with
``Config(**options)``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Union

import click

from prefkit.config import config_field


def _unwrap_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def option_from(cls: type, name: str, **overrides: Any) -> Callable:
    """One click option for field ``name`` of dataclass ``cls``; ``overrides`` go to ``click.option``."""
    f = config_field(cls, name)
    meta = f.metadata
    hint = _unwrap_optional(typing.get_type_hints(cls)[name])
    flag = "--" + name.replace("_", "-")
    flags = list(meta.get("flags", (flag,)))
    has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    default = f.default if f.default is not dataclasses.MISSING else None
    kwargs: dict[str, Any] = {"help": meta.get("help", ""), "required": not has_default}
    if "metavar" in meta:
        kwargs["metavar"] = meta["metavar"]
    if hint is bool:
        if default:
            flags = [f"{flags[-1]}/--no-{flags[-1].removeprefix('--')}"]
            kwargs |= {"default": True, "show_default": True}
        else:
            kwargs |= {"is_flag": True, "default": False}
    elif typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        kwargs |= {"multiple": True, "type": item, "default": ()}
    else:
        if "choices" in meta:
            kwargs["type"] = click.Choice(list(meta["choices"]))
        elif "min" in meta or "max" in meta:
            bounds = {k: meta.get(k) for k in ("min", "max")} | {k: bool(meta.get(k)) for k in ("min_open", "max_open")}
            kwargs["type"] = (click.IntRange if hint is int else click.FloatRange)(**bounds)
        elif hint in (int, float, str):
            kwargs["type"] = hint
        kwargs["default"] = default
        kwargs["show_default"] = default is not None
    return click.option(*flags, name, **(kwargs | overrides))


def options_from(cls: type, *names: str, **overrides: dict[str, Any]) -> Callable:
    """Click options for several fields, in the order given; ``overrides`` maps a field to option kwargs."""

    def decorate(func: Callable) -> Callable:
        for name in reversed(names):
            func = option_from(cls, name, **overrides.get(name, {}))(func)
        return func

    return decorate


def only_set(options: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave (a flag left unset is None or an empty tuple), as config keyword arguments."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items() if v not in (None, ())}


set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe key, e.g. --set beta=0.2 --set lora.r=8 (a loop recipe's: --set loop.rounds=3).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the report as one JSON object on stdout instead of tables."
)


def given_on_command_line(ctx: click.Context, names) -> set[str]:
    """The options among ``names`` the user typed (not defaults), for commands whose library call
    refuses some options in some forms (a mix recipe, token settings without a model)."""
    return {name for name in names if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
