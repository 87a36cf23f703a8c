"""Start a node graph as separate processes on real DDS, without ``launch``/``ros2`` installed.

The processes are the same executables with the same parameters as ``launch/*.launch.py`` starts
(both come from :func:`morobot.graph.resolve`). Ctrl-C (SIGINT), SIGTERM or SIGHUP (the terminal
closed) stops them all: each child gets SIGINT, then SIGTERM and SIGKILL if it does not exit in
time. A launcher that dies without cleaning up (kill -9) takes its nodes with it: each child asks
the kernel for SIGTERM when its parent dies (:func:`morobot.procutil.die_with_parent`, asked for
through the environment so that nothing runs between fork and exec).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Optional

from morobot.graph import ResolvedNode, resolve
from morobot.procutil import DIE_WITH_PARENT


def _format(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def command_for(node: ResolvedNode, python: str = sys.executable) -> list[str]:
    """The command line that runs one resolved node."""
    cmd = [python, "-m", node.spec.module, "--ros-args", "-r", f"__node:={node.spec.name}",
           "--params-file", str(node.params_file)]
    if node.namespace:
        cmd += ["-r", f"__ns:={node.namespace}"]
    for name, value in node.overrides.items():
        cmd += ["-p", f"{name}:={_format(value)}"]
    for src, dst in node.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


class GraphProcesses:
    """The running processes of one graph; a context manager that always cleans up."""

    def __init__(self, graph: str, args: Optional[dict] = None, log_dir: Optional[str] = None,
                 env: Optional[dict] = None):
        self.graph = graph
        self.nodes = resolve(graph, args)
        self.log_dir = log_dir
        # the nodes ask for SIGTERM when the launcher dies (morobot.ros.runner.spin_node)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", DIE_WITH_PARENT: "1", **(env or {})}
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs = []

    def start(self) -> "GraphProcesses":
        for node in self.nodes:
            out = None
            if self.log_dir:
                os.makedirs(self.log_dir, exist_ok=True)
                out = open(os.path.join(self.log_dir, f"{node.spec.name}.log"), "w")
                self._logs.append(out)
            self.procs[node.spec.name] = subprocess.Popen(
                command_for(node), env=self.env, stdout=out, stderr=subprocess.STDOUT if out else None,
                start_new_session=True)
        return self

    def poll(self) -> dict[str, Optional[int]]:
        """Exit codes of the processes (None while running)."""
        return {name: p.poll() for name, p in self.procs.items()}

    def failed(self) -> dict[str, int]:
        return {n: rc for n, rc in self.poll().items() if rc not in (None, 0)}

    def stop(self, timeout: float = 8.0) -> dict[str, int]:
        """Stop every process: SIGINT, then SIGTERM, then SIGKILL. Returns exit codes."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
            alive = [p for p in self.procs.values() if p.poll() is None]
            if not alive:
                break
            for p in alive:
                with contextlib.suppress(ProcessLookupError):  # already gone
                    os.killpg(p.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(p.poll() is None for p in alive):
                time.sleep(0.05)
        for f in self._logs:
            f.close()
        self._logs = []
        return {n: p.returncode for n, p in self.procs.items()}

    def __enter__(self) -> "GraphProcesses":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run(graph: str, args: Optional[dict] = None) -> int:
    """Run a graph in the foreground until Ctrl-C or until a node dies; returns an exit code."""
    procs = GraphProcesses(graph, args)
    stopping = {"flag": False}

    def _on_signal(signum, _frame):
        stopping["flag"] = True

    old_int = signal.signal(signal.SIGINT, _on_signal)
    old_term = signal.signal(signal.SIGTERM, _on_signal)
    old_hup = signal.signal(signal.SIGHUP, _on_signal)
    names = ", ".join(n.spec.name for n in procs.nodes)
    print(f"[morobot launch] {graph}: starting {names}", flush=True)
    procs.start()
    rc = 0
    try:
        while not stopping["flag"]:
            failed = procs.failed()
            if failed:
                print(f"[morobot launch] node(s) exited with errors: {failed}; stopping the graph",
                      file=sys.stderr, flush=True)
                rc = 1
                break
            if all(code is not None for code in procs.poll().values()):
                break
            time.sleep(0.2)
    finally:
        codes = procs.stop()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGHUP, old_hup)
        print(f"[morobot launch] stopped: {codes}", flush=True)
    return rc
