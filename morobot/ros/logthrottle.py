"""Log throttling per message, not per call site.

rclpy's ``throttle_duration_sec`` throttles a logging call site: after one malformed cloud is
reported, a different malformed cloud within the period is not reported at all. :class:`KeyedThrottle`
throttles each distinct message (by a key, by default the message itself), so every kind of fault
leaves at least one line.
"""

from __future__ import annotations

import time
from typing import Callable, Optional


class KeyedThrottle:
    """Calls ``sink(message)`` at most once per ``period`` seconds for each key.

    Args:
        sink: e.g. ``node.get_logger().warning``.
        period: seconds between two lines of the same key.
        clock: monotonic time source (seconds).
        max_keys: keys remembered (the oldest are forgotten beyond this).
    """

    def __init__(self, sink: Callable[[str], object], period: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 256) -> None:
        self.sink, self.period, self.clock, self.max_keys = sink, float(period), clock, int(max_keys)
        self._last: dict[str, float] = {}

    def __call__(self, message: str, key: Optional[str] = None) -> bool:
        """Log ``message`` unless its key was logged within the period; returns whether it was."""
        key = message if key is None else key
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            return False
        if len(self._last) >= self.max_keys and key not in self._last:
            self._last.pop(next(iter(self._last)))
        self._last[key] = now
        self.sink(message)
        return True
