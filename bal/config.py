"""Typed settings that cannot be wrong: every field declares its type, range and help once.

A config is a frozen dataclass whose fields are :func:`setting` s::

    @dataclasses.dataclass(frozen=True)
    class MyConfig(Config):
        TASK: ClassVar[str] = "mine"
        task: str = setting("mine", help="the task")
        epochs: int = setting(50, minimum=1, help="training epochs per cycle")
        seeds: tuple[int, ...] = setting((0, 1), minimum=0, maximum=MAX_SEED, unique=True, help="...")

        def validate(self):  # what involves several settings
            ...

Construction checks, in order: the type of every field against its hint,
strictly (no bool for an int, no float for an int, no string for a list,
finite numbers only; lists become tuples), then each field's declared range
or choices, then the subclass's :meth:`Config.validate`. Every failure is one
``ValueError`` line that names the setting. :func:`load_config` reads the
settings from TOML or JSON with errors that name the file.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import tomllib
import types
import typing
from typing import Any

from bal.checks import check_int, check_number

__all__ = ["Config", "setting", "check_type", "load_config", "help_of", "MAX_SEED", "RUNTIME_ONLY"]

#: settings that may differ between an interrupted run and its ``--resume``
RUNTIME_ONLY = ("quiet", "chunk_size")

#: the largest seed (numpy's SeedSequence and jax keys both take it)
MAX_SEED = 2**32 - 1


def setting(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
            minimum: float | None = None, above: float | None = None, maximum: float | None = None,
            choices: tuple | None = None, unique: bool = False, nonempty: bool = False):
    """A config field with its one line of ``help`` and its range.

    ``minimum`` / ``above`` / ``maximum`` bound a number (``>=`` / ``>`` / ``<=``) and
    every entry of a tuple; ``choices`` lists the valid values; ``nonempty`` and
    ``unique`` apply to tuples. ``None`` (for optional settings) passes every bound.
    """
    meta = {"help": help, "minimum": minimum, "above": above, "maximum": maximum, "choices": choices,
            "unique": unique, "nonempty": nonempty}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def help_of(cls) -> dict[str, str]:
    """``{setting: its one line of help}`` of a config class."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_type(name: str, hint, value):
    """``value`` checked against the type ``hint`` of a config field, strictly:
    no bool for an int, no float for an int, no string for a list, finite
    numbers only. Returns the value normalised (lists become tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return check_type(name, inner, value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false; got {_show(value)}")
        return value
    if hint is int:
        return check_int(name, value)
    if hint is float:
        return check_number(name, value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string; got {_show(value)}")
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a table / JSON object; got {_show(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list (e.g. [{_show(value)}]); got {_show(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_type(f"{name}[{i}]", args[0], v) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{name} must have {len(args)} entries; got {_show(value)}")
        return tuple(check_type(f"{name}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value)))
    raise TypeError(f"config field {name} has an unsupported type {hint}")  # a bug, not bad input


def _check_bounds(name: str, value, meta) -> None:
    low, above, high = meta.get("minimum"), meta.get("above"), meta.get("maximum")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    fails = ((low is not None and value < low) or (above is not None and not value > above)
             or (high is not None and value > high))
    if not fails:
        return
    if high is not None and (low is not None or above is not None):
        opening = f"[{low}" if low is not None else f"({above}"
        raise ValueError(f"{name} must lie in {opening}, {high}]; got {_show(value)}")
    if high is not None:
        raise ValueError(f"{name} must be <= {high}; got {_show(value)}")
    raise ValueError(f"{name} must be {'>= ' + str(low) if low is not None else '> ' + str(above)}; "
                     f"got {_show(value)}")


def _check_range(name: str, value, meta) -> None:
    if value is None:
        return
    if isinstance(value, tuple):
        if meta.get("nonempty") and not value:
            raise ValueError(f"{name} is empty: give at least one entry")
        if meta.get("unique") and len(set(value)) != len(value):
            raise ValueError(f"{name} lists an entry twice: {list(value)}")
        for i, v in enumerate(value):
            _check_bounds(f"{name}[{i}]", v, meta)
        entries = value
    else:
        _check_bounds(name, value, meta)
        entries = (value,)
    choices = meta.get("choices")
    for v in entries if choices is not None else ():
        if v not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {_show(v)}")


class Config:
    """What every task's config shares: strict types and ranges, a ``task`` name, JSON round trips.

    Subclasses are frozen dataclasses of :func:`setting` fields with a ``TASK``
    class variable and a ``task`` field; cross-setting checks go in :meth:`validate`.
    """

    TASK: typing.ClassVar[str] = ""

    def __post_init__(self):
        self.check_types()
        if getattr(self, "task", self.TASK) != self.TASK:
            raise ValueError(f"task must be {self.TASK!r} for these settings; got {self.task!r}")
        self.validate()

    def check_types(self) -> None:
        """Every field's type (normalised in place) and declared range."""
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = check_type(field.name, hints[field.name], getattr(self, field.name))
            object.__setattr__(self, field.name, value)
            _check_range(field.name, value, field.metadata)

    def validate(self) -> None:
        """Checks that involve several settings (subclasses)."""

    def to_dict(self) -> dict[str, Any]:
        def plain(v):
            return [plain(x) for x in v] if isinstance(v, (tuple, list)) else v
        return {k: plain(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a table / JSON object of settings; got {type(d).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        d = cls.complete(dict(d))
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(unknown)} for task {cls.TASK!r}; valid settings: "
                f"{', '.join(sorted(fields))}"
            )
        return cls(**d)

    @classmethod
    def complete(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Settings implied by others (e.g. a growth rate replaces the default batch size)."""
        return d

    def inert(self) -> frozenset[str]:
        """Settings that cannot change this config's records (e.g. the threshold of a stopping
        criterion the run does not use); subclasses name them."""
        return frozenset()

    def compatible_with(self, other: "Config") -> list[str]:
        """Settings that differ from ``other`` beyond runtime-only ones and those inert in both
        (so a new default for an unused setting does not orphan a run directory)."""
        a, b = self.to_dict(), other.to_dict()
        skip = set(RUNTIME_ONLY) | (self.inert() & other.inert())
        return [k for k in sorted(set(a) | set(b)) if k not in skip and a.get(k) != b.get(k)]

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def load_config(path) -> dict[str, Any]:
    """Read settings from a TOML (``.toml``) or JSON (``.json``) file."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.suffix not in (".json", ".toml"):
        raise ValueError(f"config file {path} must end in .toml or .json")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"config file {path} cannot be read: {err}") from None
    try:
        settings = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ValueError(f"config file {path} is not valid {kind}: {err}") from None
    if not isinstance(settings, dict):
        raise ValueError(f"config file {path} must hold a table / object of settings; got "
                         f"{type(settings).__name__}")
    return settings
