"""Names of the robots' joints, defined once (the URDFs of example-robot-data use these)."""

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
