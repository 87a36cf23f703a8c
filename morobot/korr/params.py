"""The ``korr_policy`` node's parameters, each defined once (default, range, description); the node
declares them (:func:`morobot.params.specs`) and ``config/*.yaml`` only overrides."""

from __future__ import annotations

from dataclasses import dataclass

from morobot.params import param


@dataclass(frozen=True)
class PolicyParams:
    """``korr_policy``: the KORR checkpoint and the input checks around it."""

    task: str = param("push", "manipulation task", choices=("push", "insert"), read_only=True)
    checkpoint: str = param("", "policy checkpoint (empty = models/korr/<task>/residual_korr.pt)", read_only=True)
    max_state_age: float = param(0.2, "joint state / object pose older than this (s, by arrival) is stale",
                                      0.01, 5.0, tighten="down")
    max_stamp_lead: float = param(0.25, "joint states / object poses stamped further than this (s) ahead of the"
                                        " node clock are rejected",
                                        0.0, 5.0, tighten="down")
    arm_frame: str = param("panda_link0", "frame of the object pose", read_only=True)
    joint_prefix: str = param("panda_", "joint names on the wire are <prefix>joint1..7 and <prefix>finger_joint1/2 "
                              "(fr3_ for franka_ros2's FR3)", read_only=True)
    task_time_limit: float = param(20.0, "seconds after its first command within which the task must be solved "
                                   "to count as a success (the evaluation's episodes are shorter; the graph adds "
                                   "start-up and message latency)", 1.0, 600.0)
    command_gripper: bool = param(True, "include the finger joints in the command")
