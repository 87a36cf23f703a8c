"""The robots' joint names and arm descriptions, defined once (the URDFs of example-robot-data use these)."""

from __future__ import annotations

from dataclasses import dataclass

PANDA_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
"""The Franka Panda's seven arm joints, base to wrist."""
PANDA_FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
"""The Panda gripper's two finger joints (one opening each)."""


def franka_joint_names(prefix: str = "panda_") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(arm joints, finger joints)`` of a Franka arm whose joint names start with ``prefix``
    (``panda_`` for example-robot-data's Panda, ``fr3_`` for franka_ros2's FR3)."""
    if not prefix or not all(c.isalnum() or c == "_" for c in prefix):
        raise ValueError(f"joint prefix must be letters, digits and _, got {prefix!r}")
    return (tuple(f"{prefix}joint{i}" for i in range(1, 8)),
            (f"{prefix}finger_joint1", f"{prefix}finger_joint2"))


@dataclass(frozen=True)
class ArmDescription:
    """An arm the feasibility checker can model: where its URDF/SRDF are and what is special about it.

    Everything else (joints, limits, links, collision pairs) is read from the URDF and SRDF.

    Attributes:
        name: short name (``panda``, ``ur5``).
        description: example-robot-data description directory holding the files.
        urdf: URDF path inside ``description``.
        srdf: SRDF path inside ``description``.
        base_link: the link bolted to the table (frame of every pose and cloud; never checked
            against the scene).
        ee_frame: the default end-effector (tool) frame.
        gripper_joints: joints locked at the finger opening (not commanded through the checker).
        ready_pose: a comfortable configuration, used as the IK seed and the reset pose.
        acceleration_limits: per-joint acceleration limits (rad/s²) from the datasheet, or ``()``:
            URDFs carry none, and then the limit is each joint's velocity limit reached in
            ``ACCELERATION_RAMP`` seconds.
        wrist_axes: indices of the two joints whose axes align at the wrist singularity, or ``()``.
        skeleton: frames drawn as the arm's skeleton, base to tool, or ``()``: the base, each
            joint's link and the tool.
    """

    name: str
    description: str
    urdf: str
    srdf: str
    base_link: str
    ee_frame: str
    gripper_joints: tuple[str, ...] = ()
    ready_pose: tuple[float, ...] = ()
    acceleration_limits: tuple[float, ...] = ()
    wrist_axes: tuple[int, ...] = ()
    skeleton: tuple[str, ...] = ()


ACCELERATION_RAMP = 0.5
"""Seconds from rest to the velocity limit where a datasheet gives no acceleration limit."""

ARMS = {
    "panda": ArmDescription(
        "panda", "panda_description", "urdf/panda.urdf", "srdf/panda.srdf", "panda_link0", "panda_hand_tcp",
        gripper_joints=PANDA_FINGER_JOINTS,
        ready_pose=(0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398),
        # the Franka Emika Panda's datasheet
        acceleration_limits=(15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
        wrist_axes=(4, 6),
        skeleton=("panda_link0", "panda_link1", "panda_link2", "panda_link3", "panda_link4", "panda_link5",
                  "panda_link6", "panda_link7", "panda_hand", "panda_hand_tcp")),
    "ur5": ArmDescription(
        "ur5", "ur_description", "urdf/ur5_robot.urdf", "srdf/ur5.srdf", "base_link", "tool0",
        ready_pose=(0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0),
        wrist_axes=(3, 5)),
}
"""The arms known by name; any other arm is an :class:`ArmDescription` over its own URDF/SRDF."""

ANYMAL_LEGS = ("LF", "RF", "LH", "RH")
"""ANYmal's legs: left/right front, left/right hind."""
ANYMAL_JOINTS = tuple(f"{leg}_{j}" for leg in ANYMAL_LEGS for j in ("HAA", "HFE", "KFE"))
"""ANYmal C's twelve leg joints (hip abduction, hip flexion, knee), leg by leg, as in its URDF."""
