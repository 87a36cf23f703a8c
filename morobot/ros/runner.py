"""``main()`` plumbing shared by every node: init, construct, spin, clean shutdown, exit code."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Callable, Optional

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from morobot.procutil import DIE_WITH_PARENT, die_with_parent


class _StopRequest:
    """SIGINT/SIGTERM handler that only records the request.

    Raising from the handler (Python's default for SIGINT) lands wherever the interpreter is; when
    that is inside rclpy's C++ message conversion, pybind11 turns the KeyboardInterrupt into a
    ``RuntimeError`` and the node exits with an error on an ordinary shutdown. The spin loop
    checks the flag instead, at least every 0.1 s.
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        self.requested = True


def spin_node(factory: Callable[[], "rclpy.node.Node"], args: Optional[list] = None) -> int:
    """Create the node with ``factory`` and spin it until Ctrl-C / shutdown.

    A ``ValueError``/``FileNotFoundError``/rclpy ``ParameterException`` raised while constructing
    (bad parameters, missing or corrupt files) is printed as one clear line and gives exit code 2. Nodes may define
    ``on_shutdown()`` (e.g. to command a stop); it is called before the node is destroyed.
    """
    # Handle SIGINT/SIGTERM ourselves so the context is still valid in on_shutdown() (a planner
    # must be able to publish its last zero command).
    if os.environ.get(DIE_WITH_PARENT) == "1":
        die_with_parent(signal.SIGTERM)  # started by a launcher: a clean stop if it dies
    rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = _StopRequest()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    node = None
    try:
        try:
            node = factory()
        except (ValueError, FileNotFoundError, RuntimeError, ParameterException) as exc:
            print(f"[ERROR] {factory.__name__ if hasattr(factory, '__name__') else 'node'}: {exc}",
                  file=sys.stderr, flush=True)
            return 2
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        with contextlib.suppress(KeyboardInterrupt, ExternalShutdownException):  # the normal way out
            # Wake up regularly: a blocking wait in C would hold off Python's signal handling forever
            # when nothing arrives (e.g. /clock has stopped because the simulator exited first).
            while rclpy.ok() and not stop.requested:
                executor.spin_once(timeout_sec=0.1)
        return 0
    finally:
        if node is not None:
            hook = getattr(node, "on_shutdown", None)
            if hook is not None:
                try:
                    hook()
                except Exception as exc:  # shutting down: report, never mask the exit
                    print(f"[WARN] on_shutdown failed: {exc}", file=sys.stderr, flush=True)
            node.destroy_node()
        rclpy.try_shutdown()
