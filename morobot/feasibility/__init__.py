"""morobot.feasibility: per-frame feasibility of arm commands (pinocchio + coal, no ROS).

Any arm from its URDF + SRDF: the Panda (default), ``FeasibilityConfig(robot="ur5")``, or another
:class:`morobot.robots.ArmDescription`.

Public API::

    from morobot.feasibility import FeasibilityChecker, FeasibilityConfig, Level, Debouncer

    checker = FeasibilityChecker(FeasibilityConfig())
    checker.update_scene(points, q_robot=q_measured)            # obstacles from a cloud
    verdict = checker.check_joint_command(q, stamp)             # filter mode
    verdict = checker.check_ee_pose(position, quat_wxyz, stamp) # demo mode (IK)
    safe = checker.clamp_to_feasible(q_cmd, q_current, dt)      # filter output

See docs/feasibility.md.
"""

from morobot.feasibility.checker import FeasibilityChecker, FilterResult
from morobot.feasibility.config import FeasibilityConfig, IkConfig, SceneConfig, config_from_dict
from morobot.feasibility.feedback import Debouncer, HapticProfile, haptic_intensity
from morobot.feasibility.model import ArmModel, PandaModel
from morobot.feasibility.overlay import draw_overlay, project_points
from morobot.feasibility.verdict import CheckResult, Level, Verdict

__all__ = [
    "ArmModel", "CheckResult", "Debouncer", "FeasibilityChecker", "FeasibilityConfig", "FilterResult", "HapticProfile",
    "IkConfig", "Level", "PandaModel", "SceneConfig", "Verdict", "draw_overlay", "haptic_intensity",
    "config_from_dict", "project_points",
]
