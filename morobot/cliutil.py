"""Shared plumbing of the ``morobot`` sub-commands (no heavy imports)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Optional, Sequence


def parser(prog: str, description: str = "") -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows every option's default."""
    return argparse.ArgumentParser(prog=prog, description=description or None,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def run_with(prog: str, add_arguments: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], int], argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` with a parser built by ``add_arguments`` and call ``run`` on the result."""
    p = parser(prog)
    add_arguments(p)
    ns = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    return int(run(ns) or 0)


def key_values(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=[0.5, 1]"]`` -> ``{"a": 1, "b": [0.5, 1]}`` (values read as YAML scalars and lists).

    Raises:
        ValueError: an item that is not ``KEY=VALUE``.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out
