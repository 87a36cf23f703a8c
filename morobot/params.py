"""Parameters defined once: a dataclass field holds the default, the range and the description.

A node's parameter table (:class:`ParamSpec` rows, declared by :mod:`morobot.ros.params`), the
offline tools that read the same parameters from a YAML file, and the CLI flags all derive from one
frozen dataclass whose fields are made with :func:`param`. A parameters YAML only overrides:
:func:`resolve` starts from the dataclass defaults, rejects unknown keys and checks every value.

Safety limits carry a run-time direction (``tighten``): ``"down"`` means that a change while the
node runs may lower the value but never raise it above the one it started with (a speed limit, a
maximum input age), ``"up"`` the reverse (a minimum rate). Together with the read-only flag this
makes the start-up configuration a hard ceiling that ``ros2 param set`` cannot lift.

No rclpy here (the descriptors are built in :mod:`morobot.ros.params`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

TIGHTEN = (None, "down", "up")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default (its type is the parameter's type), description and limits.

    Attributes:
        tighten: ``"down"``/``"up"``: at run time the value may only decrease/increase from its
            start-up value (see the module docstring); ``None``: free within the range.
    """

    name: str
    default: Any
    description: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[Sequence[Any]] = None
    read_only: bool = False
    tighten: Optional[str] = None

    def __post_init__(self) -> None:
        if self.tighten not in TIGHTEN:
            raise ValueError(f"{self.name}: tighten must be one of {TIGHTEN}, got {self.tighten!r}")

    def coerce(self, value: Any) -> Any:
        """``value`` in the parameter's type where that loses nothing: an integer for a float
        parameter becomes a float (``rate: 2`` in YAML or ``rate:=2`` on a command line), a tuple
        for a list parameter a list, integers in a float list floats."""
        if isinstance(self.default, float) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(self.default, (list, tuple)) and isinstance(value, (list, tuple)):
            if self.default and all(isinstance(v, float) for v in self.default):
                return [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
            return list(value)
        return value

    def check(self, value: Any) -> Optional[str]:
        """Return why ``value`` is invalid, or None."""
        if isinstance(self.default, bool):
            return None if isinstance(value, bool) else f"{self.name} must be true or false, got {_show(value)}"
        if isinstance(self.default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{self.name} must be a number, got {_show(value)}"
            if isinstance(self.default, int) and not isinstance(value, int):
                return f"{self.name} must be an integer, got {_show(value)}"
            if not math.isfinite(float(value)):
                return f"{self.name} must be finite, got {_show(value)}"
            if self.min is not None and value < self.min:
                return f"{self.name} = {_show(value)} is below its minimum {_show(self.min)}{self._range()}"
            if self.max is not None and value > self.max:
                return f"{self.name} = {_show(value)} is above its maximum {_show(self.max)}{self._range()}"
        if isinstance(self.default, str) and not isinstance(value, str):
            return f"{self.name} must be a string, got {_show(value)}"
        if isinstance(self.default, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                return f"{self.name} must be a list, got {_show(value)}"
            if any(isinstance(v, float) and not math.isfinite(v) for v in value):
                return f"{self.name} must hold finite values"
        if self.choices is not None and value not in self.choices:
            return f"{self.name} = {_show(value)} is not one of {', '.join(str(c) for c in self.choices)}"
        return None

    def check_change(self, value: Any, start: Any) -> Optional[str]:
        """Why a run-time change from the start-up value ``start`` to ``value`` is refused, or None."""
        if self.read_only:
            return f"{self.name} is read-only (set it at start-up)"
        reason = self.check(value)
        if reason or self.tighten is None:
            return reason
        if self.tighten == "down" and value > start:
            return (f"{self.name} = {_show(value)} is above its start-up value {_show(start)}: a safety limit "
                    "can only be tightened while the node runs")
        if self.tighten == "up" and value < start:
            return (f"{self.name} = {_show(value)} is below its start-up value {_show(start)}: a safety limit "
                    "can only be tightened while the node runs")
        return None

    def _range(self) -> str:
        if self.min is not None and self.max is not None:
            return f" (allowed {_show(self.min)} to {_show(self.max)})"
        return ""


def _show(value: Any) -> str:
    """A value as a user typed it: no numpy reprs."""
    if hasattr(value, "item") and callable(value.item):
        with contextlib.suppress(TypeError, ValueError):  # not a one-element array: shown as it is
            value = value.item()
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def param(default: Any, description: str, min: Optional[float] = None, max: Optional[float] = None, *,
          choices: Optional[Sequence[Any]] = None, read_only: bool = False, tighten: Optional[str] = None) -> Any:
    """A dataclass field that is a node parameter (see :func:`specs`). List defaults are tuples."""
    if isinstance(default, list):
        default = tuple(default)
    meta = {"param": dict(description=description, min=min, max=max, choices=choices, read_only=read_only,
                          tighten=tighten)}
    return dataclasses.field(default=default, metadata=meta)


def specs(cls: type) -> tuple[ParamSpec, ...]:
    """The parameter table of a dataclass built with :func:`param`, in field order."""
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("param")
        if meta is None:
            continue
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        out.append(ParamSpec(f.name, default, **meta))
    return tuple(out)


def defaults(cls: type) -> dict[str, Any]:
    """``{name: default}`` of a parameter dataclass (lists as lists, as a node holds them)."""
    return {s.name: s.default for s in specs(cls)}


def resolve(cls: type, overrides: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """The dataclass defaults with ``overrides`` applied, every value coerced and checked.

    Args:
        cls: a parameter dataclass (fields made with :func:`param`); a ``cross_check(values)``
            static method, if present, checks combinations and returns a reason or None.
        overrides: ``{name: value}``, e.g. a node's ``ros__parameters`` from YAML.
        source: named in errors (e.g. the YAML path).

    Returns:
        ``{name: value}`` for every parameter.

    Raises:
        ValueError: an unknown name or an invalid value; the message names each.
    """
    table = {s.name: s for s in specs(cls)}
    where = f"{source}: " if source else ""
    unknown = sorted(set(overrides) - set(table))
    if unknown:
        raise ValueError(f"{where}unknown parameters {unknown} (known: {', '.join(table)})")
    values = {name: s.default for name, s in table.items()}
    for name, value in overrides.items():
        values[name] = table[name].coerce(value)
    errors = [e for e in (table[n].check(v) for n, v in values.items()) if e]
    cross = getattr(cls, "cross_check", None)
    if not errors and cross is not None:
        reason = cross(values)
        if reason:
            errors.append(reason)
    if errors:
        raise ValueError(where + "invalid parameters: " + "; ".join(errors))
    return values


def load_section(node: str, params_file: str | Path) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node`` in a ROS 2 parameters YAML (a leading ``/`` is accepted).

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: the file has no ``ros__parameters`` section for ``node``.
        ValueError: the file is not a mapping of node sections.
    """
    import yaml

    path = Path(params_file)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    with open(path, encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping of node names to sections")
    section = spec.get(node, spec.get(f"/{node}"))
    if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
        raise KeyError(f"{path}: no ros__parameters for node {node!r}")
    return dict(section["ros__parameters"])


def load(cls: type, node: str, params_file: str | Path) -> dict[str, Any]:
    """A node's parameters as it starts with them: the defaults of ``cls`` overridden by the
    ``ros__parameters`` of ``node`` in ``params_file``.

    Raises:
        FileNotFoundError, KeyError: as :func:`load_section`.
        ValueError: an unknown parameter or an invalid value.
    """
    return resolve(cls, load_section(node, params_file), source=str(params_file))
