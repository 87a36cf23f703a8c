"""Child processes that do not outlive their parent (Linux ``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import os
import signal

#: Environment variable a launcher sets for its children: ``"1"`` = ask for SIGTERM when it dies.
DIE_WITH_PARENT = "MOROBOT_DIE_WITH_PARENT"


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies.

    Call it in the child (a pool initializer, a worker's first line, ``preexec_fn``). Where the
    request is not available (not Linux) nothing happens. A parent that died before the request
    took effect (this process was re-parented) ends the child at once.
    """
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(sig))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        os._exit(1)
