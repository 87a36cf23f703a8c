"""Declare node parameters from one table of specs, with descriptors and validation.

The table is a tuple of :class:`~morobot.params.ParamSpec` rows, usually derived from a parameter
dataclass (:func:`morobot.params.specs`). :func:`declare` declares them with a
``ParameterDescriptor`` (description, numeric range, read-only flag), checks the start-up values
(raising ``ValueError`` so the node exits with one clear message) and installs a callback that
rejects invalid changes at run time (including a safety limit loosened past its start-up value)
and hands accepted ones to the node.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult

from morobot.params import ParamSpec

__all__ = ["ParamSpec", "declare", "descriptor"]


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ``ParameterDescriptor`` of one spec (what ``ros2 param describe`` shows)."""
    text = spec.description
    if spec.tighten is not None:
        text += (" [safety limit: can only be lowered at run time]" if spec.tighten == "down"
                 else " [safety limit: can only be raised at run time]")
    # Dynamic typing: rclpy would refuse an integer for a double (``rate:=2``) with a traceback before
    # any check of ours runs; the spec coerces what loses nothing and names the parameter otherwise.
    desc = ParameterDescriptor(description=text, read_only=spec.read_only, dynamic_typing=True)
    if spec.choices is not None:
        desc.additional_constraints = "one of: " + ", ".join(str(c) for c in spec.choices)
    if spec.min is not None and spec.max is not None and isinstance(spec.default, float):
        desc.floating_point_range = [
            FloatingPointRange(from_value=float(spec.min), to_value=float(spec.max), step=0.0)
        ]
    elif (isinstance(spec.default, int) and not isinstance(spec.default, bool)
          and spec.min is not None and spec.max is not None):
        desc.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max), step=0)]
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
        param = node.declare_parameter(spec.name, spec.default, descriptor(spec))
        values[spec.name] = spec.coerce(param.value)
    errors = [e for e in (table[n].check(v) for n, v in values.items()) if e]
    if cross_check is not None and not errors:
        reason = cross_check(values)
        if reason:
            errors.append(reason)
    if errors:
        raise ValueError("invalid parameters: " + "; ".join(errors))
    start = dict(values)

    def _callback(params) -> SetParametersResult:
        proposed = dict(values)
        for p in params:
            if p.name not in table:
                continue
            spec = table[p.name]
            value = spec.coerce(p.value)
            reason = spec.check_change(value, start[p.name])
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            proposed[p.name] = value
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
