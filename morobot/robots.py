"""Names of the robots' joints, defined once (the URDFs of example-robot-data use these)."""

PANDA_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
"""The Franka Panda's seven arm joints, base to wrist."""
PANDA_FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
"""The Panda gripper's two finger joints (one opening each)."""
