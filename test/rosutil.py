"""Helpers for tests with real rclpy nodes on real topics."""

from __future__ import annotations

import time
from typing import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor


class RosHarness:
    """One rclpy context with an executor; add nodes, spin until a condition holds."""

    def __init__(self):
        rclpy.init()
        self.executor = SingleThreadedExecutor()
        self.nodes = []

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def node(self, name: str, **kwargs):
        return self.add(rclpy.create_node(name, **kwargs))

    def spin_until(self, cond: Callable[[], bool], timeout: float, step: Callable[[], None] = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if step is not None:
                step()
            self.executor.spin_once(timeout_sec=0.02)
            if cond():
                return True
        return False

    @staticmethod
    def every(period: float, step: Callable[[], None]) -> Callable[[], None]:
        """``step`` throttled to once per ``period`` seconds of wall time: a steady publisher for ``spin_until``
        (a publish on every spin floods the executor and starves a node's own threads on a loaded machine)."""
        last = [-float("inf")]

        def throttled() -> None:
            now = time.monotonic()
            if now - last[0] >= period:
                last[0] = now
                step()

        return throttled

    def spin_for(self, seconds: float, step: Callable[[], None] = None) -> None:
        self.spin_until(lambda: False, seconds, step)

    def close(self):
        for n in self.nodes:
            self.executor.remove_node(n)
            n.destroy_node()
        self.executor.shutdown()
        rclpy.try_shutdown()
