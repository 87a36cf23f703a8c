"""Versions of the libraries that shape a result, kept with checkpoints and benchmark runs."""

from __future__ import annotations

import importlib
import platform
from typing import Sequence


def versions(modules: Sequence[str]) -> dict[str, str]:
    """``python`` and the ``__version__`` of each of ``modules`` ("" for one not installed)."""
    found = {"python": platform.python_version()}
    for name in modules:
        try:
            found[name] = str(importlib.import_module(name).__version__)
        except ImportError:
            found[name] = ""
    return found
