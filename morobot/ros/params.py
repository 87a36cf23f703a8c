"""Declare node parameters from one table of specs, with descriptors and validation.

Each node lists its parameters once as :class:`ParamSpec` rows. :func:`declare` declares them with a
``ParameterDescriptor`` (description, numeric range, read-only flag), checks the start-up values
(raising ``ValueError`` so the node exits with one clear message) and installs a callback that
rejects invalid changes at run time and hands accepted ones to the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default (its type is the parameter's type), description and limits."""

    name: str
    default: Any
    description: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[Sequence[Any]] = None
    read_only: bool = False

    def check(self, value: Any) -> Optional[str]:
        """Return why ``value`` is invalid, or None."""
        if isinstance(self.default, bool):
            return None if isinstance(value, bool) else f"{self.name} must be a bool"
        if isinstance(self.default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{self.name} must be a number, got {value!r}"
            if not math.isfinite(float(value)):
                return f"{self.name} must be finite, got {value!r}"
            if self.min is not None and value < self.min:
                return f"{self.name} = {value} is below its minimum {self.min}"
            if self.max is not None and value > self.max:
                return f"{self.name} = {value} is above its maximum {self.max}"
        if isinstance(self.default, (list, tuple)) and isinstance(value, (list, tuple)):
            if any(isinstance(v, float) and not math.isfinite(v) for v in value):
                return f"{self.name} must hold finite values"
        if self.choices is not None and value not in self.choices:
            return f"{self.name} = {value!r} is not one of {list(self.choices)}"
        return None

    def descriptor(self) -> ParameterDescriptor:
        desc = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.choices is not None:
            desc.additional_constraints = "one of: " + ", ".join(str(c) for c in self.choices)
        if isinstance(self.default, float) and self.min is not None and self.max is not None:
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(self.min), to_value=float(self.max), step=0.0)
            ]
        elif (isinstance(self.default, int) and not isinstance(self.default, bool)
              and self.min is not None and self.max is not None):
            desc.integer_range = [IntegerRange(from_value=int(self.min), to_value=int(self.max), step=0)]
        return desc


def declare(node, specs: Iterable[ParamSpec],
            on_change: Optional[Callable[[dict], None]] = None,
            cross_check: Optional[Callable[[dict], Optional[str]]] = None) -> dict:
    """Declare ``specs`` on ``node`` and return ``{name: value}``.

    Args:
        node: an rclpy Node.
        specs: the parameter table.
        on_change: called with the full, validated value dict after an accepted run-time change.
        cross_check: optional check across parameters; returns a reason string when invalid.

    Raises:
        ValueError: a start-up value is invalid (the message names the parameter and why).
    """
    specs = list(specs)
    table = {s.name: s for s in specs}
    values: dict = {}
    for spec in specs:
        param = node.declare_parameter(spec.name, spec.default, spec.descriptor())
        values[spec.name] = param.value
    errors = [e for e in (table[n].check(v) for n, v in values.items()) if e]
    if cross_check is not None and not errors:
        reason = cross_check(values)
        if reason:
            errors.append(reason)
    if errors:
        raise ValueError("invalid parameters: " + "; ".join(errors))

    def _callback(params) -> SetParametersResult:
        proposed = dict(values)
        for p in params:
            if p.name not in table:
                continue
            spec = table[p.name]
            if spec.read_only:
                return SetParametersResult(successful=False, reason=f"{p.name} is read-only")
            reason = spec.check(p.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            proposed[p.name] = p.value
        if cross_check is not None:
            reason = cross_check(proposed)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        values.update(proposed)
        if on_change is not None:
            on_change(dict(values))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(_callback)
    # A copy: the node's dict must still hold the old values while on_change compares them.
    return dict(values)
